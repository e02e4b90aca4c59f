"""`lethe ledger check`: verify the ledger and say exactly what is wrong."""

from __future__ import annotations

import typer

from lethe.cli.app import JsonOption, console, emit, plural, workspace
from lethe.cli.ledger import ledger_app


@ledger_app.command("check")
def check_cmd(
    skip_weights: bool = typer.Option(False, "--skip-weights", help="Do not re-hash model weights (faster)."),
    json: bool = JsonOption,
) -> None:
    """Foreign keys, orphans, revisions, tombstones, content hashes, weights sha256, token impacts."""
    from lethe.ledger.integrity import PROBLEM, review

    ws = workspace()
    found = review(ws.ledger, verify_weights=not skip_weights, home=ws.home)
    problems = [p.as_dict() for p in found if p.severity == PROBLEM]
    notices = [p.as_dict() for p in found if p.severity != PROBLEM]
    columns = ["check", "table", "row", "detail"]
    if json:
        emit({"ok": not problems, "problems": problems, "notices": notices}, True)
    else:
        if notices:
            emit(notices, False, rows=notices, columns=columns, title=plural(len(notices), "notice"))
        if problems:
            emit(problems, False, rows=problems, columns=columns, title=plural(len(problems), "problem"))
        else:
            console.print("[green]ledger OK[/]: keys, revisions, tombstones, hashes, weights and token impacts agree")
    if problems:
        raise typer.Exit(1)


@ledger_app.command("clean")
def clean_cmd(json: bool = JsonOption) -> None:
    """After a crash: close runs whose process died, discard orphaned candidates, remove stray temporary files."""
    from lethe.forget.recovery import clean

    done = clean(workspace())
    if json:
        emit(done.as_dict(), True)
        return
    console.print(
        f"closed {len(done.runs)} dead runs, discarded {len(done.candidates)} orphaned candidates, "
        f"removed {len(done.paths)} stray directories"
    )
