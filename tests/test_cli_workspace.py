"""Workspaces are explicit and failures are fast: the real `lethe` command in a subprocess.

Every error here is checked to come before torch is imported (the process reports whether torch
was loaded when it exits), which is what makes it arrive in well under a second.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Runs the CLI and reports, on exit, whether torch was ever imported.
RUN_CLI = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("\\ntorch imported: %s\\n" % ("torch" in sys.modules)))
from lethe.cli import main
sys.argv = ["lethe", *sys.argv[1:]]
main()
"""


def lethe(*args: str, cwd: Path, home: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    env.pop("LETHE_HOME", None)
    if home is not None:
        env["LETHE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line the user sees (the torch report aside); fails on anything longer."""
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("torch imported")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_typo_in_home_is_an_error_and_creates_nothing(tmp_path):
    typo = tmp_path / "typo"
    proc = lethe("--home", str(typo), "versions", cwd=tmp_path)
    assert proc.returncode == 2
    line = error_line(proc)
    assert line.startswith(f"error: no lethe workspace at {typo}; run `lethe --home {typo} init`")
    assert "torch imported: False" in proc.stderr
    assert not typo.exists()
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////nonexistent/dir/ledger.db", "no lethe ledger at /nonexistent/dir/ledger.db"),
        (
            "postgresql://user:secret@127.0.0.1:1/x",
            "cannot reach the ledger database postgresql://user:***@127.0.0.1:1/x",
        ),
        ("mysql://user:secret@127.0.0.1/x", "unsupported database URL mysql://user:***@127.0.0.1/x"),
        ("ledger.db", "not a database URL"),
    ],
)
def test_a_bad_database_url_is_one_line_and_leaves_no_stray_workspace(tmp_path, url, expected):
    proc = lethe("--db", url, "versions", cwd=tmp_path)
    assert proc.returncode == 2
    line = error_line(proc)
    assert expected in line
    assert "secret" not in proc.stderr
    assert "torch imported: False" in proc.stderr
    assert not (tmp_path / "lethe-home").exists()  # --db without --home made no ./lethe-home
    assert not Path("/nonexistent").exists()


def test_init_refuses_an_unreachable_database_in_one_line(tmp_path):
    proc = lethe("--home", str(tmp_path / "ws"), "--db", "postgresql://u:p@127.0.0.1:1/x", "init", cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot reach the ledger database" in error_line(proc)


def test_commands_work_once_init_made_the_workspace(tmp_path):
    home = tmp_path / "ws"
    assert lethe("--home", str(home), "init", cwd=tmp_path).returncode == 0
    proc = lethe("--home", str(home), "versions", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    # a database file that exists but holds no ledger is refused too
    other = tmp_path / "empty.db"
    other.touch()
    proc = lethe("--home", str(home), "--db", f"sqlite:///{other}", "versions", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"no lethe ledger in the database sqlite:///{other}" in error_line(proc)


def test_chat_without_a_model_suggests_training(tmp_path):
    home = tmp_path / "ws"
    lethe("--home", str(home), "init", cwd=tmp_path)
    proc = lethe("--home", str(home), "chat", cwd=tmp_path)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "no model version 'latest' yet" in line and "lethe train" in line
    assert "torch imported: False" in proc.stderr


def test_serve_on_a_taken_port_fails_before_loading_anything(tmp_path):
    home = tmp_path / "ws"
    lethe("--home", str(home), "init", cwd=tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = lethe("--home", str(home), "serve", "--port", str(port), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in error_line(proc)
    assert "torch imported: False" in proc.stderr  # no model (nor torch) was loaded first
    assert "lethe web UI on" not in proc.stdout


def test_serve_refuses_an_exposed_host_without_a_key_before_torch(tmp_path):
    proc = lethe("--home", str(tmp_path / "missing"), "serve", "--host", "0.0.0.0", cwd=tmp_path)
    assert proc.returncode == 2
    assert "reachable from other machines" in error_line(proc)
    assert "torch imported: False" in proc.stderr


def test_version_help_and_completion(tmp_path):
    from lethe import __version__

    proc = lethe("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"lethe {__version__}"
    help_text = lethe("forget", "--help", cwd=tmp_path).stdout
    assert "--dry-run" in help_text and "<bool>" not in help_text  # a flag takes no value
    usage = lethe("data", "add", "--help", cwd=tmp_path).stdout
    assert "PATH" in usage and "{path}" not in usage
    assert "--install-completion" in lethe("--help", cwd=tmp_path).stdout
    env = {**os.environ, "_LETHE_COMPLETE": "complete_bash", "COMP_WORDS": "lethe da", "COMP_CWORD": "1"}
    completion = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv[0] = 'lethe'; from lethe.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completion.stdout.split() == ["data"]


def test_thread_count_is_checked_without_torch(tmp_path):
    proc = lethe("--threads", "0", "--home", str(tmp_path), "versions", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--threads must be at least 1" in error_line(proc)
    assert "torch imported: False" in proc.stderr
