"""The states and kinds the ledger records, as types.

Each is a `StrEnum`: a member *is* its string (`RequestStatus.SUCCEEDED == "succeeded"`),
so rows, JSON and events keep plain text while code names states it can check.
"""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    """Where a forget request stands."""

    PENDING = "pending"
    RUNNING = "running"
    EVALUATED = "evaluated"
    """A candidate version and its audit exist; nothing is published, tainted or erased."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobStatus(StrEnum):
    """A background job of the server's worker."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    """Registered but not served as `latest`; published or discarded later."""
    PUBLISHED = "published"
    DISCARDED = "discarded"


class VersionKind(StrEnum):
    PRETRAIN = "pretrain"
    FINETUNE = "finetune"
    UPDATE = "update"
    UNLEARN = "unlearn"
    REPLAY = "replay"


class RunKind(StrEnum):
    TRAIN = "train"
    UPDATE = "update"
    REPLAY = "replay"
    UNLEARN = "unlearn"
    EVAL = "eval"


FINISHED_REQUEST = (RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.CANCELLED)
FINISHED_RUN = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
FINISHED_JOB = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
