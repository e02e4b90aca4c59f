"""Long jobs (UI forget requests, benchmarks) whose state lives in the ledger, not in memory."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from lethe.errors import NotFoundError
from lethe.ledger import repository
from lethe.ledger.schema import Job, utcnow
from lethe.ledger.states import FINISHED_JOB, JobStatus

FINAL_JOB_STATES = FINISHED_JOB


class JobsMixin:
    def create_job(self, kind: str, params: dict) -> int:
        with self.transaction() as s:
            job = Job(
                kind=kind, params=params, status=JobStatus.QUEUED, progress=[], created_at=utcnow(), updated_at=utcnow()
            )
            s.add(job)
            s.flush()
            repository.record_event(s, "job.queued", "job", job.id, kind=kind)
            return job.id

    def job(self, job_id: int) -> Job:
        with self.reading() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFoundError(f"no job {job_id}")
            return job

    def jobs(self, *, kind: str | None = None, limit: int = 50) -> list[Job]:
        query = select(Job)
        if kind:
            query = query.where(Job.kind == kind)
        with self.reading() as s:
            return list(s.scalars(query.order_by(Job.id.desc()).limit(limit)))

    def update_job(
        self,
        job_id: int,
        *,
        status: str | None = None,
        progress: dict | None = None,
        result: dict | None = None,
        error: str | None = None,
    ) -> Job:
        """Append a progress record and/or change status; finished jobs log an event."""
        with self.transaction() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFoundError(f"no job {job_id}")
            if progress is not None:
                job.progress = [*(job.progress or []), progress]
            if result is not None:
                job.result = result
            if error is not None:
                job.error = error
            if status is not None and status != job.status:
                job.status = status
                repository.record_event(s, f"job.{status}", "job", job_id, kind=job.kind, error=error)
            job.updated_at = utcnow()
            return job

    def claim_job(self, kinds: list[str], worker: dict) -> Job | None:
        """Move the oldest queued job of one of `kinds` to `running` for `worker`; None if none.

        The claim is a compare-and-set (``UPDATE ... WHERE status = 'queued'``), so when several
        processes poll one ledger each job runs exactly once: a worker that loses the race for
        one job simply tries the next.
        """
        if not kinds:
            return None
        with self.reading() as s:
            candidates = list(
                s.scalars(
                    select(Job.id).where(Job.status == JobStatus.QUEUED, Job.kind.in_(kinds)).order_by(Job.id).limit(20)
                )
            )
        for job_id in candidates:
            with self.transaction() as s:
                claimed = s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                    .values(status=JobStatus.RUNNING, updated_at=utcnow())
                ).rowcount
                if claimed != 1:
                    continue  # another worker was faster
                job = s.get(Job, job_id)
                job.progress = [
                    *(job.progress or []),
                    {"kind": "started", "worker": worker, "ts": round(time.time(), 3)},
                ]
                repository.record_event(s, "job.running", "job", job_id, kind=job.kind, **worker)
            return self.job(job_id)
        return None

    def request_job_cancel(self, job_id: int) -> None:
        with self.transaction() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFoundError(f"no job {job_id}")
            if job.status not in FINAL_JOB_STATES:
                job.cancel_requested = True
                repository.record_event(s, "job.cancel_requested", "job", job_id)
