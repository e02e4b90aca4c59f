"""The Typer application and what every command shares: the workspace options and output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperArgument, TyperGroup, TyperOption

from lethe import __version__
from lethe.errors import LetheError
from lethe.threads import apply_threads
from lethe.workspace import Workspace

err_console = Console(stderr=True)


# Help that reads like a mature CLI: a flag takes no value, so it shows no `<bool>`, and a
# required argument is PATH (click's convention), not `{path}`.
_option_type = TyperOption.display_type_rich


def _flag_type(self: TyperOption, ctx: click.Context) -> str | None:
    return None if self.is_flag else _option_type(self, ctx)


def _argument_usage(self: TyperArgument) -> str:
    name = self.display_name_raw.upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


TyperOption.display_type_rich = _flag_type
TyperArgument._usage_display_name = _argument_usage


class LetheGroup(TyperGroup):
    """Prints a `LetheError` as one clear line (what, and where) and exits with status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LetheError as error:
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="lethe",
    help="Train small chatbots whose every training example is on record, serve them, and make them forget on request.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    cls=LetheGroup,
)
# One message is one line whatever the terminal's width, so paths in it stay whole for grep and
# for scripts; tables still fit the width.
console = Console(soft_wrap=True)


@dataclass
class State:
    home: Path | None = None
    db: str | None = None

    def workspace(self) -> Workspace:
        """The workspace `lethe init` made; a missing one (or its database) is an error."""
        return guarded(Workspace.from_env(self.home, self.db).require())

    def new_workspace(self) -> Workspace:
        """The workspace named by the options, whether or not it exists yet (`init`, `demo`)."""
        return guarded(Workspace.from_env(self.home, self.db))


state = State()


def _print_version(value: bool) -> None:
    if value:
        console.print(f"lethe {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    home: Path = typer.Option(None, "--home", envvar="LETHE_HOME", help="Workspace directory (default ./lethe-home)."),
    db: str = typer.Option(
        None, "--db", envvar="LETHE_DB_URL", help="Ledger database URL (default: SQLite in the workspace)."
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        envvar="LETHE_THREADS",
        help="CPU threads for PyTorch (default: the cores free right now; see LETHE_THREAD_POLICY).",
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print lethe's version and exit."
    ),
) -> None:
    state.home, state.db = home, db
    apply_threads(threads)  # through the environment: torch is imported only by commands that need it


def guarded(ws: Workspace) -> Workspace:
    """`ws` with the forget requests' name guard on its ingests (`lethe.forget.name_guard`)."""
    from lethe.forget.name_guard import guarded as install

    return install(ws)


def workspace() -> Workspace:
    return state.workspace()


def new_workspace() -> Workspace:
    return state.new_workspace()


def ledger():
    return state.workspace().ledger


def to_jsonable(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "__table__"):
        return {c.name: to_jsonable(getattr(value, c.key, None)) for c in value.__table__.columns}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def print_table(rows: list[dict], columns: list[str] | None = None, title: str | None = None) -> None:
    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in columns])
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(to_jsonable(value))
    return text if len(text) <= 80 else text[:77] + "..."


def emit(
    result: Any,
    as_json: bool,
    rows: list[dict] | None = None,
    columns: list[str] | None = None,
    title: str | None = None,
) -> None:
    """Print a result as JSON (`--json`) or as a table for people."""
    if as_json:
        print_json(result)
    elif rows is not None:
        print_table(rows, columns, title)
    else:
        console.print(result)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """`1 document`, `2 documents` (`nouns` for irregular plurals)."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")
