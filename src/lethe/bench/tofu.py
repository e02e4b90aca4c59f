"""`lethe bench tofu`: TOFU (Maini et al. 2024) on a model trained from scratch on this machine.

1. ingest the TOFU directory into the benchmark's workspace (once per data hash);
2. choose authors: the forget split's authors and the retain split's; `--authors N` keeps N
   trained authors with the forget ones in proportion (the last forget authors, the first
   retain authors: those have TOFU's perturbed answers, so the retain truth ratio is defined);
   a few further retain-split authors are never trained, the in-distribution non-members of
   the membership audit (TOFU's holdout files are a shifted distribution, DESIGN.md §7);
3. train a tokenizer on the trained authors, the *target* model on forget + retain authors and
   the *retain* model on the retain authors alone (same preset and hyperparameters);
4. run every unlearning method on the target; evaluate target, retain model and each result
   with TOFU's protocol (forget quality against the retain model, model utility over retain,
   real authors and world facts; MIA AUCs and PrivLeak);
5. write results.{json,md,csv} and plots to `<home>/bench/tofu-<config hash>/`.

Every stage is cached under the hash of its whole configuration (`lethe.bench.cache`); the
result says which stages were cached and how long each took.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lethe.bench.cache import StageCache, code_version, config_hash, files_sha256
from lethe.bench.output import make_plots, model_row, write_results
from lethe.bench.runner import (
    BenchContext,
    evaluate_stage,
    tokenizer_stage,
    train_stage,
    unlearn_stage,
)
from lethe.errors import InputError, Where
from lethe.workspace import local_paths

SKIPPED_METHODS = ("exact",)
"""Not run by default: `exact` is the retain model itself here. Methods that need token
weights (`impact_ga`) are skipped too: token impacts must be computed first."""
FORGET_SPLITS = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}


def default_methods() -> list[str]:
    from lethe.unlearn import get_method, list_methods

    return [m for m in list_methods() if m not in SKIPPED_METHODS and not get_method(m).needs_token_weights]


@dataclass
class TofuBenchConfig:
    """Everything that determines a TOFU benchmark result (all of it is hashed)."""

    data: Path = Path("../shared/data/tofu")
    """The TOFU directory (full.json, forgetXX(_perturbed).json, retainYY.json, ...)."""
    split: str = "forget10"
    """forget01, forget05 or forget10: which authors are forgotten."""
    authors: int | None = None
    """Trained authors (forget + retain); None = all of the split's."""
    mia_authors: int | None = None
    """Never-trained authors of full.json (membership non-members); None = as many as forget
    authors, at least 2."""
    methods: list[str] | None = None
    """Unlearning methods; None = every registered one but `exact` and `impact_ga`."""
    preset: str = "tiny"
    base: str | None = None
    """A base model imported with `lethe base add` to fine-tune instead of training `preset` from
    scratch: TOFU as the paper runs it (a pretrained model fine-tuned on the authors), so the
    9-number model utility (real authors, world facts) means something."""
    lora: bool = True
    """With `base`: fine-tune and unlearn through LoRA adapters (merged after each run)."""
    lora_r: int = 16
    epochs: int = 25
    lr: float = 2e-3
    batch_size: int = 16
    seq_len: int = 256
    bf16: bool = True
    """bfloat16 autocast on the CPU (about twice as fast for the tiny preset); with `base`,
    unlearning and evaluation run in it too."""
    vocab_size: int = 4096
    unlearn_epochs: int = 5
    unlearn_lr: float = 5e-4
    unlearn_batch_size: int = 8
    unlearn: dict[str, Any] = field(default_factory=dict)
    """Further `UnlearnConfig` fields (beta, alpha, ...), shared by every method."""
    eval_items: int | None = 100
    """Items per evaluation split (forget uses all of a small forget set)."""
    max_new_tokens: int = 200
    eval_batch_size: int = 16
    seed: int = 0
    robustness: bool = True
    """Run the robustness suite (`lethe.eval.robustness`) on every model."""
    probes: list[str] | None = None
    """The robustness probes to run (None: every registered one)."""
    tune: list[str] | None = None
    """Methods to tune on calibration authors (`lethe.bench.tuning`) and run as `<m>+tuned`."""
    calibration: int | None = None
    """Calibration authors per draw (trained retain-split authors, never forgotten ones, drawn
    seeded and matched to the forgotten ones by question count); None = as many as forgotten."""
    calibration_draws: int = 2
    """Disjoint calibration draws, each with its own exact answer (a retraining without them)."""
    tune_time_fraction: float | None = 0.1
    """A trial is feasible only when unlearning a draw took at most this share of its exact answer's time."""
    tune_objective: str = "pooled"
    """How the draws score a trial: pooled, mean or worst (`lethe.forget.tuning.TuneSettings`)."""
    tune_trials: int = 20
    tune_budget: float | None = None
    """Seconds of tuning per method (no new trial starts after)."""
    tune_utility_fraction: float = 0.97
    tune_finalists: int = 1

    def replace(self, **changes: Any) -> TofuBenchConfig:
        """A copy with the given fields changed; `None` values mean "keep"."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        from lethe.workspace import portable_path

        values = asdict(self)
        # as given (e.g. ../shared/data/tofu, $LETHE_SHARED_DATA/tofu): results files carry no machine path, and the
        # cache keys on the data files' hashes, not on where they lie
        values["data"] = portable_path(self.data)
        return values

    @property
    def base_bf16(self) -> bool:
        """Unlearning and evaluation of a pretrained base in bf16 (as it is fine-tuned)."""
        return bool(self.base and self.bf16)

    def unlearn_settings(self) -> dict[str, Any]:
        adapters = {"lora": True, "lora_r": self.lora_r} if self.base and self.lora else {}
        if self.base_bf16:
            adapters["bf16"] = True
        return {
            "epochs": self.unlearn_epochs,
            "lr": self.unlearn_lr,
            "forget_batch_size": self.unlearn_batch_size,
            "retain_batch_size": self.unlearn_batch_size,
            "seed": self.seed,
            **adapters,
            **self.unlearn,
        }

    def train_kwargs(self) -> dict[str, Any]:
        start = {"base_model": self.base, "lora": self.lora} if self.base else {"preset_or_path": self.preset}
        if self.base and self.lora:
            from lethe.train.config import TrainConfig

            start["config"] = TrainConfig(lora_r=self.lora_r)
        return {
            **start,
            "task": "sft",
            "slices": 1,
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "seed": self.seed,
            "bf16": self.bf16,
        }


@dataclass
class AuthorPlan:
    """Which authors of full.json are forgotten, retained, and never trained (MIA)."""

    forget: list[int]
    retain: list[int]
    never_trained: list[int]

    def to_dict(self) -> dict[str, list[int]]:
        return asdict(self)


def plan_authors(
    forget_authors: list[int], retain_authors: list[int], authors: int | None, mia_authors: int | None
) -> AuthorPlan:
    """Subsample authors (see the module docstring); deterministic."""
    forget_authors, retain_authors = sorted(forget_authors), sorted(retain_authors)
    total = len(forget_authors) + len(retain_authors)
    if authors is None:
        n_forget = len(forget_authors)
        n_mia = mia_authors if mia_authors is not None else max(2, n_forget)
        n_retain = len(retain_authors) - n_mia
    else:
        if authors < 2:
            raise InputError("--authors must be at least 2 (one forget and one retain author)", Where(field="authors"))
        n_forget = min(len(forget_authors), max(1, round(authors * len(forget_authors) / total)))
        n_retain = authors - n_forget
        n_mia = mia_authors if mia_authors is not None else max(2, n_forget)
    if n_retain < 1 or n_retain + n_mia > len(retain_authors):
        raise InputError(
            f"not enough retain authors for {n_retain} trained and {n_mia} never-trained ones "
            f"(the split has {len(retain_authors)})",
            Where(field="authors"),
        )
    return AuthorPlan(
        forget=forget_authors[len(forget_authors) - n_forget :],
        retain=retain_authors[:n_retain],
        never_trained=retain_authors[n_retain : n_retain + n_mia],
    )


def _ensure_ingested(ctx: BenchContext, data: Path) -> None:
    known = {c.name for c, _ in ctx.ledger.collections()}
    if "tofu/full" in known:
        ctx.stages.append({"stage": "ingest TOFU", "status": "cached", "seconds": 0.0, "key": ""})
        return
    from lethe.data.ingest import ingest

    started = time.perf_counter()
    report = ingest(ctx.ledger, data, source="tofu", license="MIT (locuslab/tofu)")
    seconds = time.perf_counter() - started
    ctx.stages.append({"stage": "ingest TOFU", "status": "computed", "seconds": seconds, "key": ""})
    ctx.progress(f"ingest TOFU: {len(report.document_ids)} documents in {seconds:.1f} s")


def _authors_of(documents: list[Any]) -> dict[int, list[Any]]:
    by_author: dict[int, list[Any]] = {}
    for doc in documents:
        author = (doc.meta or {}).get("author")
        if author is not None and str((doc.meta or {}).get("file", "full.json")) == "full.json":
            by_author.setdefault(int(author), []).append(doc)
    return by_author


def _collection_docs(ledger: Any, name: str) -> list[Any]:
    return ledger.documents(ledger.collection_ids(name))


def _ensure_collection(ledger: Any, name: str, ids: list[int]) -> str:
    known = {c.name: n for c, n in ledger.collections()}
    if name not in known:
        ledger.create_collection(name, ids)
    return name


def run_tofu_bench(
    workspace: Any,
    config: TofuBenchConfig,
    *,
    out_dir: str | Path | None = None,
    rerun: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Run (or reuse) the TOFU benchmark; returns the results (also written to disk)."""
    import torch

    from lethe.forget.name_guard import guarded
    from lethe.workspace import Workspace

    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    progress = progress or (lambda _m: None)
    data = Path(config.data)
    if config.split not in FORGET_SPLITS:
        raise InputError(f"unknown split {config.split!r} (expected {', '.join(FORGET_SPLITS)})", Where(field="split"))
    if not (data / "full.json").is_file():
        raise InputError("not a TOFU directory (no full.json)", Where(path=data))
    methods = config.methods or default_methods()
    config = config.replace(methods=methods)
    data_files = files_sha256(sorted(data.glob("*.json")), data)
    whole = {"benchmark": "tofu", "config": config.to_dict(), "data": data_files, "code": code_version()}
    if config.base:
        from lethe.model.base import ensure_base

        base_record = ensure_base(workspace, config.base)
    else:
        base_record = None
    if base_record is not None:
        whole["base_weights_sha256"] = base_record.weights_sha256
    key = config_hash(whole)
    out = Path(out_dir) if out_dir else workspace.path("bench", f"tofu-{key[:12]}")
    cached = cached_result(out, key, workspace.home)
    if cached is not None and not rerun:
        progress(f"results cached at {out} (configuration hash {key[:12]})")
        return {**cached, "cache": "hit", "out_dir": str(out)}

    data_key = config_hash(data_files)[:12]
    cache_root = Path(workspace.home).resolve() / "bench" / ".cache" / f"tofu-{data_key}"
    bench_ws = guarded(Workspace(home=cache_root / "workspace").init())
    ctx = BenchContext(
        bench_ws, StageCache(cache_root / "stages"), progress, rerun, home=Path(workspace.home).resolve()
    )
    ledger = ctx.ledger
    _ensure_ingested(ctx, data)
    if base_record is not None:
        from lethe.model.base import import_base

        import_base(bench_ws, base_record.source_path, name=base_record.name, license=base_record.license)

    full = _authors_of(_collection_docs(ledger, "tofu/full"))
    forget_authors = sorted(_authors_of(_collection_docs(ledger, f"tofu/{config.split}")))
    retain_authors = sorted(_authors_of(_collection_docs(ledger, f"tofu/{FORGET_SPLITS[config.split]}")))
    plan = plan_authors(forget_authors, retain_authors, config.authors, config.mia_authors)
    forget_ids = sorted(d.id for a in plan.forget for d in full[a])
    retain_ids = sorted(d.id for a in plan.retain for d in full[a])
    mia_ids = sorted(d.id for a in plan.never_trained for d in full[a])
    subset = config_hash({"plan": plan.to_dict(), "data": data_key})[:12]
    train_collection = _ensure_collection(ledger, f"bench/{subset}/train", sorted(forget_ids + retain_ids))
    retain_collection = _ensure_collection(ledger, f"bench/{subset}/retain", retain_ids)
    progress(
        f"authors: {len(plan.forget)} forget, {len(plan.retain)} retain, {len(plan.never_trained)} never "
        f"trained ({len(forget_ids)} / {len(retain_ids)} / {len(mia_ids)} questions)"
    )

    base = {"data": data_key, "plan": plan.to_dict()}
    if base_record is not None:  # the base's own tokenizer; its weights are part of every stage's key
        base["base_weights_sha256"] = base_record.weights_sha256
        tokenizer = None
    else:
        tokenizer = tokenizer_stage(ctx, [train_collection], config.vocab_size, base)
    trained = {**base, "tokenizer": tokenizer}
    target = train_stage(ctx, "target", trained, data=train_collection, tokenizer=tokenizer, **config.train_kwargs())
    retain = train_stage(ctx, "retain", trained, data=retain_collection, tokenizer=tokenizer, **config.train_kwargs())
    from lethe.train.config import TrainConfig

    train_settings = TrainConfig(task="sft", seq_len=config.seq_len).to_dict()
    models: dict[str, dict[str, Any]] = {"target": target, "retain": retain}
    for method in methods:
        models[method] = unlearn_stage(
            ctx, method, target, forget_ids, retain_ids, config.unlearn_settings(), train_settings, trained
        )

    from lethe.eval.tofu import TofuEvalConfig

    eval_config = TofuEvalConfig(
        max_items=config.eval_items,
        seed=config.seed,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.eval_batch_size,
        bf16=config.base_bf16,
    )
    tuning: dict[str, Any] = {}
    if config.tune:
        from lethe.bench.tuning import bench_tune, tune_settings

        def retrained_without(ids: list[int]) -> dict[str, Any]:
            kept = sorted(set(forget_ids + retain_ids) - set(ids))
            collection = _ensure_collection(ledger, f"bench/{subset}/calibration-{config_hash(ids)[:10]}", kept)
            return train_stage(
                ctx, "calibration-exact", trained, data=collection, tokenizer=tokenizer, **config.train_kwargs()
            )

        tuned, tuning = bench_tune(
            ctx,
            methods=config.tune,
            target=target,
            subjects={f"author/{a}": sorted(d.id for d in full[a]) for a in plan.retain},
            forget_ids=forget_ids,
            retain_ids=retain_ids,
            calibration=config.calibration or len(plan.forget),
            exact_without=retrained_without,
            unlearn_settings=config.unlearn_settings(),
            train_settings=train_settings,
            eval_config=eval_config,
            key_material=trained,
            settings=tune_settings(config),
            seed=config.seed,
            request={f"author/{a}": sorted(d.id for d in full[a]) for a in plan.forget},
            draws=config.calibration_draws,
        )
        models.update(tuned)
    splits = {
        "forget": ledger.documents(forget_ids),
        "retain": ledger.documents(retain_ids),
        "real_authors": _collection_docs(ledger, "tofu/real_authors"),
        "world_facts": _collection_docs(ledger, "tofu/world_facts"),
        "holdout": ledger.documents(mia_ids),
    }
    records = {
        label: evaluate_stage(ctx, label, model, splits, eval_config, trained, "tofu")
        for label, model in models.items()
    }
    robust = {}
    if config.robustness:
        from lethe.bench.robustness import bench_robustness

        robust = bench_robustness(
            ctx,
            out,
            models,
            splits["forget"],
            splits["retain"],
            train_settings,
            trained,
            "retain",
            "TOFU " + config.split,
            seed=config.seed,
            probes=config.probes,
        )
    result = finish(
        ctx,
        out,
        key,
        whole,
        models,
        records,
        "retain",
        "TOFU " + config.split,
        started,
        extra={
            **robust,
            "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
            "torch_threads": torch.get_num_threads(),
            "cores": os.cpu_count(),
            "authors": plan.to_dict(),
            "base_model": base_record.name if base_record else None,
            "pretraining_data": base_record.pretraining_data if base_record else None,
            **({"tuning": tuning} if tuning else {}),
        },
    )
    if tuning:
        from lethe.bench.tuning import finish_tuning

        finish_tuning(out, result, retain["seconds"], "retain_utility", "TOFU " + config.split)
    return result


def cached_result(out: Path, key: str, home: str | Path) -> dict[str, Any] | None:
    """The results of an earlier run of the same configuration in `out` (their `$LETHE_HOME`
    paths on this machine: `home`), or None."""
    import json

    try:
        result = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return local_paths(result, home=home) if result.get("config_hash") == key else None


def finish(
    ctx: BenchContext,
    out: Path,
    key: str,
    whole: dict[str, Any],
    models: dict[str, dict[str, Any]],
    records: dict[str, dict[str, Any]],
    reference_label: str,
    title: str,
    started: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rows, ledger summaries, plots and result files of a finished benchmark."""
    reference = records[reference_label]
    roles = {"target": "target", reference_label: "reference"}
    rows = [
        model_row(label, roles.get(label, "method"), record, reference, models.get(label))
        for label, record in records.items()
    ]
    for row, label in zip(rows, records):
        summary = {k: row[k] for k in ("forget_quality", "ks_statistic", "privleak_loss") if row.get(k) is not None}
        if summary:
            ctx.ledger.add_evaluations(
                models[label]["version_id"],
                whole["benchmark"],
                {"summary": summary},
                meta={"label": label, "reference": reference_label, "config_hash": key},
            )
    plot_started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    figures = make_plots(
        out, rows, records, {k: v for k, v in models.items() if roles.get(k) is None}, reference_label, title
    )
    ctx.stages.append(
        {"stage": "plots", "status": "computed", "seconds": time.perf_counter() - plot_started, "key": ""}
    )
    result = {
        "benchmark": whole["benchmark"],
        "config_hash": key,
        "code_version": whole["code"],
        "config": whole["config"],
        "data": whole.get("data"),
        **(extra or {}),
        "rows": rows,
        "stages": ctx.stages,
        "timings": {s["stage"]: round(s["seconds"], 2) for s in ctx.stages},
        "models": {label: {k: v for k, v in m.items() if k != "history"} for label, m in models.items()},
        "samples": {label: record.get("samples", [])[:3] for label, record in records.items()},
        "plots": figures,
        "workspace": str(ctx.workspace.home),
        "cache": "miss",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "total_seconds": time.perf_counter() - started,
        "out_dir": str(out),
    }
    result["home"] = str(ctx.home) if ctx.home else None
    result["files"] = write_results(out, result)
    ctx.progress(f"results written to {out}")
    return result


def render_bench(result: dict[str, Any]) -> Any:
    """A rich Table of a benchmark result, with the stage timings."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from lethe.bench.output import COLUMNS, fmt

    rows = result["rows"]
    compact = {
        "model",
        "forget_quality",
        "model_utility",
        "retain_utility",
        "forget_rouge_l_recall",
        "forget_truth_ratio",
        "retain_rouge_l_recall",
        "mia_auc_loss",
        "privleak_loss",
        "unlearn_seconds",
    }
    present = [(k, h) for k, h in COLUMNS if k in compact and any(r.get(k) is not None for r in rows)]
    table = Table(
        title=f"{result['benchmark']} · config {result['config_hash'][:12]} · "
        f"{'cached result' if result.get('cache') == 'hit' else 'computed'}"
    )
    for k, h in present:
        table.add_column(h, justify="left" if k == "model" else "right")
    for row in rows:
        table.add_row(*(fmt(row.get(k)) for k, _ in present))
    stages = Table(title="stages")
    for column in ("stage", "status", "seconds"):
        stages.add_column(column, justify="right" if column == "seconds" else "left")
    for stage in result.get("stages", []):
        stages.add_row(stage["stage"], stage["status"], f"{stage['seconds']:.1f}")
    files = result.get("files") or {}
    return Group(
        table,
        stages,
        Text(
            f"all columns in results.md / .csv; results: {result.get('out_dir')}  "
            f"({', '.join(files)})  plots: "
            f"{', '.join(result.get('plots', []))}"
        ),
    )
