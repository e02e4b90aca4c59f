"""The server's background worker: runs long jobs queued in the ledger, one at a time.

The web UI never runs a forget request in its own request thread: it records the request,
queues a job (`Ledger.create_job`) and polls the job's progress records from the ledger. A
`JobWorker` thread in the server process claims queued jobs oldest first, runs each with the
handler registered for its kind, appends progress records as the handler reports them and
honours `cancel_requested`. Because every bit of state lives in the ledger, a browser refresh
loses nothing, and a server that died mid-job leaves a trace: on start the worker marks the
jobs a dead process left `running` as failed (and lets the handler tidy what they owned).

Several servers may share one ledger: claiming a job is a compare-and-set in the ledger, so
each job runs exactly once. A job records which host and process ran it, so a second server
on another host never fails the first one's live jobs by mistake.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, Self

from lethe.errors import CancelledError
from lethe.forget import job as forget_job
from lethe.ledger.states import JobStatus
from lethe.registry import Registry

log = logging.getLogger(__name__)

ORPHANED = "the server stopped while this job was running"


@dataclass(frozen=True)
class JobHandler:
    """How one kind of job runs, and how to tidy up after one that died or was cancelled."""

    run: Callable[[Any, JobContext], dict | None]
    """``run(workspace, context)`` does the work and returns the job's result."""
    abandon: Callable[[Any, Any, str, str], None] | None = None
    """``abandon(workspace, job, status, error)`` after a job ended without running to the end
    (its process died, or it was cancelled while queued)."""


JOB_HANDLERS: Registry[JobHandler] = Registry("job kind")
"""The handler of each job kind (a kind registered twice is refused)."""


def job_handler(kind: str, *, abandon: Callable | None = None):
    """Register the decorated ``run(workspace, context)`` as the handler of jobs of `kind`."""

    def register(run: Callable) -> Callable:
        JOB_HANDLERS.add(kind, JobHandler(run=run, abandon=abandon))
        return run

    return register


def job_kinds() -> list[str]:
    return JOB_HANDLERS.names()


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def progress_record(event: Any) -> dict[str, Any]:
    """A JSON-ready progress record from a library progress object (a dataclass) or a dict."""
    if isinstance(event, dict):
        record = dict(event)
    elif is_dataclass(event):
        record = asdict(event)
    else:
        record = {"message": str(event)}
    record.setdefault("kind", "unlearn" if "losses" in record else "progress")
    record["ts"] = round(time.time(), 3)
    return record


class JobContext:
    """What a running handler sees: its parameters, a progress sink and the cancel flag."""

    def __init__(self, ledger, job_id: int, params: dict, *, min_interval: float = 0.25, cancel_poll: float = 0.5):
        self.ledger = ledger
        self.job_id = job_id
        self.params = params or {}
        self.min_interval = min_interval
        self.cancel_poll = cancel_poll
        self._last_write = 0.0
        self._last_poll = 0.0
        self._cancelled = False

    def cancelled(self) -> bool:
        """True once someone asked to cancel the job (the ledger is read at most every `cancel_poll` s)."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_poll >= self.cancel_poll:
            self._last_poll = now
            self._cancelled = bool(self.ledger.job(self.job_id).cancel_requested)
        return self._cancelled

    def progress(self, event: Any) -> None:
        """Record one progress event; raises `CancelledError` once the job is to stop.

        Plain steps are thinned to one record per `min_interval` seconds; steps carrying
        metrics, the last step and non-step events are always kept.
        """
        record = progress_record(event)
        now = time.monotonic()
        keep = (
            record.get("metrics") is not None
            or record.get("kind") not in ("step", "unlearn")
            or record.get("step") == record.get("steps_total")
            or now - self._last_write >= self.min_interval
        )
        if keep:
            self._last_write = now
            self.ledger.update_job(self.job_id, progress=record)
        if self.cancelled():
            # Long library calls without a cancel argument (exact replay) stop here.
            raise CancelledError("cancelled by the user")


class JobWorker:
    """A daemon thread that runs queued jobs of the registered kinds; a context manager."""

    def __init__(self, workspace, *, poll_interval: float = 0.5, kinds: list[str] | None = None):
        self.workspace = workspace
        self.poll_interval = poll_interval
        self.kinds = kinds
        self.current: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ledger(self):
        return self.workspace.ledger

    def start(self) -> JobWorker:
        """Fail the jobs a dead process left running, then start picking queued jobs."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="lethe-jobs", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look for a queued job now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop after the current job's next cancel check; the job ends `cancelled`."""
        self._stop.set()
        self._wake.set()
        if self.current is not None:
            self.ledger.request_job_cancel(self.current)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    # -- recovery -------------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Mark `running` jobs of dead processes on this host (or of no known owner) failed."""
        me = _owner()
        failed = []
        for job in self.ledger.jobs(limit=1000):
            if job.status != JobStatus.RUNNING:
                continue
            owner = next((r["worker"] for r in job.progress or [] if r.get("worker")), None)
            if owner is not None:
                if owner.get("host") != me["host"]:
                    continue  # another machine's job: we cannot tell whether it is alive
                pid = owner.get("pid")
                if pid == me["pid"] or (isinstance(pid, int) and _alive(pid)):
                    continue  # running in this process, or in another live one
            self._finish_abandoned(job, JobStatus.FAILED, ORPHANED)
            failed.append(job.id)
        return failed

    def _finish_abandoned(self, job, status: JobStatus, error: str) -> None:
        self.ledger.update_job(job.id, status=status, error=error)
        handler = JOB_HANDLERS.get(job.kind) if job.kind in JOB_HANDLERS else None
        if handler is not None and handler.abandon is not None:
            try:
                handler.abandon(self.workspace, job, status, error)
            except Exception:
                log.exception("could not tidy up after job %s", job.id)

    # -- running --------------------------------------------------------------------------

    def run_next(self) -> int | None:
        """Claim the oldest queued job and run it to its end; its id, or None when none was queued."""
        kinds = [k for k in JOB_HANDLERS.names() if self.kinds is None or k in self.kinds]
        job = self.ledger.claim_job(kinds, _owner())
        if job is None:
            return None
        if job.cancel_requested:
            self._finish_abandoned(job, JobStatus.CANCELLED, "cancelled before it started")
            return job.id
        self.current = job.id
        context = JobContext(self.ledger, job.id, job.params or {})
        try:
            result = JOB_HANDLERS.get(job.kind).run(self.workspace, context)
        except CancelledError as error:
            self.ledger.update_job(job.id, status=JobStatus.CANCELLED, error=str(error))
        except Exception as error:  # a job's failure must never kill the worker
            log.exception("job %s (%s) failed", job.id, job.kind)
            self.ledger.update_job(job.id, status=JobStatus.FAILED, error=f"{type(error).__name__}: {error}")
        else:
            self.ledger.update_job(job.id, status=JobStatus.SUCCEEDED, result=result or {})
        finally:
            self.current = None
        return job.id

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_next()
            except Exception:
                log.exception("the job worker could not read the ledger")
                ran = None
            if ran is None:
                self._wake.wait(self.poll_interval)
                self._wake.clear()


# -- forget requests --------------------------------------------------------------------------

job_handler(forget_job.KIND, abandon=forget_job.abandon_forget_job)(forget_job.run_forget_job)
queue_forget = forget_job.queue_forget
