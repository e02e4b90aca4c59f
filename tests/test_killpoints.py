"""SIGKILL at every named point of train, forget (exact and approximate) and publish.

For each point (`lethe.killpoints.POINTS`) a real process runs the real operation with
``LETHE_KILL_AT`` naming the point and dies there. Then: the ledger is in the old state or
the new one, never between; `lethe ledger check` reports the half-state the kill left
(a dead running request or run, orphaned candidates, unrecorded or temporary directories)
or is clean when there is none; and the recovery command brings it to a consistent state.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.killpoints import POINTS
from lethe.ledger.integrity import check
from lethe.train import train
from lethe.workspace import Workspace
from train_helpers import FAST, make_workspace

pytestmark = pytest.mark.slow
TESTS = Path(__file__).parent
CONFIG = FAST.replace(epochs=1)

FORGET = textwrap.dedent("""
    from lethe.forget import Selector, create_request, run_request
    from lethe.workspace import Workspace
    ws = Workspace.from_env({home!r})
    request_id = create_request(ws, Selector(docs={docs!r}), method={method!r}, config={config!r})
    run_request(ws, request_id, evaluate=False)
""")
TRAIN = ["train", "--data", "qa", "--preset", "nano", "--slices", "2", "--epochs", "1", "--batch-size", "4"]
TRAIN += ["--seq-len", "64", "--lineage", "job", "--json"]
APPROXIMATE = {"steps": 2, "eval_every": 0, "forget_batch_size": 2, "retain_batch_size": 2}

# (operation, kill point, state the ledger is left in, recovery)
CASES = [
    ("train", "train.resume_state_written", "old", "train --resume"),
    ("train", "train.started", "old", "train --resume"),
    ("train", "train.slice_saved", "old", "train --resume"),
    ("train", "train.slice_recorded", "old", "train --resume"),
    ("train", "train.before_publish", "old", "train --resume"),
    ("train", "train.published", "new", "ledger clean"),
    ("exact", "train.slice_recorded", "old", "requests resume"),  # mid replay
    ("exact", "forget.candidate", "old", "requests resume"),
    ("exact", "forget.evaluated", "old", "requests publish"),
    ("exact", "publish.versions", "old", "requests publish"),
    ("exact", "publish.tainted", "old", "requests publish"),
    ("exact", "publish.erased", "old", "requests publish"),
    ("exact", "publish.committed", "new", None),
    ("grad_ascent", "forget.candidate", "old", "requests discard"),
    ("grad_ascent", "forget.evaluated", "old", "requests publish"),
    ("grad_ascent", "publish.tainted", "old", "requests publish"),
    ("grad_ascent", "publish.committed", "new", None),
]


@pytest.fixture(scope="module")
def base_home(tmp_path_factory) -> Path:
    """A workspace with a nano model trained in 2 slices, made once and copied for each case."""
    ws = make_workspace(tmp_path_factory.mktemp("base"), n_qa=12)
    train(ws, data="qa", preset_or_path="nano", slices=2, config=CONFIG, lineage="main")
    ws.ledger.close()
    return ws.home


def _copy(source: Path, target: Path) -> Path:
    """Copy a workspace; the ledger records absolute paths, so they are moved along."""
    shutil.copytree(source, target)
    with sqlite3.connect(target / "ledger.db") as db:
        for table in ("model_versions", "checkpoints", "tokenizers"):
            db.execute(f"UPDATE {table} SET path = replace(path, ?, ?)", (str(source), str(target)))
    return target


def test_every_kill_point_is_exercised():
    assert {point for _, point, _, _ in CASES} == set(POINTS)


def _cli(home: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == code, result.output
    return result.output


def _state(home: Path, before: dict, docs: list[int]) -> str:
    """`old`, `new`, or a description of the half-state."""
    ledger = Workspace(home=home).ledger
    latest = ledger.aliases().get("latest")
    erased = [d.forgotten_at is not None for d in ledger.documents(docs)] if docs else []
    tainted = [v.name for v in ledger.list_versions(include_discarded=True) if v.tainted_at is not None]
    published = [v.id for v in ledger.list_versions() if v.status == "published"]
    if latest == before["latest"] and not any(erased) and not tainted and published == before["published"]:
        return "old"
    if latest != before["latest"] and all(erased) and (not docs or tainted):
        return "new"
    return f"half: latest {latest}, erased {erased}, tainted {tainted}, published {published}"


@pytest.mark.parametrize(("operation", "point", "left", "recovery"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_kill_leaves_the_old_or_the_new_state_and_check_names_the_half_state(
    tmp_path, base_home, operation, point, left, recovery
):
    home = _copy(base_home, tmp_path / "home")
    ledger = Workspace(home=home).ledger
    last_slice = ledger.slices(ledger.lineage("main").id)[-1][1]
    docs = [] if operation == "train" else last_slice[:2]
    before = {"latest": ledger.aliases()["latest"], "published": [v.id for v in ledger.list_versions()]}
    if operation == "train":
        command = [sys.executable, "-m", "lethe", "--home", str(home), *TRAIN]
    else:
        config = {} if operation == "exact" else APPROXIMATE
        script = FORGET.format(home=str(home), docs=[str(d) for d in docs], method=operation, config=config)
        command = [sys.executable, "-c", script]
    env = {**os.environ, "LETHE_KILL_AT": point, "OMP_NUM_THREADS": "1", "LETHE_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    assert _state(home, before, docs) == left
    problems = [p for p in check(Workspace(home=home).ledger, verify_weights=False, home=home)]
    half = [p for p in problems if p.check == "half-states"]
    assert problems == half, problems  # nothing else is wrong
    clean_point = point in ("forget.evaluated", "publish.versions", "publish.tainted", "publish.erased")
    if clean_point or point == "publish.committed":
        assert half == []  # an evaluated request waiting to be published, or the new state
        _cli(home, "ledger", "check", "--skip-weights")
    else:
        assert half, f"ledger check found nothing after a kill at {point}"
        output = _cli(home, "ledger", "check", "--skip-weights", code=1)
        assert "half-states" in output

    request_id = None if operation == "train" else Workspace(home=home).ledger.forget_requests()[0].id
    if recovery == "train --resume":
        _cli(home, "train", "--resume", "--json")
    elif recovery == "ledger clean":
        _cli(home, "ledger", "clean")
    elif recovery == "requests resume":
        from lethe.forget.recovery import resume_request

        assert resume_request(Workspace(home=home), request_id, evaluate=False).status == "succeeded"
    elif recovery is not None:
        _cli(home, *recovery.split(), str(request_id))
    assert check(Workspace(home=home).ledger, verify_weights=True, home=home) == []
    expected = "old" if recovery == "requests discard" else "new"
    assert _state(home, before, docs) == expected
