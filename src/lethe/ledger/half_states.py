"""Half-states: what a process killed in the middle of an operation leaves behind.

Every domain operation commits as one transaction, so the ledger itself is never half
written; what a kill can leave is *work in progress that nobody will finish*: a run or a
forget request still `running` whose process is gone, candidate versions that no request
or run will ever publish or discard, model and checkpoint directories written just before
the kill and never recorded, temporary directories of an interrupted save, and (from
before publishing was one transaction) versions published for a request whose documents
were never erased. `lethe ledger check` lists each with the command that recovers it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from lethe.ledger.owners import owner_alive
from lethe.ledger.schema import (
    Checkpoint,
    Document,
    ForgetRequest,
    ForgetRequestDocument,
    ModelVersion,
    Run,
    TuningCalibration,
)
from lethe.ledger.states import RequestStatus, RunStatus, VersionStatus

if TYPE_CHECKING:
    from lethe.ledger.integrity import Problem
    from lethe.ledger.store import Ledger

CHECK = "half-states"
TEMPORARY = (".*.tmp-*", ".*.old-*")
"""Names `lethe.model.io.atomic_directory` writes under before renaming into place."""
RECORDED_DIRECTORY = re.compile(r"^(.+-s\d+-r\d+|unlearn-r\d+-run\d+|slice-\d+-run\d+)$")
"""Directories a run writes and the ledger then records (models/…, checkpoints/<lineage>/…)."""
RESUME_STATE = "training_state.json"
"""The file of a lineage's `resume/` directory that says which job it belongs to."""
YOUNG_SECONDS = 600
"""While some process is alive and running, younger temporaries may be its save in progress."""


def dead_runs(ledger: Ledger) -> list[Run]:
    """Runs still `running` whose process is known to be gone."""
    with ledger.reading() as s:
        running = list(s.scalars(select(Run).where(Run.status == RunStatus.RUNNING).order_by(Run.id)))
    return [run for run in running if owner_alive((run.environment or {}).get("owner")) is False]


def dead_requests(ledger: Ledger) -> list[ForgetRequest]:
    """Forget requests still `running` whose run finished or whose process is gone."""
    with ledger.reading() as s:
        requests = list(s.scalars(select(ForgetRequest).where(ForgetRequest.status == RequestStatus.RUNNING)))
        runs = {r.id: r for r in s.scalars(select(Run).where(Run.id.in_([q.run_id for q in requests if q.run_id])))}
    out = []
    for request in requests:
        run = runs.get(request.run_id)
        if run is None or run.status != RunStatus.RUNNING or owner_alive((run.environment or {}).get("owner")) is False:
            out.append(request)
    return out


def orphaned_candidates(ledger: Ledger) -> list[ModelVersion]:
    """Candidate versions that nothing will publish or discard: not made by a run still
    `running` (a dead one is reported, and closed, as a run), and not the candidates of an
    evaluated (or live running) forget request."""
    dead_request_ids = {r.id for r in dead_requests(ledger)}
    with ledger.reading() as s:
        candidates = list(s.scalars(select(ModelVersion).where(ModelVersion.status == VersionStatus.CANDIDATE)))
        if not candidates:
            return []
        runs = {r.id: r for r in s.scalars(select(Run).where(Run.id.in_({v.run_id for v in candidates if v.run_id})))}
        waiting = list(
            s.scalars(
                select(ForgetRequest).where(
                    ForgetRequest.status.in_((RequestStatus.EVALUATED, RequestStatus.RUNNING)),
                    ForgetRequest.result_version_id.is_not(None),
                )
            )
        )
        results = {q.result_version_id for q in waiting if q.id not in dead_request_ids}
        result_runs = {v.run_id for v in candidates if v.id in results and v.run_id is not None}
        calibrations = set(s.scalars(select(TuningCalibration.exact_version_id)))  # `lethe tune` keeps them
    orphans = []
    for version in candidates:
        run = runs.get(version.run_id)
        running = run is not None and run.status == RunStatus.RUNNING  # a dead one is reported as a run
        if running or version.id in results or version.run_id in result_runs or version.id in calibrations:
            continue
        orphans.append(version)
    return orphans


def unerased_publications(ledger: Ledger) -> list[tuple[ForgetRequest, int]]:
    """Forget requests whose result is published but whose documents still hold content."""
    with ledger.reading() as s:
        published = set(s.scalars(select(ModelVersion.id).where(ModelVersion.status == VersionStatus.PUBLISHED)))
        out = []
        for request in s.scalars(select(ForgetRequest).where(ForgetRequest.result_version_id.is_not(None))):
            if request.result_version_id not in published:
                continue
            kept = s.scalar(
                select(func.count())
                .select_from(Document)
                .join(ForgetRequestDocument, ForgetRequestDocument.document_id == Document.id)
                .where(ForgetRequestDocument.request_id == request.id, Document.forgotten_at.is_(None))
            )
            if kept or request.status != RequestStatus.SUCCEEDED:
                out.append((request, kept))
        return out


def stray_directories(ledger: Ledger, home: Path) -> list[Path]:
    """Temporaries of interrupted saves, and run directories the ledger never recorded."""
    live = any(owner_alive((r.environment or {}).get("owner")) is not False for r in _running(ledger))
    now = time.time()
    found: list[Path] = []
    for pattern in TEMPORARY:
        for path in sorted(home.rglob(pattern)):
            if path.is_dir() and not (live and now - path.stat().st_mtime < YOUNG_SECONDS):
                found.append(path)
    with ledger.reading() as s:
        recorded = {Path(p).resolve() for p in s.scalars(select(ModelVersion.path))}
        recorded |= {Path(p).resolve() for p in s.scalars(select(Checkpoint.path))}
    candidates = [*(home / "models").glob("*"), *(home / "checkpoints").glob("*/*")]
    found += stale_resume_states(ledger, home)
    for path in sorted(candidates):
        unrecorded = path.is_dir() and RECORDED_DIRECTORY.match(path.name) and path.resolve() not in recorded
        if unrecorded and not (live and now - path.stat().st_mtime < YOUNG_SECONDS):
            found.append(path)
    return found


def stale_resume_states(ledger: Ledger, home: Path) -> list[Path]:
    """Resume states of jobs whose run finished (killed between publishing and clearing it):
    `lethe train --resume` would refuse them, and no later job needs them."""
    found = []
    for state in sorted(home.glob(f"checkpoints/*/resume/{RESUME_STATE}")):
        try:
            run_id = json.loads(state.read_text())["extra"]["job"]["run_id"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        with ledger.reading() as s:
            run = s.get(Run, run_id)
        if run is None or run.status == RunStatus.SUCCEEDED:
            found.append(state.parent)
    return found


def _running(ledger: Ledger) -> list[Run]:
    with ledger.reading() as s:
        return list(s.scalars(select(Run).where(Run.status == RunStatus.RUNNING)))


def half_states(ledger: Ledger, home: Path | None = None) -> list[Problem]:
    """Every half-state, each as a `Problem` naming the row and the command that recovers it."""
    from lethe.ledger.integrity import Problem

    problems = []
    dead = {r.id for r in dead_requests(ledger)}
    for request in sorted(dead_requests(ledger), key=lambda r: r.id):
        problems.append(
            Problem(
                CHECK,
                "forget_requests",
                str(request.id),
                "running, but its process is gone: `lethe requests resume "
                f"{request.id}` runs it again, `lethe requests discard {request.id}` drops it",
            )
        )
    with ledger.reading() as s:
        request_runs = {q.run_id for q in s.scalars(select(ForgetRequest).where(ForgetRequest.id.in_(dead)))}
    for run in dead_runs(ledger):
        if run.id in request_runs:
            continue  # reported with its request
        owner = (run.environment or {}).get("owner") or {}
        problems.append(
            Problem(
                CHECK,
                "runs",
                f"{run.id} ({run.kind})",
                f"running, but its process (pid {owner.get('pid')} on {owner.get('host')}) is gone: "
                + (
                    "`lethe train --resume` continues it"
                    if run.kind in ("train", "update")
                    else "`lethe ledger clean` closes it"
                ),
            )
        )
    for version in orphaned_candidates(ledger):
        problems.append(
            Problem(
                CHECK,
                "model_versions",
                f"{version.id} ({version.name})",
                "a candidate that no running job or evaluated request will publish: `lethe ledger clean` discards it",
            )
        )
    for request, kept in unerased_publications(ledger):
        problems.append(
            Problem(
                CHECK,
                "forget_requests",
                str(request.id),
                f"its version is published but the request is {request.status} and {kept} of its documents "
                "are not erased (published-but-not-erased)",
            )
        )
    if home is not None:
        for path in stray_directories(ledger, home):
            problems.append(
                Problem(
                    CHECK,
                    "files",
                    str(path.relative_to(home)),
                    "left by an interrupted save (nothing records it): `lethe ledger clean` removes it",
                )
            )
    return problems
