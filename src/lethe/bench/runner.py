"""The stages every benchmark is made of, each cached by the hash of its whole configuration.

A benchmark works in its own workspace (a ledger and model directory under
`<home>/bench/.cache/<name>/`), so the user's ledger is not filled with benchmark data, while
every model, run, exposure and evaluation of the benchmark is still on record in that ledger.
Stages: a tokenizer, trained models (`lethe.train.train` / `replay`), unlearned models
(`lethe.unlearn.run_unlearning`, registered as versions with their run and exposures) and
evaluations (`lethe.eval.tofu.evaluate_tofu`, stored with `add_evaluations`). Each stage
returns a JSON record and says whether it was `cached` or `computed`, with its wall time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lethe.bench.cache import CODE_PACKAGES, StageCache, code_version
from lethe.eval.audit import compact_history
from lethe.ledger.states import VersionKind, VersionStatus

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


@dataclass
class BenchContext:
    """A benchmark's workspace, cache, progress printer, and the log of its stages."""

    workspace: Any
    cache: StageCache
    progress: Progress = _quiet
    rerun: bool = False
    """Recompute every stage (and overwrite the cached records)."""
    stages: list[dict[str, Any]] = field(default_factory=list)
    """One entry per stage: name, status (cached / computed), seconds (of the computation)."""
    home: Path | None = None
    """The user's workspace (the benchmark's own lives in its cache): results name paths under
    it as `$LETHE_HOME/...` (`lethe.workspace.portable_paths`)."""

    @property
    def ledger(self) -> Any:
        return self.workspace.ledger

    def cached(self, stage: str, name: str, material: dict[str, Any]) -> dict[str, Any] | None:
        if self.rerun:
            return None
        hit = self.cache.lookup(stage, material)
        if hit is None:
            return None
        seconds = hit.record.get("seconds", 0.0)
        self.stages.append({"stage": name, "status": "cached", "seconds": seconds, "key": hit.key[:16]})
        self.progress(f"{name}: cached ({seconds:.1f} s when computed, key {hit.key[:12]})")
        return hit.record

    def computed(
        self,
        stage: str,
        name: str,
        material: dict[str, Any],
        record: dict[str, Any],
        artefacts: Sequence[str | Path] = (),
    ) -> dict[str, Any]:
        hit = self.cache.store(stage, material, record, list(artefacts))
        self.stages.append(
            {"stage": name, "status": "computed", "seconds": record.get("seconds", 0.0), "key": hit.key[:16]}
        )
        self.progress(f"{name}: computed in {record.get('seconds', 0.0):.1f} s")
        return hit.record


STAGE_CODE = {
    "tokenizer": ("data", "train"),
    "train": ("data", "model", "train"),
    "replay": ("data", "model", "train"),
    "unlearn": ("data", "model", "train", "unlearn"),
    "eval": ("eval", "model", "data"),
}
"""The packages whose source each stage's result depends on (their hash is in its key)."""


def material(stage: str, **values: Any) -> dict[str, Any]:
    """Key material of a stage: its inputs plus the version of the code that computes it."""
    return {"stage": stage, "code": code_version(STAGE_CODE.get(stage, CODE_PACKAGES)), **values}


# --------------------------------------------------------------------------------- tokenizer


def tokenizer_stage(ctx: BenchContext, collections: list[str], vocab_size: int, key_material: dict) -> str:
    """A workspace tokenizer trained on the collections; returns its directory."""
    from lethe.train.tokenizers import train_workspace_tokenizer

    mat = material("tokenizer", collections=collections, vocab_size=vocab_size, **key_material)
    record = ctx.cached("tokenizer", "tokenizer", mat)
    if record is None:
        started = time.perf_counter()
        from lethe.bench.cache import config_hash

        path = train_workspace_tokenizer(
            ctx.workspace, collections=collections, vocab_size=vocab_size, name=f"bench-{config_hash(mat)[:12]}"
        )
        record = ctx.computed(
            "tokenizer",
            "tokenizer",
            mat,
            {"path": str(path), "seconds": time.perf_counter() - started},
            [Path(path) / "tokenizer.json"],
        )
    return record["path"]


# ------------------------------------------------------------------------------------ models


def _train_progress(ctx: BenchContext, label: str) -> Callable[[Any], None]:
    state = {"last": 0.0}

    def callback(event: Any) -> None:
        now = time.perf_counter()
        if event.kind == "step" and (now - state["last"] > 15 or event.step == event.steps_total):
            state["last"] = now
            ctx.progress(
                f"  {label}: step {event.step}/{event.steps_total} loss {event.loss:.3f} "
                f"({event.tokens_per_second or 0:.0f} tok/s)"
            )

    return callback


def _version_record(version: Any, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "version_id": version.id,
        "version": version.name,
        "path": str(version.path),
        "lineage_id": version.lineage_id,
        "seconds": seconds,
        **extra,
    }


def train_stage(ctx: BenchContext, label: str, key_material: dict, **train_kwargs: Any) -> dict[str, Any]:
    """A model trained with `lethe.train.train(workspace, **train_kwargs)` (cached)."""
    from lethe.train import train

    mat = material("train", label=label, train=train_kwargs, **key_material)
    record = ctx.cached("train", f"train {label}", mat)
    if record is None:
        from lethe.bench.cache import config_hash

        started = time.perf_counter()
        lineage = f"bench-{label}-{config_hash(mat)[:10]}-{int(time.time())}"
        versions = train(ctx.workspace, lineage=lineage, callback=_train_progress(ctx, label), **train_kwargs)
        version = versions[-1]
        record = ctx.computed(
            "train",
            f"train {label}",
            mat,
            _version_record(version, time.perf_counter() - started, lineage=lineage),
            [_path_of(ctx, version.path)],
        )
    return record


def replay_stage(
    ctx: BenchContext, label: str, target: dict[str, Any], exclude_ids: list[int], key_material: dict
) -> dict[str, Any]:
    """Exact unlearning: `lethe.train.replay` of the target's lineage without `exclude_ids`."""
    from lethe.train import replay

    mat = material("replay", label=label, target=target["version_id"], exclude=sorted(exclude_ids), **key_material)
    record = ctx.cached("replay", label, mat)
    if record is None:
        started = time.perf_counter()
        versions = replay(
            ctx.workspace,
            target["lineage_id"],
            exclude_ids,
            publish=False,
            aliases=(),
            callback=_train_progress(ctx, label),
        )
        version = versions[-1]
        record = ctx.computed(
            "replay", label, mat, _version_record(version, time.perf_counter() - started), [_path_of(ctx, version.path)]
        )
    return record


def _path_of(ctx: BenchContext, path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else Path(ctx.workspace.home) / path


def model_path(ctx: BenchContext, record: dict[str, Any]) -> Path:
    return _path_of(ctx, record["path"])


def examples_for(documents: Sequence[Any], tokenizer: Any, train_config: Any) -> list[dict[str, Any]]:
    """Unlearning examples (what `run_unlearning` takes) of documents, encoded as in training."""
    from lethe.forget.strategies.approximate import training_examples

    return training_examples(documents, tokenizer, train_config)


def unlearn_stage(
    ctx: BenchContext,
    method: str,
    target: dict[str, Any],
    forget_ids: list[int],
    retain_ids: list[int],
    unlearn_settings: dict[str, Any],
    train_settings: dict[str, Any],
    key_material: dict,
    retain_cap: int = 2000,
) -> dict[str, Any]:
    """Unlearn the forget documents from the target with `method`; a registered version (cached).

    Records an `unlearn` run with its progress history (the loss curves of the report) and
    its exposures, and the version (kind `unlearn`, parent the target, status candidate).
    Its `seconds` leave out the quick metrics that draw those curves (`monitor_seconds`,
    recorded beside them): the exact replay has no such pass, and a request run with
    `eval_every=0` reaches the same weights without it.
    """
    mat = material(
        "unlearn",
        method=method,
        target=target["version_id"],
        target_path=target["path"],
        forget=sorted(forget_ids),
        retain=sorted(retain_ids),
        unlearn=unlearn_settings,
        **key_material,
    )
    record = ctx.cached("unlearn", f"unlearn {method}", mat)
    if record is not None:
        return record
    from lethe.model.io import load_version, save_version
    from lethe.train.config import TrainConfig
    from lethe.unlearn import UnlearnConfig, run_unlearning

    ledger = ctx.ledger
    started = time.perf_counter()
    config = UnlearnConfig.from_dict(unlearn_settings)
    from lethe.unlearn import get_method

    model, tokenizer = load_version(model_path(ctx, target))
    reference = load_version(model_path(ctx, target))[0] if get_method(method).needs_reference else None
    train_config = TrainConfig.from_dict(train_settings)
    retain_sample = list(retain_ids)
    random.Random(config.seed).shuffle(retain_sample)
    forget_examples = examples_for(ledger.documents(forget_ids), tokenizer, train_config)
    retain_examples = examples_for(ledger.documents(sorted(retain_sample[:retain_cap])), tokenizer, train_config)
    run_id = ledger.start_run(
        "unlearn",
        lineage_id=target.get("lineage_id"),
        parent_version_id=target["version_id"],
        config={"method": method, **config.to_dict(), "benchmark": True},
        seed=config.seed,
    )
    last = {"t": 0.0}

    def callback(progress: Any) -> None:
        now = time.perf_counter()
        if now - last["t"] > 15 or progress.step == progress.steps_total:
            last["t"] = now
            ctx.progress(
                f"  {method}: step {progress.step}/{progress.steps_total} "
                f"loss {progress.losses.get('loss', float('nan')):.3f}"
            )

    try:
        result = run_unlearning(
            method,
            model,
            tokenizer,
            forget_examples,
            retain_examples,
            config,
            reference_model=reference,
            callback=callback,
        )
    except BaseException as error:
        ledger.finish_run(run_id, "failed", error=f"{type(error).__name__}: {error}")
        raise
    # the quick metrics (the loss curves) only watch; the request's cost is the rest
    unlearn_seconds = time.perf_counter() - started - result.monitor_seconds
    from dataclasses import asdict

    history = compact_history([asdict(h) for h in result.history])
    ledger.record_exposures(run_id, result.exposures())
    ledger.finish_run(
        run_id,
        metrics={
            "history": history[-500:],
            "steps": result.steps,
            "wall_time": result.wall_time,
            "stop_reason": result.stop_reason,
        },
    )
    directory = ctx.workspace.path("models", f"bench-{method}-run{run_id}")
    digest = save_version(result.model, tokenizer, directory)
    version = ledger.register_version(
        kind=VersionKind.UNLEARN,
        path=str(directory),
        weights_sha256=digest,
        lineage_id=target.get("lineage_id"),
        parent_id=target["version_id"],
        run_id=run_id,
        status=VersionStatus.CANDIDATE,
        aliases=(),
        meta={"method": method, "config": config.to_dict(), "steps": result.steps, "benchmark": True},
    )
    record = _version_record(
        version,
        unlearn_seconds,
        lineage_id=target.get("lineage_id"),
        method=method,
        run_id=run_id,
        steps=result.steps,
        history=history,
        monitor_seconds=round(result.monitor_seconds, 3),
    )
    return ctx.computed("unlearn", f"unlearn {method}", mat, record, [directory])


# -------------------------------------------------------------------------------- evaluation


def evaluate_stage(
    ctx: BenchContext,
    label: str,
    model: dict[str, Any],
    splits: dict[str, list[Any]],
    eval_config: Any,
    key_material: dict,
    benchmark: str,
) -> dict[str, Any]:
    """TOFU-protocol evaluation of a model (`evaluation_record`), stored in the ledger (cached)."""
    from lethe.eval.tofu import evaluate_tofu, evaluation_record
    from lethe.model.io import load_version

    mat = material(
        "eval",
        model=model["version_id"],
        path=model["path"],
        config=eval_config.to_dict(),
        splits={k: sorted(d.id for d in v) for k, v in splits.items()},
        **key_material,
    )
    record = ctx.cached("eval", f"evaluate {label}", mat)
    if record is not None:
        return record
    started = time.perf_counter()
    loaded, tokenizer = load_version(model_path(ctx, model))
    evaluation = evaluate_tofu(loaded, tokenizer, splits, eval_config)
    record = {**evaluation_record(evaluation), "seconds": time.perf_counter() - started}
    results = {split: dict(numbers) for split, numbers in evaluation.numbers.items()}
    results["summary"] = {
        **evaluation.extra,
        **({"model_utility": evaluation.model_utility} if evaluation.model_utility is not None else {}),
    }
    ctx.ledger.add_evaluations(model["version_id"], benchmark, results, meta={"label": label})
    return ctx.computed("eval", f"evaluate {label}", mat, record)
