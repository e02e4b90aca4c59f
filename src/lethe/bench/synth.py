"""`lethe bench synth`: the benchmark on the embedded synthetic world, exact replay as reference.

1. generate the world (`lethe.data.synth`, deterministic from entities and seed) into the
   benchmark's workspace; its never-trained entities are the membership non-members;
2. train the target lineage on the trained entities' QA pairs (and articles, if asked) in
   `slices` slices, with checkpoints;
3. forget every document about `forget_entities` entities: the *reference* is exact
   unlearning, `lethe.train.replay` of the lineage without them (restoring the last clean
   checkpoint), and each approximate method runs on the target;
4. evaluate with TOFU's protocol against the exact replay (forget quality = KS p-value of the
   forget truth ratios against the replay's; model utility over the retain split's three
   numbers), with membership AUCs against the holdout entities; write results and plots.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lethe.bench.cache import StageCache, code_version, config_hash
from lethe.bench.runner import (
    BenchContext,
    evaluate_stage,
    replay_stage,
    tokenizer_stage,
    train_stage,
    unlearn_stage,
)
from lethe.bench.tofu import cached_result, default_methods, finish
from lethe.errors import InputError, Where


@dataclass
class SynthBenchConfig:
    """Everything that determines a synthetic-world benchmark result (all of it is hashed)."""

    entities: int = 40
    """Entities in the world (10 % of them are held out, never trained)."""
    forget_entities: int = 3
    """Trained entities whose documents are forgotten."""
    articles: bool = False
    """Also train on the entities' articles (slower; adds text memorisation to the picture)."""
    methods: list[str] | None = None
    preset: str = "tiny"
    slices: int = 2
    epochs: int = 25
    lr: float = 2e-3
    batch_size: int = 16
    seq_len: int = 256
    bf16: bool = True
    vocab_size: int = 4096
    unlearn_epochs: int = 5
    unlearn_lr: float = 5e-4
    unlearn_batch_size: int = 8
    eval_items: int | None = 100
    max_new_tokens: int = 48
    """Synthetic answers are one short sentence."""
    eval_batch_size: int = 16
    seed: int = 0
    robustness: bool = True
    """Run the robustness suite (`lethe.eval.robustness`) on every model."""
    probes: list[str] | None = None
    """The robustness probes to run (None: every registered one)."""
    tune: list[str] | None = None
    """Methods to tune on calibration entities (`lethe.bench.tuning`) and run as `<m>+tuned`."""
    calibration: int | None = None
    """Calibration entities per draw (other trained ones than the forgotten, drawn seeded and
    matched to the forgotten ones in kind and size; None: as many as are forgotten)."""
    calibration_draws: int = 2
    """Disjoint calibration draws, each with its own exact replay; trials are judged on all of
    them pooled."""
    tune_trials: int = 20
    tune_budget: float | None = None
    """Seconds of tuning per method (no new trial starts after)."""
    tune_utility_fraction: float = 0.97
    tune_finalists: int = 3
    tune_time_fraction: float | None = 0.1
    """A trial is feasible only when unlearning a draw took at most this share of its exact replay."""
    tune_objective: str = "pooled"
    """How the draws score a trial: pooled, mean or worst (`lethe.forget.tuning.TuneSettings`)."""

    def replace(self, **changes: Any) -> SynthBenchConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def unlearn_settings(self) -> dict[str, Any]:
        return {
            "epochs": self.unlearn_epochs,
            "lr": self.unlearn_lr,
            "forget_batch_size": self.unlearn_batch_size,
            "retain_batch_size": self.unlearn_batch_size,
            "seed": self.seed,
        }

    def train_kwargs(self) -> dict[str, Any]:
        return {
            "preset_or_path": self.preset,
            "task": "auto",
            "slices": self.slices,
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "seed": self.seed,
            "bf16": self.bf16,
        }


def _ensure_world(ctx: BenchContext, entities: int, seed: int) -> None:
    if any(c.name == "synth/qa" for c, _ in ctx.ledger.collections()):
        ctx.stages.append({"stage": "generate world", "status": "cached", "seconds": 0.0, "key": ""})
        return
    from lethe.data.synth_ingest import ingest_synthetic_world

    started = time.perf_counter()
    _, report = ingest_synthetic_world(ctx.ledger, entities=entities, seed=seed)
    seconds = time.perf_counter() - started
    ctx.stages.append({"stage": "generate world", "status": "computed", "seconds": seconds, "key": ""})
    ctx.progress(f"generate world: {len(report.document_ids)} documents in {seconds:.1f} s")


def run_synth_bench(
    workspace: Any,
    config: SynthBenchConfig,
    *,
    out_dir: str | Path | None = None,
    rerun: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Run (or reuse) the synthetic-world benchmark; returns the results (also written to disk)."""
    from lethe.forget.name_guard import guarded
    from lethe.workspace import Workspace

    started = time.perf_counter()
    progress = progress or (lambda _m: None)
    if config.forget_entities < 1:
        raise InputError("forget at least one entity", Where(field="forget_entities"))
    methods = config.methods or default_methods()
    config = config.replace(methods=methods)
    whole = {"benchmark": "synth", "config": config.to_dict(), "code": code_version()}
    key = config_hash(whole)
    out = Path(out_dir) if out_dir else workspace.path("bench", f"synth-{key[:12]}")
    cached = cached_result(out, key, workspace.home)
    if cached is not None and not rerun:
        progress(f"results cached at {out} (configuration hash {key[:12]})")
        return {**cached, "cache": "hit", "out_dir": str(out)}

    world_key = f"synth-{config.entities}-{config.seed}"
    cache_root = Path(workspace.home).resolve() / "bench" / ".cache" / world_key
    ctx = BenchContext(
        guarded(Workspace(home=cache_root / "workspace").init()),
        StageCache(cache_root / "stages"),
        progress,
        rerun,
        home=Path(workspace.home).resolve(),
    )
    ledger = ctx.ledger
    _ensure_world(ctx, config.entities, config.seed)
    train_collections = ["synth/qa"] + (["synth/articles"] if config.articles else [])
    trained_ids = {i for name in train_collections for i in ledger.collection_ids(name)}
    entities = sorted(
        {
            name.split("synth/entity/", 1)[1]
            for c, _ in ledger.collections()
            if (name := c.name).startswith("synth/entity/") and set(ledger.collection_ids(name)) & trained_ids
        }
    )
    if config.forget_entities >= len(entities):
        raise InputError(
            f"cannot forget {config.forget_entities} of {len(entities)} trained entities",
            Where(field="forget_entities"),
        )
    forgotten = sorted(random.Random(config.seed).sample(entities, config.forget_entities))
    forget_ids = sorted({i for e in forgotten for i in ledger.collection_ids(f"synth/entity/{e}")} & trained_ids)
    retain_ids = sorted(trained_ids - set(forget_ids))
    progress(
        f"world: {len(entities)} trained entities; forgetting {', '.join(forgotten)} ({len(forget_ids)} documents)"
    )

    base = {"world": world_key, "train_collections": train_collections}
    tokenizer = tokenizer_stage(ctx, train_collections, config.vocab_size, base)
    trained = {**base, "tokenizer": tokenizer}
    target = train_stage(ctx, "target", trained, data=train_collections, tokenizer=tokenizer, **config.train_kwargs())
    exact = replay_stage(ctx, "exact replay", target, forget_ids, trained)
    from lethe.train.config import TrainConfig

    train_settings = TrainConfig(task="auto", seq_len=config.seq_len).to_dict()
    models: dict[str, dict[str, Any]] = {"target": target, "exact": exact}
    for method in methods:
        if method in models:  # `exact` is the reference replay above, not run twice
            continue
        models[method] = unlearn_stage(
            ctx, method, target, forget_ids, retain_ids, config.unlearn_settings(), train_settings, trained
        )

    from lethe.eval.tofu import TofuEvalConfig

    eval_config = TofuEvalConfig(
        max_items=config.eval_items,
        seed=config.seed,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.eval_batch_size,
    )
    tuning: dict[str, Any] = {}
    if config.tune:
        from lethe.bench.tuning import bench_tune, tune_settings

        subjects = {
            e: sorted(set(ledger.collection_ids(f"synth/entity/{e}")) & trained_ids)
            for e in entities
            if e not in forgotten
        }
        tuned, tuning = bench_tune(
            ctx,
            methods=config.tune,
            target=target,
            subjects=subjects,
            forget_ids=forget_ids,
            retain_ids=retain_ids,
            calibration=config.calibration or config.forget_entities,
            exact_without=lambda ids: replay_stage(ctx, "calibration exact replay", target, ids, trained),
            unlearn_settings=config.unlearn_settings(),
            train_settings=train_settings,
            eval_config=eval_config,
            key_material=trained,
            settings=tune_settings(config),
            seed=config.seed,
            request={e: sorted(set(ledger.collection_ids(f"synth/entity/{e}")) & trained_ids) for e in forgotten},
            draws=config.calibration_draws,
        )
        models.update(tuned)
    splits = {
        "forget": [d for d in ledger.documents(forget_ids) if d.kind == "qa"],
        "retain": [d for d in ledger.documents(retain_ids) if d.kind == "qa"],
    }
    if any(c.name == "synth/holdout/qa" for c, _ in ledger.collections()):  # a tiny world may have none
        splits["holdout"] = ledger.documents(ledger.collection_ids("synth/holdout/qa"))
    records = {
        label: evaluate_stage(ctx, label, model, splits, eval_config, trained, "synth")
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
            "exact",
            "synthetic world",
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
        "exact",
        "synthetic world",
        started,
        extra={**robust, "forgotten_entities": forgotten, **({"tuning": tuning} if tuning else {})},
    )
    if tuning:
        from lethe.bench.tuning import finish_tuning

        finish_tuning(out, result, exact["seconds"], "model_utility", "synthetic world")
    return result
