"""A training job: a run that trains a list of slices in order and publishes their versions.

`train`, `update`, `replay` and `--resume` differ only in how they prepare a `JobSpec` (which
slices, starting from which weights, under which run); `execute` is the same for all. After
each slice the main process saves the version (candidate), the slice checkpoint and the
resume state; only when every slice is done are the versions published and `latest` moved,
so a failed run publishes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch

from lethe.digests import weights_sha256
from lethe.errors import LetheError
from lethe.eval.self_check import own_answers_check
from lethe.killpoints import kill_point
from lethe.ledger.states import RunStatus, VersionStatus
from lethe.model.io import MODEL_TENSORS, save_version
from lethe.model.presets import load_base
from lethe.train import distributed
from lethe.train.checkpointing import (
    LineagePaths,
    clear_resume_state,
    empty_model,
    load_resume_state,
    load_tokenizer_of,
    load_weights,
    read_resume_state,
    save_resume_state,
    save_slice_checkpoint,
)
from lethe.train.config import TrainConfig
from lethe.train.examples import build_examples
from lethe.train.exposures import ExposureRecorder
from lethe.train.loop import train_slice
from lethe.train.progress import ProgressCallback, ProgressEvent, no_progress


@dataclass(kw_only=True)
class SliceSpec:
    """One slice to train: its index in the lineage, its documents, its recorded config."""

    index: int
    document_ids: list[int]
    """What it trains on (`training_documents`): its own documents, or with `cumulative` those of
    every slice up to it; excluded and erased ones are left out when its examples are built."""
    config: dict
    """`TrainConfig.to_dict()` plus `slice_seed`: exactly what the ledger holds for the slice."""


@dataclass(frozen=True, kw_only=True)
class FromBase:
    """Start from the lineage's base: a preset's seeded random initialisation, or a pretrained model."""

    base: str
    seed: int
    kind: Literal["base"] = "base"


@dataclass(frozen=True, kw_only=True)
class FromWeights:
    """Start from saved weights: a slice checkpoint (replay) or a published version (update)."""

    kind: Literal["checkpoint", "version"]
    path: str


StartPoint = FromBase | FromWeights
"""Where a job's first slice starts; tagged by `kind` in the JSON a resume state keeps."""


def start_point(values: dict) -> StartPoint:
    """A start point from its JSON form (`from` is the tag resume states written before had)."""
    kind = values.get("kind", values.get("from"))
    if kind == "base":
        return FromBase(base=values["base"], seed=values["seed"])
    return FromWeights(kind=kind, path=values["path"])


@dataclass(kw_only=True)
class JobSpec:
    """Everything every process needs to run (or resume) a job; plain data, JSON-able."""

    run_kind: str
    """`train`, `update` or `replay`."""
    version_kind: str
    """Kind of the versions it registers: `pretrain`, `finetune`, `update` or `replay`."""
    lineage_id: int
    lineage_name: str
    run_id: int
    slices: list[SliceSpec]
    start: StartPoint
    """The starting weights."""
    parent_version_id: int | None = None
    """The version the first slice builds on (its coverage is inherited)."""
    exclude_document_ids: list[int] = field(default_factory=list)
    """Documents left out of every slice (exact replay); erased documents are always left out."""
    publish: bool = True
    """Publish the versions when the job succeeds (else they stay candidates)."""
    aliases: list[str] = field(default_factory=lambda: ["latest"])
    """Aliases pointed at the last version when publishing."""
    interrupted: dict[str, int] = field(default_factory=dict)
    """Earlier runs of this job cut short, with the last step whose state was kept."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> JobSpec:
        values = dict(values)
        values["slices"] = [SliceSpec(**s) for s in values["slices"]]
        values["start"] = start_point(values["start"])
        return cls(**values)


@dataclass(kw_only=True)
class ResumePoint:
    """Where a job stands: what the resume state records besides the weights."""

    position: int = 0
    """Index into `JobSpec.slices` of the slice in progress."""
    step_in_slice: int = 0
    global_step: int = 0
    """Steps of the job so far (the numbering of exposures, continued across resumes)."""
    versions: list[int] = field(default_factory=list)
    """Candidate versions registered so far, in slice order."""


def _merge_coverage(*parts: dict) -> dict[int, int]:
    merged: dict[int, int] = {}
    for part in parts:
        for run_id, step in part.items():
            merged[int(run_id)] = max(merged.get(int(run_id), -1), int(step))
    return merged


class JobRunner:
    """Runs one `JobSpec` on this process; ledger and files are written by the main process only."""

    def __init__(self, workspace: Any, spec: JobSpec, progress: ResumePoint, callback: ProgressCallback):
        self.workspace = workspace
        self.ledger = workspace.ledger
        self.spec = spec
        self.progress = progress
        self.callback = callback if distributed.is_main_process() else no_progress
        self.paths = LineagePaths.of(workspace, spec.lineage_name)
        self.tokenizer = load_tokenizer_of(self.paths)
        self.recorder = ExposureRecorder(self.ledger, spec.run_id)
        self.main = distributed.is_main_process()
        self.metrics: list[dict] = []

    # -- the starting model --------------------------------------------------------------------

    def starting_model(self):
        start, progress = self.spec.start, self.progress
        if progress.position > 0 or progress.step_in_slice > 0:
            model = empty_model(self.paths)
            if progress.step_in_slice == 0:  # a slice boundary: the weights are all there is
                load_resume_state(self.paths, model)
            return model  # mid-slice: train_slice's resume hook restores everything
        match start:
            case FromBase(base=base, seed=seed):
                return load_base(base, self.tokenizer, seed=seed)
            case FromWeights(path=path):
                return load_weights(empty_model(self.paths), path)

    # -- the job -------------------------------------------------------------------------------

    def run(self) -> list[int]:
        model = self.starting_model()
        fresh = self.progress.position == 0 and self.progress.step_in_slice == 0
        if fresh and self.main:
            # The job itself goes on record first: a process killed before its first resume
            # state is in place leaves a run that `lethe train --resume` can still restart.
            self.ledger.update_run_metrics(self.spec.run_id, {"job": self.spec.to_dict()})
            self._mark_start(model)
        distributed.barrier()
        for position in range(self.progress.position, len(self.spec.slices)):
            model = self.train_one(position, model)
        # Every process must end with the same weights; a mismatch is a bug worth failing on.
        checksums = distributed.gather([distributed.parameter_checksum(model)])
        if self.main:
            if len(set(checksums)) != 1:
                raise RuntimeError(f"processes disagree on the trained weights: {checksums}")
            self.ledger.update_run_metrics(self.spec.run_id, {"parameter_checksums": checksums})
            self.publish()
        distributed.barrier()
        return list(self.progress.versions)

    def train_one(self, position: int, model):
        spec, progress = self.spec, self.progress
        sl = spec.slices[position]
        config = TrainConfig.from_dict(sl.config)
        excluded = set(spec.exclude_document_ids)
        documents = self.ledger.documents([d for d in sl.document_ids if d not in excluded])
        examples = build_examples(documents, self.tokenizer, config)
        event = {
            "slice_index": sl.index,
            "slice_position": position,
            "slices_total": len(spec.slices),
            "run_kind": spec.run_kind,
        }
        self.callback(ProgressEvent(kind="slice_start", global_step=progress.global_step, **event))
        resuming = progress.step_in_slice > 0
        offset = progress.global_step - progress.step_in_slice

        def resume(m, optimizer, scheduler) -> int:
            return load_resume_state(self.paths, m, optimizer, scheduler).extra["progress"]["step_in_slice"]

        def save_state(m, optimizer, scheduler, step: int) -> None:
            if self.main:
                state = ResumePoint(
                    position=position, step_in_slice=step, global_step=offset + step, versions=list(progress.versions)
                )
                save_resume_state(self.paths, m, optimizer, scheduler, offset + step, self._extra(state))
            distributed.barrier()

        if examples:
            result = train_slice(
                model,
                examples,
                config,
                sl.config["slice_seed"],
                pad_token_id=self.tokenizer.pad_token_id,
                recorder=self.recorder,
                step_offset=offset,
                resume=resume if resuming else None,
                save_state=save_state,
                report=self.callback if self.main else None,
                event=event,
            )
            model, steps = result.model, result.steps
            stats = {
                "steps": steps,
                "examples": result.examples,
                "tokens": result.tokens,
                "seconds": round(result.seconds, 3),
                "tokens_per_second": round(result.tokens / result.seconds, 1) if result.seconds else None,
                "final_loss": result.epoch_losses[-1] if result.epoch_losses else None,
                "epoch_losses": [round(loss, 5) for loss in result.epoch_losses],  # the report's curves
            }
            if self.main and position == len(spec.slices) - 1:  # what `lethe chat` will meet first
                check = own_answers_check(model, self.tokenizer, documents)
                if check is not None:
                    stats.update(check.to_meta())
            optimizer, scheduler, adapter = result.optimizer, result.scheduler, result.adapter
        else:  # every document of the slice was erased or excluded: nothing to learn
            steps, stats, optimizer, scheduler, adapter = 0, {"steps": 0, "examples": 0}, None, None, None
        progress.global_step = offset + steps
        self.recorder.flush()
        if self.main:
            self._finish_slice(position, model, optimizer, scheduler, stats, len(documents), adapter)
        distributed.barrier()
        progress.position, progress.step_in_slice = position + 1, 0
        return model

    def _mark_start(self, model) -> None:
        """Write the job's resume state before its first step, so any crash can be resumed.

        A state left by an earlier job of the lineage that was never resumed is replaced
        (and the replacement recorded): only one job per lineage can be resumed.
        """
        left = read_resume_state(self.paths)
        if left is not None:
            self.ledger.record_event(
                "train.resume_state_discarded",
                "run",
                left["job"]["run_id"],
                lineage=self.spec.lineage_name,
                replaced_by_run=self.spec.run_id,
            )
        save_resume_state(self.paths, model, torch.optim.AdamW(model.parameters()), None, 0, self._extra(self.progress))
        kill_point("train.started")

    def _extra(self, progress: ResumePoint) -> dict:
        return {"job": self.spec.to_dict(), "progress": asdict(progress)}

    def _finish_slice(self, position, model, optimizer, scheduler, stats: dict, n_documents: int, adapter=None) -> None:
        spec, progress, ledger = self.spec, self.progress, self.ledger
        sl = spec.slices[position]
        parent = progress.versions[-1] if progress.versions else spec.parent_version_id
        coverage = _merge_coverage(ledger.coverage(parent) if parent else {}, spec.interrupted)
        path = self.paths.version(sl.index, spec.run_id)
        if adapter is not None:
            adapter.base = self._adapter_base(parent)
        sha = save_version(model, self.tokenizer, path, adapter=adapter)
        checkpoint = self.paths.slice_checkpoint(sl.index, spec.run_id)
        if optimizer is None:  # an empty slice: keep the weights, with a fresh optimizer's state
            optimizer = torch.optim.AdamW(model.parameters())
        save_slice_checkpoint(
            checkpoint,
            model,
            optimizer,
            scheduler,
            progress.global_step,
            {"slice_index": sl.index, "run_id": spec.run_id},
        )
        kill_point("train.slice_saved")
        meta = {"lineage": spec.lineage_name, "documents": n_documents, **stats}
        # The slice's version, checkpoint and the run's metrics are one unit of work: a kill
        # leaves either none of them on record or all (files without rows are orphans that
        # `lethe ledger check` lists and resume overwrites).
        with ledger.transaction():
            version = ledger.register_version(
                kind=spec.version_kind,
                path=str(path),
                weights_sha256=sha,
                lineage_id=spec.lineage_id,
                parent_id=parent,
                run_id=spec.run_id,
                run_max_step=progress.global_step,
                coverage=coverage,
                slice_index=sl.index,
                status=VersionStatus.CANDIDATE,
                meta=meta,
                aliases=(),
            )
            ledger.register_checkpoint(
                lineage_id=spec.lineage_id,
                slice_index=sl.index,
                path=str(checkpoint),
                weights_sha256=weights_sha256(checkpoint, files=[MODEL_TENSORS]),
                version_id=version.id,
                run_id=spec.run_id,
            )
            metrics = [*self.metrics, {"slice_index": sl.index, "version": version.name, **stats}]
            ledger.update_run_metrics(spec.run_id, {"slices": metrics, "global_step": progress.global_step})
        self.metrics = metrics
        progress.versions.append(version.id)
        kill_point("train.slice_recorded")
        after = ResumePoint(
            position=position + 1, step_in_slice=0, global_step=progress.global_step, versions=list(progress.versions)
        )
        save_resume_state(self.paths, model, optimizer, scheduler, progress.global_step, self._extra(after))
        self.callback(
            ProgressEvent(
                kind="slice_end",
                slice_index=sl.index,
                slice_position=position,
                slices_total=len(spec.slices),
                global_step=progress.global_step,
                version=version.name,
                run_kind=spec.run_kind,
            )
        )

    def _adapter_base(self, parent: int | None) -> str | None:
        """The directory of the weights a slice's adapter was trained on: its parent version's, the
        restored checkpoint's, or the base model's."""
        if parent is not None:
            return self.ledger.resolve_version(parent, allow_tainted=True).path
        start = self.spec.start
        return start.path if isinstance(start, FromWeights) else start.base

    def publish(self) -> None:
        spec, ledger, versions = self.spec, self.ledger, self.progress.versions
        kill_point("train.before_publish")
        with ledger.transaction():
            if spec.publish:
                for i, version_id in enumerate(versions):
                    last = i == len(versions) - 1
                    ledger.publish_version(version_id, aliases=tuple(spec.aliases) if last else ())
            ledger.finish_run(
                spec.run_id, RunStatus.SUCCEEDED, metrics={"versions": versions, "exposures": self.recorder.recorded}
            )
        kill_point("train.published")
        clear_resume_state(self.paths)
        if versions:
            self.callback(
                ProgressEvent(
                    kind="published",
                    slice_index=spec.slices[-1].index,
                    slice_position=len(spec.slices) - 1,
                    slices_total=len(spec.slices),
                    global_step=self.progress.global_step,
                    version=ledger.resolve_version(versions[-1], allow_tainted=True).name,
                    run_kind=spec.run_kind,
                )
            )


def execute(
    workspace: Any, spec: JobSpec, progress: ResumePoint | None = None, callback: ProgressCallback = no_progress
) -> list[int]:
    """Run the job on every process; a failure marks the run failed and publishes nothing."""
    try:
        return JobRunner(workspace, spec, progress or ResumePoint(), callback).run()
    except BaseException as error:
        if distributed.is_main_process():
            status = RunStatus.CANCELLED if isinstance(error, KeyboardInterrupt) else RunStatus.FAILED
            message = error.message if isinstance(error, LetheError) else f"{type(error).__name__}: {error}"
            try:
                workspace.ledger.finish_run(spec.run_id, status, error=message)
            except Exception as ledger_error:  # noqa: BLE001 - the original error matters more
                error.add_note(f"(could not mark run {spec.run_id} {status}: {ledger_error})")
        raise
