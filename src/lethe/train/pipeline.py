"""The public training API: `train`, `update`, `replay` and `resume`.

Each prepares a job on the main process (reading and writing the ledger: lineage, slice
plan, run), hands the plain-data `JobSpec` to every process, and runs it with
`lethe.train.job.execute`. All four return the versions they registered, in slice order.

```python
from lethe.train import train, update, replay
versions = train(ws, data="synth/train", preset_or_path="tiny", task="sft", slices=3, epochs=20)
update(ws, data="synth/week2")                          # one more slice on top of `latest`
replay(ws, versions[-1].lineage_id, [forgotten_doc_id])  # exact unlearning
```
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lethe.errors import ConflictError, InputError, LetheError, NotFoundError, Where
from lethe.ledger.states import RunKind, RunStatus, VersionKind, VersionStatus
from lethe.model.presets import PRESETS, load_base
from lethe.train import distributed
from lethe.train.checkpointing import LineagePaths, read_resume_state, save_spec
from lethe.train.config import TrainConfig
from lethe.train.environment import environment
from lethe.train.examples import SFT_ENCODERS, is_trainable
from lethe.train.job import FromBase, FromWeights, JobSpec, ResumePoint, SliceSpec, execute
from lethe.train.progress import ProgressCallback, no_progress
from lethe.train.slices import KEY_HASH, plan_slices, slice_seed, training_documents
from lethe.train.tokenizers import document_ids, resolve_tokenizer


def _on_main(prepare: Callable[[], Any]) -> Any:
    """Run `prepare` on the main process only and give its result (or its error) to all."""
    outcome: tuple[str, Any] = ("ok", None)
    if distributed.is_main_process():
        try:
            outcome = ("ok", prepare())
        except LetheError as error:
            outcome = ("error", error)
            if distributed.world_size() == 1:
                raise
        except BaseException as error:
            if distributed.world_size() == 1:
                raise
            outcome = ("error", RuntimeError(f"{type(error).__name__}: {error}"))
    kind, value = distributed.broadcast(outcome)
    if kind == "error":
        raise value
    return value


def _versions(workspace: Any, ids: Sequence[int]) -> list:
    return [workspace.ledger.resolve_version(i, allow_tainted=True) for i in ids]


def _run(workspace: Any, prepared: tuple[JobSpec, ResumePoint], callback: ProgressCallback) -> list:
    spec, progress = prepared
    ids = execute(workspace, spec, progress, callback)
    distributed.barrier()
    return _versions(workspace, ids)


def _slice_config(config: TrainConfig, index: int) -> dict:
    return {**config.to_dict(), "slice_seed": slice_seed(config.seed, index)}


def _trainable_ids(ledger: Any, data: str | Sequence[str]) -> tuple[list[int], list[Any]]:
    names = [data] if isinstance(data, str) else list(data)
    if not names:
        raise InputError("no data named: pass one or more collections", Where(field="data"))
    documents = [d for d in ledger.documents(document_ids(ledger, names)) if is_trainable(d)]
    if not documents:
        raise InputError(f"no trainable documents in {', '.join(names)}", Where(field="data"))
    return [d.id for d in documents], documents


def _check_task(documents: Sequence[Any], task: str) -> None:
    if task == "sft":
        kinds = sorted({d.kind for d in documents} - set(SFT_ENCODERS.names()))
        if kinds:
            raise InputError(
                f"task 'sft' cannot train on {', '.join(kinds)} documents; use --task auto or pretrain",
                Where(field="task"),
            )


def _lineage_name(ledger: Any, requested: str | None, base: str, data: str | Sequence[str]) -> str:
    if requested:
        return requested
    first = data if isinstance(data, str) else data[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{Path(base).name}-{first}").strip("-.") or "lineage"
    taken = {lineage.name for lineage in ledger.lineages()}
    name, n = stem, 2
    while name in taken:
        name, n = f"{stem}-{n}", n + 1
    return name


def _start_run(
    ledger: Any, kind: str, lineage_id: int, config: TrainConfig, *, parent: int | None, details: dict
) -> int:
    return ledger.start_run(
        kind,
        lineage_id=lineage_id,
        parent_version_id=parent,
        config={**config.to_dict(), **details},
        seed=config.seed,
        world_size=distributed.world_size(),
        effective_batch=config.batch_size,
        environment=environment(),
    )


def _base_provenance(record: Any) -> dict:
    """What a lineage records of the base it fine-tunes: provenance starts there."""
    return {
        "base_model": record.name,
        "base_model_id": record.id,
        "base_weights_sha256": record.weights_sha256,
        "pretraining_data": record.pretraining_data,
    }


def train(
    workspace: Any,
    *,
    data: str | Sequence[str],
    preset_or_path: str = "tiny",
    task: str | None = None,
    slices: int = 1,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seq_len: int | None = None,
    seed: int | None = None,
    lora: bool | None = None,
    bf16: bool | None = None,
    lineage: str | None = None,
    tokenizer: str | None = None,
    slice_plan: Sequence[Sequence[int]] | None = None,
    config: TrainConfig | None = None,
    base_model: str | None = None,
    callback: ProgressCallback = no_progress,
) -> list:
    """Train a new lineage on collection(s) `data` in `slices` slices; returns its versions.

    `preset_or_path` is a model preset (`nano`, `tiny`, ...) or a local HF model directory;
    `base_model` names a base imported with `lethe base add` instead (its own tokenizer and
    chat template are used; the lineage records which base it descends from).
    `config` gives every hyperparameter at once; keyword arguments that are not None
    override it (defaults: `TrainConfig`'s).
    `slice_plan` fixes the slices' document ids instead of the seeded split (used to check
    that exact replay equals training from scratch without some documents).
    """
    base_record = workspace.ledger.base_model(base_model) if base_model else None
    base = base_record.path if base_record else str(preset_or_path)
    settings = (config or TrainConfig()).replace(
        task=task, epochs=epochs, lr=lr, batch_size=batch_size, seq_len=seq_len, seed=seed, lora=lora, bf16=bf16
    )

    def prepare() -> tuple[JobSpec, ResumePoint]:
        ledger = workspace.ledger
        ids, documents = _trainable_ids(ledger, data)
        _check_task(documents, settings.task)
        if slice_plan is not None:
            known = set(ids)
            plan = [sorted(set(s) & known) for s in slice_plan]
        else:
            plan = plan_slices([(d.id, d.key) for d in documents], slices, settings.seed)
        resolved = resolve_tokenizer(workspace, tokenizer, base, documents)
        model = load_base(base, resolved.tokenizer, seed=settings.seed)
        name = _lineage_name(ledger, lineage, base, data)
        paths = LineagePaths.of(workspace, name)
        row = ledger.create_lineage(
            name,
            base,
            config={
                "tokenizer": resolved.source,
                "tokenizer_id": resolved.record_id,
                "init_seed": settings.seed,
                "data": data,
                "train": settings.to_dict(),
                "slice_plan": "given" if slice_plan is not None else KEY_HASH,
                **(_base_provenance(base_record) if base_record else {}),
            },
        )
        save_spec(paths, model, resolved.tokenizer)
        run_id = _start_run(
            ledger, "train", row.id, settings, parent=None, details={"data": data, "base": base, "slices": len(plan)}
        )
        specs = []
        for index, doc_ids in enumerate(plan):
            ledger.add_slice(row.id, index, doc_ids, run_id=run_id, config=_slice_config(settings, index))
            trains_on = training_documents(plan, index, cumulative=settings.cumulative)
            specs.append(SliceSpec(index=index, document_ids=trains_on, config=_slice_config(settings, index)))
        spec = JobSpec(
            run_kind=RunKind.TRAIN,
            version_kind=VersionKind.PRETRAIN if base in PRESETS else VersionKind.FINETUNE,
            lineage_id=row.id,
            lineage_name=name,
            run_id=run_id,
            slices=specs,
            start=FromBase(base=base, seed=settings.seed),
        )
        return spec, ResumePoint()

    return _run(workspace, _on_main(prepare), callback)


def update(
    workspace: Any,
    *,
    data: str | Sequence[str],
    version: str | int = "latest",
    new_only: bool = True,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    bf16: bool | None = None,
    callback: ProgressCallback = no_progress,
) -> list:
    """The weekly update: one new slice of `data` trained on top of `version`; returns [new version].

    With `new_only` (the default) the slice holds only documents the version has not seen
    (by the ledger's exposures); otherwise the whole collection. Other settings come from the
    lineage's last slice unless given; a cumulative lineage's new slice also trains on the
    documents of all its earlier slices.
    """

    def prepare() -> tuple[JobSpec, ResumePoint]:
        ledger = workspace.ledger
        parent = ledger.resolve_version(version)
        if parent.lineage_id is None:
            raise InputError(f"{parent.name} belongs to no lineage; train one with `lethe train`")
        lineage = ledger.lineage(parent.lineage_id)
        plan = ledger.slices(lineage.id)
        if not plan:
            raise NotFoundError(f"lineage {lineage.name} has no slices to continue")
        previous = TrainConfig.from_dict(plan[-1][0].config or {})
        settings = previous.replace(epochs=epochs, lr=lr, batch_size=batch_size, bf16=bf16)
        ids, documents = _trainable_ids(ledger, data)
        _check_task(documents, settings.task)
        if new_only:
            seen = set(ledger.documents_seen(parent.id, candidates=ids))
            ids = [i for i in ids if i not in seen]
            if not ids:
                names = data if isinstance(data, str) else ", ".join(data)
                raise InputError(
                    f"{parent.name} has seen every document of {names}; nothing new to train on "
                    "(pass --all to train on the whole collection again)"
                )
        index = plan[-1][0].index + 1
        run_id = _start_run(
            ledger,
            "update",
            lineage.id,
            settings,
            parent=parent.id,
            details={"data": data, "new_only": new_only, "base_version": parent.name},
        )
        ledger.add_slice(lineage.id, index, ids, run_id=run_id, config=_slice_config(settings, index))
        trains_on = training_documents([*(own for _, own in plan), ids], len(plan), cumulative=settings.cumulative)
        spec = JobSpec(
            run_kind=RunKind.UPDATE,
            version_kind=VersionKind.UPDATE,
            lineage_id=lineage.id,
            lineage_name=lineage.name,
            run_id=run_id,
            slices=[SliceSpec(index=index, document_ids=trains_on, config=_slice_config(settings, index))],
            start=FromWeights(kind="version", path=parent.path),
            parent_version_id=parent.id,
        )
        return spec, ResumePoint()

    return _run(workspace, _on_main(prepare), callback)


def _replay_start(ledger: Any, lineage: Any, plan: list, removed: set[int]) -> tuple[int, Any]:
    """(first slice to retrain, checkpoint to restore or None for the base model).

    Starts at the first slice holding a removed (excluded or erased) document and moves
    earlier until the checkpoint before it is clean: untainted, of a published version (not
    an unpublished audit replay, which may lack documents that were never forgotten), and
    whose version saw no removed document.
    """
    first = next((i for i, (_, ids) in enumerate(plan) if removed & set(ids)), None)
    if first is None:
        raise InputError("none of these documents is in the lineage's slices; nothing to replay")
    checkpoints = ledger.checkpoints(lineage.id)
    for position in range(first, 0, -1):
        index = plan[position - 1][0].index
        for checkpoint in reversed([c for c in checkpoints if c.slice_index == index and c.version_id]):
            version = ledger.resolve_version(checkpoint.version_id, allow_tainted=True)
            if version.status == VersionStatus.PUBLISHED and not ledger.documents_seen(
                version.id, candidates=sorted(removed)
            ):
                return position, checkpoint
    return 0, None


def replay(
    workspace: Any,
    lineage: str | int,
    exclude_document_ids: Sequence[int],
    *,
    publish: bool = True,
    aliases: Sequence[str] = ("latest",),
    retokenize: bool = False,
    callback: ProgressCallback = no_progress,
) -> list:
    """Exact unlearning: retrain the lineage's slices from the last checkpoint before any of
    `exclude_document_ids` (and any erased document) was seen, with the same seeds and
    settings (a cumulative slice again on the documents of every slice up to it), leaving them
    out. Returns the new versions (kind `replay`); the first inherits the coverage of the
    restored checkpoint's version, so none of them saw the documents.

    `retokenize` goes further: the lineage's tokenizer learned its merges from its training
    documents too, so it is retrained without the removed ones (same settings, same order)
    and every slice is replayed from the base initialisation into a new lineage that uses it,
    the model that training from scratch without those documents would have produced.
    """

    def prepare() -> tuple[JobSpec, ResumePoint]:
        ledger = workspace.ledger
        row = ledger.lineage(lineage)
        plan = ledger.slices(row.id)
        all_ids = sorted({d for _, ids in plan for d in ids})
        erased = {d.id for d in ledger.documents(all_ids) if not is_trainable(d)}
        excluded = set(exclude_document_ids)
        if retokenize:
            return _retokenized_replay(
                workspace, row, plan, excluded, erased, publish=publish, aliases=aliases
            ), ResumePoint()
        position, checkpoint = _replay_start(ledger, row, plan, excluded | erased)
        # a forget request that redacted mentions in a document trains on the redacted revision
        successors = ledger.redaction_successors(sorted(excluded | erased))
        parent = checkpoint.version_id if checkpoint else None
        first_config = TrainConfig.from_dict(plan[position][0].config or {})
        run_id = _start_run(
            ledger,
            "replay",
            row.id,
            first_config,
            parent=parent,
            details={
                "exclude": sorted(excluded),
                "erased": sorted(erased),
                "from_slice": plan[position][0].index,
                "redacted_revisions": {str(k): v for k, v in successors.items()},
            },
        )
        own = [[successors.get(d, d) for d in ids] for _, ids in plan]
        slices = [
            SliceSpec(
                index=sl.index,
                document_ids=training_documents(own, i, cumulative=bool(sl.config.get("cumulative"))),
                config=dict(sl.config),
            )
            for i, (sl, _) in enumerate(plan[position:], start=position)
        ]
        init_seed = (row.config or {}).get("init_seed", 0)
        start = (
            FromWeights(kind="checkpoint", path=checkpoint.path)
            if checkpoint
            else FromBase(base=row.base, seed=init_seed)
        )
        spec = JobSpec(
            run_kind=RunKind.REPLAY,
            version_kind=VersionKind.REPLAY,
            lineage_id=row.id,
            lineage_name=row.name,
            run_id=run_id,
            slices=slices,
            start=start,
            parent_version_id=parent,
            exclude_document_ids=sorted(excluded),
            publish=publish,
            aliases=list(aliases),
        )
        return spec, ResumePoint()

    return _run(workspace, _on_main(prepare), callback)


def _retokenized_replay(
    workspace: Any, row: Any, plan: list, excluded: set[int], erased: set[int], *, publish: bool, aliases: Sequence[str]
) -> JobSpec:
    """The job of a replay from scratch with a tokenizer retrained without the removed documents."""
    from lethe.data.tokenizer import load_tokenizer
    from lethe.train.tokenizers import retrain_without

    ledger = workspace.ledger
    config = row.config or {}
    if config.get("tokenizer_id") is None:
        raise InputError(
            f"lineage {row.name}'s tokenizer ({config.get('tokenizer')}) is not one lethe trained with "
            "its documents on record, so it cannot be retrained without them",
            Where(field="retokenize"),
        )
    if row.base not in PRESETS:
        raise InputError(
            f"lineage {row.name} fine-tunes {row.base}, whose embeddings belong to its tokenizer; "
            "only a lineage trained from scratch can be retokenized",
            Where(field="retokenize"),
        )
    removed = excluded | erased
    taken = {other.name for other in ledger.lineages()}
    name = next(f"{row.name}-retok{k}" for k in range(1, len(taken) + 2) if f"{row.name}-retok{k}" not in taken)
    path, record = retrain_without(
        workspace,
        config["tokenizer_id"],
        removed,
        name=name,
        reason=f"retokenized replay of lineage {row.name} without {len(removed)} documents",
    )
    tokenizer = load_tokenizer(path)
    init_seed = config.get("init_seed", 0)
    new = ledger.create_lineage(
        name,
        row.base,
        config={**config, "tokenizer": str(path), "tokenizer_id": record.id, "retokenized_from": row.name},
    )
    save_spec(LineagePaths.of(workspace, name), load_base(row.base, tokenizer, seed=init_seed), tokenizer)
    run_id = _start_run(
        ledger,
        "replay",
        new.id,
        TrainConfig.from_dict(plan[0][0].config or {}),
        parent=None,
        details={
            "exclude": sorted(excluded),
            "erased": sorted(erased),
            "from_slice": plan[0][0].index,
            "retokenized_from": row.name,
            "tokenizer_id": record.id,
        },
    )
    successors = ledger.redaction_successors(sorted(removed))
    own = [[successors.get(d, d) for d in ids if d not in removed or d in successors] for _, ids in plan]
    for (sl, _), ids in zip(plan, own, strict=True):
        ledger.add_slice(new.id, sl.index, ids, run_id=run_id, config=dict(sl.config or {}))
    slices = [
        SliceSpec(
            index=sl.index,
            document_ids=training_documents(own, i, cumulative=bool((sl.config or {}).get("cumulative"))),
            config=dict(sl.config or {}),
        )
        for i, (sl, _) in enumerate(plan)
    ]
    return JobSpec(
        run_kind=RunKind.REPLAY,
        version_kind=VersionKind.REPLAY,
        lineage_id=new.id,
        lineage_name=name,
        run_id=run_id,
        slices=slices,
        start=FromBase(base=row.base, seed=init_seed),
        parent_version_id=None,
        exclude_document_ids=sorted(excluded),
        publish=publish,
        aliases=list(aliases),
    )


RESTARTABLE = (RunKind.TRAIN, RunKind.UPDATE)
"""Run kinds `resume` restarts from their recorded job when no resume state was written
(a replay belongs to a forget request: `lethe requests resume` runs it again)."""


def _dead_jobs(ledger: Any) -> dict[str, Any]:
    """The newest dead run of each lineage whose job is on record, by lineage name."""
    from lethe.ledger.half_states import dead_runs

    found = {}
    for run in dead_runs(ledger):
        if run.kind in RESTARTABLE and run.lineage_id is not None and "job" in (run.metrics or {}):
            found[ledger.lineage(run.lineage_id).name] = run
    return found


def _pending_lineage(workspace: Any, lineage: str | None) -> LineagePaths:
    if lineage:
        name = workspace.ledger.lineage(lineage).name
        return LineagePaths.of(workspace, name)
    with_state = {p.parent.name for p in (workspace.home / "checkpoints").glob("*/resume")}
    pending = sorted(with_state | set(_dead_jobs(workspace.ledger)))
    if not pending:
        raise NotFoundError("no interrupted training to resume in this workspace")
    if len(pending) > 1:
        raise InputError(f"several lineages have interrupted training ({', '.join(pending)}); name one with --lineage")
    return LineagePaths.of(workspace, pending[0])


def resume(workspace: Any, *, lineage: str | None = None, callback: ProgressCallback = no_progress) -> list:
    """Continue an interrupted `train`/`update`/`replay` job from its last saved state.

    The job continues under a new run (kind as before, config `resumes_run`); the versions it
    registers cover the old run up to the saved step, so provenance stays exact. Returns all
    the job's versions, including those finished before the interruption.
    """

    def prepare() -> tuple[JobSpec, ResumePoint]:
        ledger = workspace.ledger
        paths = _pending_lineage(workspace, lineage)
        state = read_resume_state(paths)
        if state is not None:
            spec, progress = JobSpec.from_dict(state["job"]), ResumePoint(**state["progress"])
        elif paths.name in _dead_jobs(ledger):
            # Killed before its first resume state was in place: nothing was trained yet.
            spec, progress = JobSpec.from_dict(_dead_jobs(ledger)[paths.name].metrics["job"]), ResumePoint()
        else:
            raise NotFoundError(f"lineage {paths.name} has no resume state")
        old = ledger.run(spec.run_id)
        if old.status == RunStatus.SUCCEEDED:
            raise ConflictError(f"run {old.id} finished already; nothing to resume")
        if old.status == RunStatus.RUNNING:
            ledger.finish_run(old.id, "failed", error="interrupted; resumed by a later run")
        spec.interrupted = {**spec.interrupted, str(old.id): progress.global_step}
        settings = TrainConfig.from_dict(spec.slices[min(progress.position, len(spec.slices) - 1)].config)
        spec.run_id = _start_run(
            ledger,
            spec.run_kind,
            spec.lineage_id,
            settings,
            parent=spec.parent_version_id,
            details={
                **{k: v for k, v in (old.config or {}).items() if k not in settings.to_dict()},
                "resumes_run": old.id,
                "resumed_at_step": progress.global_step,
            },
        )
        return spec, progress

    return _run(workspace, _on_main(prepare), callback)
