"""`lethe init`: create a workspace."""

from __future__ import annotations

from lethe.cli.app import JsonOption, app, console, emit, new_workspace


@app.command()
def init(json: bool = JsonOption) -> None:
    """Create a workspace: the ledger, models/, checkpoints/, reports/."""
    ws = new_workspace().init()
    result = {"home": str(ws.home), "ledger": ws.ledger_url.split("@")[-1]}
    if json:
        emit(result, True)
    else:
        console.print(f"Workspace ready at [bold]{ws.home}[/] (ledger {result['ledger']})")
