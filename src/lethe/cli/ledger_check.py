"""`lethe ledger check`: verify the ledger and say exactly what is wrong."""

from __future__ import annotations

import typer

from lethe.cli.app import JsonOption, console, emit, workspace
from lethe.cli.ledger import ledger_app


@ledger_app.command("check")
def check_cmd(
    skip_weights: bool = typer.Option(False, "--skip-weights", help="Do not re-hash model weights (faster)."),
    json: bool = JsonOption,
) -> None:
    """Foreign keys, orphans, revisions, tombstones, content hashes, weights sha256, token impacts."""
    from lethe.ledger.integrity import check

    problems = check(workspace().ledger, verify_weights=not skip_weights)
    rows = [p.as_dict() for p in problems]
    if json:
        emit({"ok": not problems, "problems": rows}, True)
    elif problems:
        emit(rows, False, rows=rows, title=f"{len(problems)} problems")
    else:
        console.print("[green]ledger OK[/]: keys, revisions, tombstones, hashes, weights and token impacts agree")
    if problems:
        raise typer.Exit(1)
