"""The README's tour, command by command, in order, on a fresh workspace — with small sizes.

The commands are read from README.md itself (the ```bash block under "## A tour"), so the tour
cannot drift from what the code does. Sizes are shrunk (nano model, a few epochs and steps),
inputs that are not at hand (your own JSONL, a MediaWiki dump) and commands that never return
(`lethe serve`) are left out, and each command must exit 0. It ends as a new user's hour
does: `lethe chat` answering from `latest`, which must be untainted.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lethe.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"

# (pattern, replacement): small sizes for the same commands
SHRINK = [
    (r"--entities \d+", "--entities 20"),  # the same names (the world's first entities), fewer of them
    (r"--preset tiny", "--preset nano"),
    (r"--epochs \d+", "--epochs 2"),
    (r"--slices \d+", "--slices 2"),
    (r"--vocab-size \d+", "--vocab-size 512"),
    (r"--steps \d+", "--steps 3"),
    (r"--authors \d+", "--authors 4 --mia-authors 2 --epochs 1 --unlearn-epochs 1 --eval-items 4 --max-new-tokens 8"),
    (r"--split forget10", "--split forget01 --methods npo --vocab-size 512 --preset nano --no-robustness"),
]
# inputs a test does not have, and commands that serve until interrupted
SKIP = (
    "pages-meta-history",
    "dump.xml.bz2",
    "curl ",
    "source .venv",
    "lethe serve",
    "lethe data curate",
    "enwiki-2015",
)


def tour_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## A tour\n+```bash\n(.*?)```", text, re.DOTALL).group(1)
    commands = []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"\s*(?:&&|;)\s*", line):
            if part and not any(skip in part for skip in SKIP):
                commands.append(part)
    return commands


def shrink(command: str) -> str:
    for pattern, replacement in SHRINK:
        command = re.sub(pattern, replacement, command)
    return command


def test_the_tour_reads_as_commands():
    commands = tour_commands()
    assert commands[0] == "lethe init" and any(c.startswith("lethe chat") for c in commands)


@pytest.mark.slow
def test_the_readme_tour_runs_in_order_and_ends_on_a_usable_latest(shared_data, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # ../shared/data in the README: relative to the checkout
    monkeypatch.setenv("LETHE_THREADS", "1")
    (tmp_path.parent / "shared").mkdir(exist_ok=True)
    link = tmp_path.parent / "shared" / "data"
    if not link.exists():
        link.symlink_to(shared_data)
    # "bring your own": a few support QA pairs, as the README's my-qa.jsonl
    (tmp_path / "my-qa.jsonl").write_text(
        "".join(
            f'{{"id": "faq-{i}", "question": "How do I reset password {i}?", "answer": "Open settings, step {i}."}}\n'
            for i in range(6)
        )
    )
    runner = CliRunner()
    for command in tour_commands():
        argv = shlex.split(shrink(command))
        assert argv[0] == "lethe", command
        # `lethe chat` reads the terminal: a question, then /quit
        stdin = "Who is Lixdi Wuvos?\n/quit\n" if argv[1] == "chat" else None
        result = runner.invoke(app, argv[1:], input=stdin)
        assert result.exit_code == 0, f"`{command}` failed:\n{result.output[-3000:]}"
    from lethe.workspace import Workspace

    ledger = Workspace.from_env().ledger
    latest = ledger.resolve_version("latest")
    assert latest.tainted_at is None
    assert [r.status for r in ledger.forget_requests()].count("evaluated") <= 1  # only the tour's last rmu candidate
    chat = runner.invoke(app, ["chat", "--temperature", "0", "--max-tokens", "8"], input="Who is Lixdi Wuvos?\n/quit\n")
    assert chat.exit_code == 0, chat.output
    assert f"chatting with {latest.name}" in chat.output
    check = runner.invoke(app, ["ledger", "check"])
    assert check.exit_code == 0, check.output
