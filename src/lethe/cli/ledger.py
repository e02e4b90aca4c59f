"""`lethe ledger …` (the JSON changelog, both ways) and `lethe log` (the event changelog).

`lethe log` alone lists events; other modules add subcommands to `log_app`
(``from lethe.cli.ledger import log_app``; e.g. ``lethe log conversations``) and to
`ledger_app` (e.g. ``lethe ledger check``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from lethe.cli.app import JsonOption, app, console, emit, ledger
from lethe.errors import InputError

ledger_app = typer.Typer(
    help="The ledger itself: integrity check, and the JSON changelog layout both ways.", no_args_is_help=True
)
app.add_typer(ledger_app, name="ledger")
log_app = typer.Typer(help="The changelog: every event the ledger recorded (and conversations).")
app.add_typer(log_app, name="log")


@ledger_app.command("export-json")
def export_json(
    out: Path = typer.Argument(..., help="The JSON file to write (the Changelog LLM layout)."),
    json: bool = JsonOption,
) -> None:
    """Write every document revision, with training metadata and token impacts, as a JSON changelog."""
    from lethe.ledger.legacy_json import export_json as export

    count = export(ledger(), out)
    result = {"path": str(out), "entries": count}
    if json:
        emit(result, True)
    else:
        console.print(f"Wrote {count:,} entries to [bold]{out}[/]")


@ledger_app.command("import-json")
def import_json(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A JSON changelog (export-json's layout)."),
    source: str = typer.Option("legacy", "--source", help="Source for entries that do not name one."),
    json: bool = JsonOption,
) -> None:
    """Load a JSON changelog into the ledger, in one transaction."""
    from lethe.data.sources.json_stream import iter_rows
    from lethe.ledger.legacy_json import import_json as load

    counts = load(ledger(), path, iter_rows(path), source=source)
    if json:
        emit({"path": str(path), **counts}, True)
    else:
        console.print(
            f"Imported {counts['documents']:,} documents ({counts['reused']:,} already present), "
            f"{counts['versions']} model versions, {counts['exposures']:,} exposures, "
            f"{counts['token_impacts']:,} token impacts from [bold]{path}[/]"
        )


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option}: not an ISO date or time: {text!r} (e.g. 2025-06-01 or 2025-06-01T12:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@log_app.callback(invoke_without_command=True)
def log(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind", "-k", help="Event kind or prefix (run matches run.started, …)."),
    since: str = typer.Option(None, "--since", help="Only events at or after this ISO time (UTC unless given)."),
    until: str = typer.Option(None, "--until", help="Only events at or before this ISO time."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many events, newest first."),
    json: bool = JsonOption,
) -> None:
    """The event changelog, newest first, filtered by kind and time."""
    if ctx.invoked_subcommand is not None:
        return
    events = ledger().events(kind=kind, since=_when(since, "--since"), until=_when(until, "--until"), limit=limit)
    if json:
        emit(events, True)
        return
    table = Table(title=f"{len(events)} events (newest first)")
    table.add_column("id", justify="right")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("kind", no_wrap=True, style="bold")
    table.add_column("subject", no_wrap=True)
    table.add_column("details", overflow="fold")
    for e in events:
        details = ", ".join(f"{k}={v}" for k, v in (e.data or {}).items() if v is not None)
        table.add_row(
            str(e.id),
            f"{e.ts:%Y-%m-%d %H:%M:%S}",
            e.kind,
            f"{e.subject_type} {e.subject_id}" if e.subject_type else "",
            details if len(details) <= 160 else details[:159] + "…",
        )
    console.print(table)
