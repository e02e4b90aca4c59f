"""`lethe demo`: the whole story on the embedded default, start to finish.

A fictional world is generated and ingested; a tokenizer and a model are trained in slices,
the last slice arriving as the weekly update; the model answers a few questions; a deletion
request names some entities; exact replay and a fast approximate method both unlearn them and
are audited against each other; the exact result is published, the report written. Every
step is timed, and the summary is what an engineer would show a data-protection officer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lethe.errors import InputError


@dataclass
class DemoConfig:
    """Sizes and settings of the demo; `quick()` is the variant the test suite runs."""

    entities: int = 60
    """Entities in the generated world (10% are held out, never trained)."""
    seed: int = 7
    """Seed of the world, the model and the unlearning runs."""
    preset: str = "tiny"
    """Model preset trained from scratch."""
    vocab_size: int = 2048
    """BPE vocabulary of the tokenizer trained on the world."""
    slices: int = 3
    """Slices of the initial training (the weekly update adds one more)."""
    cumulative: bool = True
    """SISA-style slices: each slice trains on every document of the slices so far, so the
    model keeps what earlier slices taught it; forgetting replays from the first slice that
    held a document."""
    epochs: int = 12
    """Epochs per slice."""
    lr: float = 3e-3
    batch_size: int = 16
    seq_len: int = 128
    update_fraction: float = 0.2
    """Share of trained entities whose documents arrive with the weekly update."""
    forget_entities: int = 2
    """Entities named by the deletion request (taken from the last initial slice)."""
    fast_method: str = "grad_diff"
    """The approximate method audited against exact replay."""
    fast_steps: int = 30
    fast_lr: float = 5e-4
    eval_items: int = 60
    """Items per split in the evaluations."""
    eval_new_tokens: int = 32
    """Longest greedy answer in the evaluations."""
    questions: int = 3
    """Questions put to the model before and after forgetting."""
    mentions: str = "redact"
    """What the request does with other entities' documents naming the forgotten ones
    (`lethe.forget.mentions`): redact them (the default), drop them or keep them."""
    base: str | None = None
    """Fine-tune this base model (`lethe base add`; ``smollm2`` is imported from the installed
    GGUF if missing) with LoRA instead of training `preset` from scratch."""
    lora_r: int = 16
    qa_per_entity: int | None = None
    """Train on only the first N QA pairs of each entity (None: all of them): the real base's
    demo keeps a 2-core CPU under 15 minutes this way."""

    @classmethod
    def real(cls, base: str = "smollm2") -> DemoConfig:
        """The story on a real pretrained chat model, sized for a 2-core CPU (< 15 minutes)."""
        # 7 entities: 6 known from the start in 2 slices of 3, 1 in the weekly update; the
        # request names 2 of the last slice, so exact replay retrains 1 entity and the update
        return cls(
            entities=7,
            base=base,
            slices=2,
            cumulative=False,
            epochs=5,
            lr=1e-3,
            batch_size=4,
            seq_len=128,
            forget_entities=2,
            qa_per_entity=4,
            fast_steps=3,
            fast_lr=5e-4,
            eval_items=5,
            eval_new_tokens=16,
            questions=2,
        )

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(
            entities=12,
            preset="nano",
            vocab_size=768,
            slices=2,
            epochs=4,
            forget_entities=1,
            fast_steps=6,
            eval_items=20,
            questions=2,
            seq_len=96,
        )


@dataclass
class DemoResult:
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, dict] = field(default_factory=dict)
    answers: list[dict] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    report: str | None = None
    request_ids: dict[str, int] = field(default_factory=dict)
    load_average: list[float] = field(default_factory=list)
    """The 1-minute load average at the start and at the end (the demo's own threads count)."""

    def as_dict(self) -> dict:
        return asdict(self)


class _Steps:
    def __init__(self, result: DemoResult, say: Callable[[str], None]):
        self.result, self.say = result, say

    def __call__(self, name: str):
        steps = self

        class _Step:
            def __enter__(self):
                steps.say(f"[bold cyan]▶ {name}[/]")
                self.started = time.perf_counter()

            def __exit__(self, *exc):
                seconds = time.perf_counter() - self.started
                steps.result.timings[name] = round(seconds, 1)
                if exc[0] is None:
                    steps.say(f"  [green]done[/] in {seconds:.1f}s")

        return _Step()


def _split_entities(
    ledger, update_fraction: float, per_entity: int | None = None
) -> tuple[list[str], list[str], dict[str, list[int]]]:
    """Trained entities known from the start, those arriving with the update, and their QA ids
    (the first `per_entity` of each, if given)."""
    by_entity: dict[str, list[int]] = {}
    for doc in ledger.documents(ledger.collection_ids("synth/qa")):
        by_entity.setdefault(doc.meta["entity"], []).append(doc.id)
    if per_entity is not None:
        by_entity = {entity: sorted(ids)[:per_entity] for entity, ids in by_entity.items()}
    entities = sorted(by_entity)
    n_update = max(1, int(len(entities) * update_fraction))
    return entities[:-n_update], entities[-n_update:], by_entity


def _ask(version, questions: list[dict], max_new_tokens: int = 40) -> list[str]:
    from lethe.chat.engine import ChatEngine, collect
    from lethe.chat.sampling import SamplingParams
    from lethe.model.io import load_version

    model, tokenizer = load_version(version.path)
    engine = ChatEngine(model, tokenizer)
    try:
        params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
        return [
            collect(engine.chat([{"role": "user", "content": q["question"]}], params)).text.strip() for q in questions
        ]
    finally:
        engine.close()


def run_demo(
    workspace, config: DemoConfig | None = None, *, say: Callable[[str], None] = print, progress: Callable | None = None
) -> DemoResult:
    """Run the demo in `workspace` (which should be empty); returns timings and the summary."""
    from lethe.data.synth_ingest import ingest_synthetic_world
    from lethe.eval.suite import SuiteConfig
    from lethe.forget import Selector, create_request, discard_request, publish_request, run_request
    from lethe.train.config import TrainConfig
    from lethe.train.pipeline import train, update
    from lethe.train.tokenizers import train_workspace_tokenizer

    config = config or DemoConfig()
    result = DemoResult(load_average=[_load()])
    step = _Steps(result, say)
    ws = workspace.init()
    ledger = ws.ledger
    if ledger.list_versions(include_discarded=True):
        raise InputError(f"the workspace {ws.home} already holds models; run the demo in a fresh --home")
    callback = progress or (lambda _event: None)

    with step("generate and ingest a fictional world"):
        world, report = ingest_synthetic_world(ledger, entities=config.entities, seed=config.seed)
        initial_entities, weekly_entities, by_entity = _split_entities(
            ledger, config.update_fraction, config.qa_per_entity
        )
        initial = [d for e in initial_entities for d in by_entity[e]]
        weekly = [d for e in weekly_entities for d in by_entity[e]]
        # Documents arrive entity by entity (as pages do), so each slice holds whole entities.
        per_slice = -(-len(initial_entities) // config.slices)
        plan = [
            [d for e in initial_entities[i : i + per_slice] for d in by_entity[e]]
            for i in range(0, len(initial_entities), per_slice)
        ]
        ledger.create_collection("demo/initial", initial, "QA of the entities known from the start")
        ledger.create_collection("demo/weekly-update", weekly, "QA arriving with the weekly update")
        say(
            f"  {len(world.entities)} entities, {report.added} documents; {len(initial)} QA to start, "
            f"{len(weekly)} in the weekly update, {len(_held_out(ledger))} held out"
        )
    if config.base:
        with step(f"import the base model {config.base}"):
            from lethe.model.base import ensure_base

            record = ensure_base(ws, config.base)
            say(
                f"  {record.parameters:,} parameters, weights dequantised from {record.quantization or 'full precision'}; "
                f"pretraining data: {record.pretraining_data}"
            )
    else:
        with step("train the tokenizer"):
            train_workspace_tokenizer(
                ws, collections=["synth/qa", "synth/articles"], vocab_size=config.vocab_size, name="demo"
            )
    what = f"fine-tune {config.base} with LoRA" if config.base else f"train a {config.preset} model"
    with step(f"{what} in {config.slices} slices"):
        settings = TrainConfig(
            epochs=config.epochs,
            lr=config.lr,
            batch_size=config.batch_size,
            seq_len=config.seq_len,
            seed=config.seed,
            cumulative=config.cumulative,
            lora=bool(config.base),
            lora_r=config.lora_r,
            bf16=bool(config.base),
        )
        versions = train(
            ws,
            data="demo/initial",
            preset_or_path=config.preset,
            base_model=config.base,
            slices=len(plan),
            slice_plan=plan,
            config=settings,
            tokenizer=None if config.base else "demo",
            lineage="demo",
            callback=callback,
        )
    with step("the weekly update: one more slice"):
        versions += update(ws, data="demo/weekly-update", epochs=config.epochs, callback=callback)
    base = versions[-1]
    result.versions["trained"] = base.name

    # The request names entities of the last initial slice: replay restarts from the checkpoint
    # before it and retrains that slice and the update, not the whole history.
    last_initial = set(plan[-1])
    chosen = [e for e in initial_entities if set(by_entity[e]) <= last_initial][: config.forget_entities]
    forget_docs = [d for e in chosen for d in by_entity[e]]
    questions = [doc.data for doc in ledger.documents(forget_docs[: config.questions])]
    if config.base:  # what the base knew before lethe saw it must survive the forgetting
        questions.append({"question": "What is the capital of France?", "answer": "Paris."})
    with step("ask the model about the entities to be forgotten"):
        before = _ask(base, questions)
    selector = Selector(docs=[str(d) for d in forget_docs])
    # A ticket, not a name: the reason is kept in the ledger (and in taint notes) after erasure.
    reason = f"deletion request DEMO-{config.seed}: {len(chosen)} entities"
    suite = SuiteConfig(max_items=config.eval_items, max_new_tokens=config.eval_new_tokens)
    with step("exact unlearning: replay from the last clean checkpoint"):
        exact_id = create_request(
            ws, selector, method="exact", reason=reason, requester="demo", mentions=config.mentions
        )
        exact_outcome = run_request(ws, exact_id, publish=False, callback=callback, suite=suite)
        if exact_outcome.tokenizer:
            from lethe.eval.audit_render import describe_tokenizer_leak

            say(f"  tokenizer: {describe_tokenizer_leak(exact_outcome.tokenizer)}")
    with step(f"fast unlearning: {config.fast_method}"):
        fast_id = create_request(
            ws,
            selector,
            method=config.fast_method,
            reason=reason,
            requester="demo",
            mentions=config.mentions,
            config={
                "steps": config.fast_steps,
                "lr": config.fast_lr,
                "seed": config.seed,
                "eval_every": max(1, config.fast_steps // 5),
                **({"lora": True, "lora_r": config.lora_r} if config.base else {}),
            },
        )
        run_request(ws, fast_id, publish=False, callback=callback, suite=suite)
    result.request_ids = {"exact": exact_id, config.fast_method: fast_id}
    exact_version = ledger.resolve_version(ledger.forget_request(exact_id).result_version_id, allow_tainted=True)
    fast_version = ledger.resolve_version(ledger.forget_request(fast_id).result_version_id, allow_tainted=True)
    with step("ask both unlearned models again"):
        after_exact = _ask(exact_version, questions)
        after_fast = _ask(fast_version, questions)
    result.answers = [
        {"question": q["question"], "truth": q["answer"], "before": b, "exact": e, config.fast_method: f}
        for q, b, e, f in zip(questions, before, after_exact, after_fast)
    ]
    result.summary = _summary(ledger, exact_id, fast_id, config.fast_method)
    with step("publish the exact version; taint and erase"):
        discard_request(ws, fast_id)
        # the demo, not a user, chose: it keeps the fast candidate only to compare with the exact one
        ledger.update_forget_request(
            fast_id,
            error=f"discarded by the demo: it publishes the exact replay; {config.fast_method} was for comparison",
        )
        outcome = publish_request(ws, exact_id)
        result.versions.update(
            {"published": outcome.version, "tainted": ", ".join(outcome.tainted), config.fast_method: fast_version.name}
        )
    with step("write the HTML report"):
        from lethe.report.html import write_report

        result.report = str(write_report(ws, ws.reports_dir()))
    result.load_average.append(_load())
    write_summary(result, config, ws.reports_dir() / SUMMARY_FILE)
    return result


def _load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


SUMMARY_FILE = "demo-summary.json"


def write_summary(result: DemoResult, config: DemoConfig, path) -> Path:
    """The demo's figures as JSON (what README's demo table is generated from), with its settings."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "benchmark": "demo",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "config": asdict(config),
        "torch_threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "total_seconds": round(sum(result.timings.values()), 1),
        **{k: v for k, v in result.as_dict().items() if k != "report"},
    }
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


METRICS = ("token_accuracy", "exact_match", "loss", "mia_auc_loss")


def _held_out(ledger) -> list[int]:
    """The never-trained entities' documents (a tiny world may have none)."""
    known = {c.name for c, _ in ledger.collections()}
    return ledger.collection_ids("synth/holdout") if "synth/holdout" in known else []


def _summary(ledger, exact_id: int, fast_id: int, fast_method: str) -> dict[str, dict]:
    """Per model (before / exact / fast): forget and retain metrics and forget quality."""
    rows: dict[str, dict] = {}
    exact = ledger.forget_request(exact_id)
    fast = ledger.forget_request(fast_id)
    labels = {exact.base_version_id: "before", exact.result_version_id: "exact", fast.result_version_id: fast_method}
    for request_id in (exact_id, fast_id):
        for e in ledger.evaluations(request_id=request_id):
            label = labels.get(e.version_id)
            if label is None or e.split not in ("forget", "retain", "holdout", "general"):
                continue
            if e.metric in METRICS:
                rows.setdefault(label, {})[f"{e.split}_{e.metric}"] = e.value
    audit = fast.audit or {}
    quality = (audit.get("reference_comparison") or {}).get("forget_quality_vs_reference")
    if quality is not None:
        rows.setdefault(fast_method, {})["forget_quality_vs_exact"] = quality
    return rows
