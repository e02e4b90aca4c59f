"""`lethe log conversations`: chat logs from the ledger, as message trees."""

from __future__ import annotations

import typer

from lethe.cli.app import JsonOption, console, emit, workspace
from lethe.cli.ledger import log_app


@log_app.command("conversations")
def conversations(
    conversation: int = typer.Argument(None, help="Show one conversation's messages."),
    limit: int = typer.Option(50, "--limit", "-n"),
    json: bool = JsonOption,
) -> None:
    """Logged conversations (newest first), or the messages of one."""
    ledger = workspace().ledger
    versions = {v.id: v.name for v in ledger.list_versions(include_discarded=True)}
    if conversation is None:
        rows = [
            {**c, "version": versions.get(c["version_id"]), "answered_by": _answered_by(ledger, c["id"], versions)}
            for c in ledger.list_conversations(limit)
        ]
        columns = ["id", "created_at", "answered_by", "messages", "title"]
        emit(rows, json, rows=rows, columns=columns, title="conversations")
        return
    messages = ledger.conversation_messages(conversation)
    rows = [
        {
            "id": m.id,
            "parent": m.parent_id,
            "role": m.role,
            "version": versions.get(m.version_id),
            "content": m.content,
            "stats": m.stats,
            "params": m.params,
        }
        for m in messages
    ]
    if json:
        emit(rows, True)
        return
    for row in rows:
        who = f"{row['role']}" + (f" ({row['version']})" if row["version"] else "")
        console.print(f"[bold]{who}[/] #{row['id']}←{row['parent']}: {row['content']}")


def _answered_by(ledger, conversation_id: int, versions: dict[int, str]) -> str:
    """The versions that wrote the replies, in order (`v1, v3` after `/model v3`), not just the first."""
    names = [versions.get(m.version_id) for m in ledger.conversation_messages(conversation_id) if m.role == "assistant"]
    return ", ".join(dict.fromkeys(name for name in names if name))
