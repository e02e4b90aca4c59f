"""The server's job worker: queued jobs run in order with progress in the ledger, cancel is
honoured, failures are recorded, and jobs a dead server left running are marked failed."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from lethe.errors import CancelledError
from lethe.serve import worker as jobs
from lethe.serve.worker import JobContext, JobWorker, job_handler, progress_record, queue_forget
from lethe.workspace import Workspace


@pytest.fixture
def ws():
    return Workspace.from_env().init()


@pytest.fixture
def fake_kinds():
    """Test-only job kinds, removed from the registry afterwards."""
    release = threading.Event()
    abandoned: list[tuple[int, str]] = []

    @job_handler("test.count")
    def count(_ws, context: JobContext):
        for step in range(1, context.params["steps"] + 1):
            context.progress({"kind": "step", "step": step, "steps_total": context.params["steps"], "loss": 1.0 / step})
        return {"counted": context.params["steps"]}

    @job_handler("test.wait", abandon=lambda _ws, job, status, error: abandoned.append((job.id, status)))
    def wait(_ws, context: JobContext):
        step = 0
        while not release.is_set():
            step += 1
            context.progress({"kind": "step", "step": step, "steps_total": 10_000})
            time.sleep(0.01)
        return {}

    @job_handler("test.fail")
    def fail(_ws, _context):
        raise ValueError("broken on purpose")

    yield release, abandoned
    for kind in ("test.count", "test.wait", "test.fail"):
        jobs.JOB_HANDLERS.remove(kind)


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_jobs_run_in_order_with_progress_and_result(ws, fake_kinds):
    first = ws.ledger.create_job("test.count", {"steps": 3})
    second = ws.ledger.create_job("test.fail", {})
    worker = JobWorker(ws)
    assert worker.run_next() == first
    job = ws.ledger.job(first)
    assert job.status == "succeeded" and job.result == {"counted": 3}
    kinds = [r["kind"] for r in job.progress]
    assert kinds[0] == "started" and job.progress[0]["worker"]["pid"] > 0
    assert job.progress[-1]["step"] == 3  # the last step is always recorded
    assert worker.run_next() == second
    failed = ws.ledger.job(second)
    assert failed.status == "failed" and "broken on purpose" in failed.error
    assert worker.run_next() is None
    assert [e.kind for e in ws.ledger.events(kind="job", newest_first=False)][-2:] == ["job.running", "job.failed"]


def test_cancel_stops_a_running_job_and_a_queued_one_never_starts(ws, fake_kinds):
    release, abandoned = fake_kinds
    running = ws.ledger.create_job("test.wait", {})
    queued = ws.ledger.create_job("test.wait", {})
    with JobWorker(ws, poll_interval=0.05) as worker:
        wait_for(lambda: ws.ledger.job(running).status == "running")
        ws.ledger.request_job_cancel(queued)
        ws.ledger.request_job_cancel(running)
        wait_for(lambda: ws.ledger.job(running).status == "cancelled")
        wait_for(lambda: ws.ledger.job(queued).status == "cancelled")
        assert worker.current is None
    assert (queued, "cancelled") in abandoned  # the handler tidied up the never-started job
    release.set()


def test_jobs_left_running_by_a_dead_process_are_failed_on_start(ws, fake_kinds):
    _, abandoned = fake_kinds
    orphan = ws.ledger.create_job("test.wait", {})
    dead_pid = 2**22 + 12345  # above the kernel's pid_max: never alive
    ws.ledger.update_job(
        orphan,
        status="running",
        progress={"kind": "started", "worker": {"host": socket.gethostname(), "pid": dead_pid}},
    )
    elsewhere = ws.ledger.create_job("test.wait", {})
    ws.ledger.update_job(
        elsewhere, status="running", progress={"kind": "started", "worker": {"host": "another-machine", "pid": 1}}
    )
    unknown = ws.ledger.create_job("test.count", {"steps": 1})
    ws.ledger.update_job(unknown, status="running")
    assert sorted(JobWorker(ws).recover()) == sorted([orphan, unknown])
    job = ws.ledger.job(orphan)
    assert job.status == "failed" and "server stopped" in job.error
    assert (orphan, "failed") in abandoned
    assert ws.ledger.job(elsewhere).status == "running"  # another host's job is not ours to judge


def test_progress_is_thinned_but_keeps_metrics_and_the_last_step(ws):
    job_id = ws.ledger.create_job("test.none", {})
    context = JobContext(ws.ledger, job_id, {}, min_interval=60)
    for step in range(1, 6):
        metrics = {"forget_loss": 1.0} if step == 3 else None
        context.progress({"kind": "unlearn", "step": step, "steps_total": 5, "losses": {}, "metrics": metrics})
    steps = [r["step"] for r in ws.ledger.job(job_id).progress]
    assert steps == [1, 3, 5]
    ws.ledger.request_job_cancel(job_id)
    context._last_poll = 0
    with pytest.raises(CancelledError):
        context.progress({"kind": "unlearn", "step": 1, "steps_total": 5})


def test_progress_record_of_library_events():
    from lethe.train.progress import ProgressEvent
    from lethe.unlearn.progress import QuickMetrics

    record = progress_record(
        ProgressEvent(
            kind="unlearn", step=2, steps_total=4, losses={"loss": 0.5}, metrics=QuickMetrics(1.0, 0.5, 0.2, 0.9)
        )
    )
    assert record["kind"] == "unlearn" and record["metrics"]["retain_accuracy"] == 0.9


def test_forget_job_runs_a_request_to_an_evaluated_candidate(ws):
    """The registered `forget` handler on a real nano model (audit off: the UI test covers it)."""
    from lethe.data.synth_ingest import ingest_synthetic_world
    from lethe.forget import Selector, create_request
    from lethe.train.pipeline import train

    ingest_synthetic_world(ws.ledger, entities=6, seed=11)
    versions = train(
        ws, data="synth/qa", preset_or_path="nano", slices=2, epochs=2, batch_size=16, seq_len=96, lr=3e-3, seed=0
    )
    document = ws.ledger.list_documents(kind="qa", limit=1)[0]
    request_id = create_request(
        ws,
        Selector(docs=[str(document.id)]),
        method="grad_diff",
        config={"steps": 3, "eval_every": 1, "forget_batch_size": 2, "retain_batch_size": 2},
    )
    job_id = queue_forget(ws.ledger, request_id, evaluate=False)
    assert JobWorker(ws).run_next() == job_id
    job = ws.ledger.job(job_id)
    assert job.status == "succeeded", job.error
    assert job.result["request_id"] == request_id and job.result["status"] == "evaluated"
    steps = [r for r in job.progress if r["kind"] == "unlearn"]
    assert steps[-1]["step"] == 3 and steps[-1]["metrics"]["forget_loss"] > 0
    request = ws.ledger.forget_request(request_id)
    assert request.status == "evaluated"
    assert ws.ledger.resolve_version("latest").id == versions[-1].id  # publishing is the user's call


def test_a_forget_job_can_attack_its_candidate(ws):
    """The UI's "attack it too": the audit the job stores carries the robustness suite."""
    from lethe.data.synth_ingest import ingest_synthetic_world
    from lethe.forget import Selector, create_request
    from lethe.train.pipeline import train

    ingest_synthetic_world(ws.ledger, entities=6, seed=11)
    train(ws, data="synth/qa", preset_or_path="nano", slices=1, epochs=2, batch_size=16, seq_len=96, lr=3e-3, seed=0)
    documents = ws.ledger.list_documents(kind="qa", limit=3)
    request_id = create_request(
        ws, Selector(docs=[str(d.id) for d in documents]), method="grad_diff", config={"steps": 2, "eval_every": 0}
    )
    job_id = queue_forget(ws.ledger, request_id, audit_items=4, robustness=True)
    assert JobWorker(ws).run_next() == job_id
    assert ws.ledger.job(job_id).status == "succeeded", ws.ledger.job(job_id).error
    audit = ws.ledger.forget_request(request_id).audit
    assert audit["metrics"] and audit["robustness"]["roles"] == {"after": "candidate", "before": "target"}
    assert {"int8", "int4"} == set(audit["robustness"]["probes"]["quantisation"])


def test_workers_on_one_ledger_claim_each_job_exactly_once(ledger_url):
    """Four workers, each with its own connection, race for 40 jobs: none runs twice or is lost."""
    from lethe.ledger import Ledger

    ledgers = [Ledger.open(ledger_url) for _ in range(4)]
    created = [ledgers[0].create_job("test.race", {"n": n}) for n in range(40)]
    ledgers[0].create_job("test.other", {})  # a kind nobody asked for stays queued
    start = threading.Barrier(len(ledgers))
    claimed: list[list[int]] = [[] for _ in ledgers]

    def claim_all(index: int) -> None:
        start.wait()
        while (job := ledgers[index].claim_job(["test.race"], {"host": "h", "pid": index})) is not None:
            claimed[index].append(job.id)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(len(ledgers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = sorted(job_id for ids in claimed for job_id in ids)
    assert every == created
    for index, ids in enumerate(claimed):
        for job_id in ids:
            job = ledgers[0].job(job_id)
            assert job.status == "running" and job.progress[0]["worker"] == {"host": "h", "pid": index}
    assert [j.status for j in ledgers[0].jobs(kind="test.other")] == ["queued"]
    assert ledgers[0].claim_job([], {"host": "h", "pid": 0}) is None
    for led in ledgers:
        led.close()
