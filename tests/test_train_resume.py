"""Crash safety: an interrupted run resumes from its last saved state to the same weights."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lethe.train import resume, train
from train_helpers import FAST, make_workspace, weights

torch.set_num_threads(1)
TESTS = Path(__file__).parent


def _assert_same_weights(a, b):
    wa, wb = weights(Path(a.path)), weights(Path(b.path))
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-6, atol=1e-7)


def test_resume_after_a_failure_mid_slice_matches_an_uninterrupted_run(tmp_path):
    # Slices are a hash of each document's key, so their sizes vary: enough documents that slice 1
    # has more than the 5 steps the crash waits for.
    ws = make_workspace(tmp_path, n_qa=40, n_text=2)
    config = FAST.replace(save_every=3)
    reference = train(ws, data=["qa", "text"], preset_or_path="nano", slices=2, config=config, lineage="ref")
    assert ws.ledger.run(reference[1].run_id).metrics["slices"][-1]["steps"] > 5

    def crash(event):
        if event.kind == "step" and event.slice_index == 1 and event.step == 5:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train(ws, data=["qa", "text"], preset_or_path="nano", slices=2, config=config, lineage="job", callback=crash)
    ledger = ws.ledger
    assert ledger.aliases()["latest"] == reference[-1].id
    failed_run = ledger.runs(kind="train")[0]
    assert failed_run.status == "failed"

    events = []
    resumed = resume(ws, lineage="job", callback=events.append)
    assert [v.slice_index for v in resumed] == [0, 1] and all(v.status == "published" for v in resumed)
    assert resumed[0].run_id == failed_run.id and resumed[1].run_id != failed_run.id
    steps = [e for e in events if e.kind == "step"]
    assert steps[0].step == 4 and steps[0].first_step == 3  # continued after the step-3 save
    _assert_same_weights(resumed[-1], reference[-1])
    new_run = ledger.run(resumed[1].run_id)
    assert new_run.config["resumes_run"] == failed_run.id
    slice0_steps = ledger.run(reference[0].run_id).metrics["slices"][0]["steps"]
    assert ledger.coverage(resumed[1].id)[failed_run.id] == slice0_steps + 3
    assert ledger.documents_seen(resumed[1].id) == ledger.documents_seen(reference[1].id)
    assert ledger.aliases()["latest"] == resumed[-1].id
    assert not (ws.checkpoints_dir() / "job" / "resume").exists()


KILLER = textwrap.dedent("""
    import os, signal, sys
    import torch
    sys.path.insert(0, {tests!r})
    from train_helpers import FAST
    from lethe.train import train
    from lethe.workspace import Workspace
    torch.set_num_threads(1)

    def kill(event):
        if event.kind == "step" and event.slice_index == 0 and event.step == 7:
            os.kill(os.getpid(), signal.SIGKILL)

    train(Workspace.from_env({home!r}), data="qa", preset_or_path="nano", config=FAST.replace(save_every=2),
          lineage="job", callback=kill)
""")


def test_sigkill_mid_slice_then_cli_resume(tmp_path):
    from typer.testing import CliRunner

    from lethe.cli import app

    ws = make_workspace(tmp_path, n_qa=16)
    reference = train(ws, data="qa", preset_or_path="nano", config=FAST.replace(save_every=2), lineage="ref")
    script = KILLER.format(tests=str(TESTS), home=str(ws.home))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    killed = ws.ledger.runs(kind="train")[0]
    assert killed.status == "running"  # nobody was left to say otherwise

    result = CliRunner().invoke(app, ["--home", str(ws.home), "train", "--resume", "--json"])
    assert result.exit_code == 0, result.output
    assert ws.ledger.run(killed.id).status == "failed"
    [version] = [v for v in ws.ledger.list_versions() if v.lineage_id == killed.lineage_id]
    _assert_same_weights(version, reference[0])
    assert ws.ledger.coverage(version.id)[killed.id] == 6  # the last state saved before the kill


def test_a_crash_before_the_first_save_resumes_from_the_start(tmp_path):
    ws = make_workspace(tmp_path, n_qa=8)
    [reference] = train(ws, data="qa", preset_or_path="nano", config=FAST, lineage="ref")

    def crash(event):
        if event.kind == "step" and event.step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(ws, data="qa", preset_or_path="nano", config=FAST, lineage="job", callback=crash)
    assert ws.ledger.runs(kind="train")[0].status == "cancelled"
    [version] = resume(ws)
    _assert_same_weights(version, reference)
    assert set(ws.ledger.coverage(version.id).values()) == {0, ws.ledger.run(version.run_id).metrics["global_step"]}
