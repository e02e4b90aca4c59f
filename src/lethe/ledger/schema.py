"""The ledger's tables (SQLAlchemy 2 ORM).

Schema changes happen only through Alembic migrations in `migrations/versions/`; this module
is the model those migrations are checked against (`tests/test_ledger_core.py`,
`migrate.schema_drift`).
Columns that grow with training (exposures) are kept narrow: integer ids only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict: JSON, list: JSON}


Timestamp = DateTime(timezone=True)


class Source(Base):
    """Where documents come from."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))  # wiki, jsonl, tofu, chat, synth, legacy
    license: Mapped[str | None] = mapped_column(String(200))
    uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Document(Base):
    """One revision of one document. `key` is stable across revisions (source + external id)."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id", "revision", name="uq_document_revision"),
        Index("ix_documents_key", "key"),
        Index("ix_documents_hash", "content_hash"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    external_id: Mapped[str] = mapped_column(String(400))
    key: Mapped[str] = mapped_column(String(700))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    kind: Mapped[str] = mapped_column(String(20))  # text, qa, chat
    title: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)  # None once erased
    data: Mapped[dict | None] = mapped_column(JSON)  # structured fields (question, answer, ...)
    meta: Mapped[dict | None] = mapped_column(JSON)  # page id, url, timestamps, revision ids
    tags: Mapped[list | None] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    forgotten_at: Mapped[datetime | None] = mapped_column(Timestamp)
    tombstone: Mapped[dict | None] = mapped_column(JSON)


class Collection(Base):
    """A named set of documents (e.g. `tofu/forget10`, `synth/holdout`)."""

    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class CollectionMember(Base):
    __tablename__ = "collection_members"
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Lineage(Base):
    """A chain of model versions trained slice by slice from one base."""

    __tablename__ = "lineages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    base: Mapped[str] = mapped_column(Text)  # preset name or local model directory
    config: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class BaseModelRecord(Base):
    """A pretrained base model imported with `lethe base add` (a local HF directory or GGUF file).

    Provenance starts here: what the base learned before lethe saw it is outside the ledger,
    and `pretraining_data` says so in every record.
    """

    __tablename__ = "base_models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source_path: Mapped[str] = mapped_column(Text)
    source_kind: Mapped[str] = mapped_column(String(20))  # gguf, hf
    source_sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)  # the converted directory in the workspace
    weights_sha256: Mapped[str] = mapped_column(String(64))
    license: Mapped[str | None] = mapped_column(String(200))
    parameters: Mapped[int] = mapped_column(BigInteger)
    architecture: Mapped[str | None] = mapped_column(String(100))
    quantization: Mapped[str | None] = mapped_column(String(200))  # GGUF tensor types: how weights were rounded
    pretraining_data: Mapped[str] = mapped_column(Text, default="not on record")
    meta: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Run(Base):
    """A train / update / unlearn / replay / eval / impact run."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="running")
    lineage_id: Mapped[int | None] = mapped_column(ForeignKey("lineages.id"))
    # Not a foreign key: runs and model_versions point at each other; `ledger check` verifies it.
    parent_version_id: Mapped[int | None] = mapped_column(Integer)
    config: Mapped[dict | None] = mapped_column(JSON)
    seed: Mapped[int | None] = mapped_column(Integer)
    world_size: Mapped[int] = mapped_column(Integer, default=1)
    effective_batch: Mapped[int | None] = mapped_column(Integer)
    environment: Mapped[dict | None] = mapped_column(JSON)  # library versions, git commit, host
    metrics: Mapped[dict | None] = mapped_column(JSON)  # loss curves, timings, summaries
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Slice(Base):
    """One ordered training slice of a lineage."""

    __tablename__ = "slices"
    __table_args__ = (UniqueConstraint("lineage_id", "index", name="uq_slice_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lineage_id: Mapped[int] = mapped_column(ForeignKey("lineages.id"))
    index: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    config: Mapped[dict | None] = mapped_column(JSON)  # seed, epochs, lr... for exact replay
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class SliceDocument(Base):
    __tablename__ = "slice_documents"
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)


class Tokenizer(Base):
    """A BPE tokenizer lethe trained on ledger documents.

    Its merges are a function of its training texts, so a forgotten document can live on in a
    vocabulary; `tokenizer_documents` records which documents those were, in training order,
    so that the leak can be measured and the tokenizer retrained without them.
    """

    __tablename__ = "tokenizers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))  # of tokenizer.json
    vocab_size: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict | None] = mapped_column(JSON)  # what retraining needs: vocab_size, min_frequency
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("tokenizers.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TokenizerDocument(Base):
    __tablename__ = "tokenizer_documents"
    tokenizer_id: Mapped[int] = mapped_column(ForeignKey("tokenizers.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)


class Exposure(Base):
    """Document `document_id` was in optimizer step `step` of run `run_id`.

    The one table that grows with tokens x epochs, so it is kept to three integers and bulk
    loaded. Its two references are not foreign keys: per-row checks tripled the cost of a bulk
    load (measured on PostgreSQL: 106k vs 323k rows/s). Only the ledger writes it, from ids it
    has just read, and `lethe ledger check` verifies that every row's run and document exist.
    WITHOUT ROWID on SQLite: the primary key is the table, one b-tree fewer per insert.
    """

    __tablename__ = "exposures"
    __table_args__ = (Index("ix_exposures_document", "document_id", "run_id", "step"), {"sqlite_with_rowid": False})
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class ModelVersion(Base):
    """A published (or candidate) model: weights on disk in HF layout, with lineage."""

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    lineage_id: Mapped[int | None] = mapped_column(ForeignKey("lineages.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    kind: Mapped[str] = mapped_column(String(20))  # pretrain, finetune, update, unlearn, replay
    status: Mapped[str] = mapped_column(String(20), default="published")  # candidate, discarded
    slice_index: Mapped[int | None] = mapped_column(Integer)  # last slice it includes
    path: Mapped[str] = mapped_column(Text)
    weights_sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    tainted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    taint_reason: Mapped[str | None] = mapped_column(Text)
    purged_at: Mapped[datetime | None] = mapped_column(Timestamp)


class VersionCoverage(Base):
    """Version `version_id` was shaped by steps 0..`max_step` of run `run_id`.

    A version's training path: its ancestors' runs plus its own, cut at a slice boundary where
    exact replay restored a checkpoint. "Which versions saw document X" joins this with
    exposures; the table stays small (versions x runs), exposures stay narrow.
    """

    __tablename__ = "version_coverage"
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    max_step: Mapped[int] = mapped_column(Integer)


class Alias(Base):
    __tablename__ = "aliases"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Checkpoint(Base):
    """Training state after slice `slice_index` of a lineage: what exact replay restores.

    `version_id` is the model version holding the weights at that point (its coverage says
    which documents the checkpoint saw); `path` holds the optimizer and RNG state beside it.
    """

    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_lineage", "lineage_id", "slice_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lineage_id: Mapped[int] = mapped_column(ForeignKey("lineages.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    slice_index: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    path: Mapped[str] = mapped_column(Text)
    weights_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    tainted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    purged_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ForgetRequest(Base):
    __tablename__ = "forget_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requester: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    selector: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    method: Mapped[str | None] = mapped_column(String(40))
    config: Mapped[dict | None] = mapped_column(JSON)
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    result_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    audit: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ForgetRequestDocument(Base):
    __tablename__ = "forget_request_documents"
    request_id: Mapped[int] = mapped_column(ForeignKey("forget_requests.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    trained: Mapped[bool] = mapped_column(Boolean, default=True)


class Evaluation(Base):
    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_version", "version_id", "benchmark"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("forget_requests.id"))
    benchmark: Mapped[str] = mapped_column(String(100))
    split: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    meta: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TokenImpact(Base):
    """How much version `version_id` memorised document `document_id`, token by token."""

    __tablename__ = "token_impacts"
    __table_args__ = (UniqueConstraint("document_id", "version_id", name="uq_token_impact"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    reference_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    reference: Mapped[str | None] = mapped_column(Text)  # checkpoint path when not a version
    score: Mapped[float] = mapped_column(Float)  # mean per-token impact
    average_loss: Mapped[float | None] = mapped_column(Float)
    relative_loss: Mapped[float | None] = mapped_column(Float)
    total_tokens: Mapped[int] = mapped_column(Integer)
    top_tokens: Mapped[list] = mapped_column(JSON)  # [{token_id, token, position, impact, ...}]
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str | None] = mapped_column(Text)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Message(Base):
    """One chat message; `parent_id` makes a conversation a tree (edit, regenerate, branch)."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    role: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    params: Mapped[dict | None] = mapped_column(JSON)
    stats: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Job(Base):
    """A long job run by a worker (UI forget requests, benchmarks): state survives refreshes."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    params: Mapped[dict | None] = mapped_column(JSON)
    progress: Mapped[list | None] = mapped_column(JSON)  # list of progress records
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Event(Base):
    """The append-only changelog of everything above."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_kind_ts", "kind", "ts"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(60))  # e.g. document.added, run.finished
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict | None] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(200))


class TuningCalibration(Base):
    """The exact answer for calibration subjects: a replay (or retrain) of a version's lineage
    without the calibration documents, computed once and reused by every tuning study on them."""

    __tablename__ = "tuning_calibrations"
    __table_args__ = (UniqueConstraint("version_id", "documents_sha256", name="uq_tuning_calibration"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    """The version the approximate methods unlearn from (the tuned target)."""
    documents_sha256: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the sorted calibration document ids (the cache key, with the version)."""
    subjects: Mapped[list] = mapped_column(JSON)
    """The calibration subjects (collection names, or author ids), as chosen."""
    document_ids: Mapped[list] = mapped_column(JSON)
    exact_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    seconds: Mapped[float] = mapped_column(Float)
    """Wall time of the exact replay (the baseline an approximate method's time is a fraction of)."""
    meta: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TuningStudy(Base):
    """One hyperparameter search of one method against one calibration (Optuna's study, kept in
    lethe's own tables: Optuna's RDB storage brings an `alembic_version` table of its own)."""

    __tablename__ = "tuning_studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    method: Mapped[str] = mapped_column(String(60))
    lineage_id: Mapped[int | None] = mapped_column(ForeignKey("lineages.id"))
    calibration_id: Mapped[int] = mapped_column(ForeignKey("tuning_calibrations.id"))
    config: Mapped[dict] = mapped_column(JSON)
    """Sampler seed, utility fraction, fixed settings, search space: what resuming must match."""
    best: Mapped[dict | None] = mapped_column(JSON)
    """The chosen trial: number, params, forget quality, utility, robustness check."""
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TuningTrial(Base):
    """One trial of a study: its parameters, its outcome, its intermediate forget quality."""

    __tablename__ = "tuning_trials"
    __table_args__ = (UniqueConstraint("study_id", "number", name="uq_tuning_trial"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("tuning_studies.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))  # complete, pruned, slow (stopped at the time ceiling), fail
    params: Mapped[dict] = mapped_column(JSON)
    distributions: Mapped[dict] = mapped_column(JSON)
    """Optuna's JSON of each parameter's distribution (to rebuild the study on resume)."""
    forget_quality: Mapped[float | None] = mapped_column(Float)
    utility: Mapped[float | None] = mapped_column(Float)
    utility_fraction: Mapped[float | None] = mapped_column(Float)
    """The trial's utility over the exact model's."""
    intermediate: Mapped[dict | None] = mapped_column(JSON)
    """{step: forget quality} reported to the pruner."""
    seconds: Mapped[float | None] = mapped_column(Float)
    """Wall time of the unlearning run alone."""
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
