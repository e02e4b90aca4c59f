"""`lethe chat`: talk to a model version in the terminal."""

from __future__ import annotations

import sys

import typer

from lethe.cli.app import app, console, err_console, workspace


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@app.command()
def chat(
    model: str = typer.Option("latest", "--model", "-m", help="Model version: name, id or alias."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not record the conversation."),
    system: str = typer.Option(None, "--system", help="System prompt."),
    temperature: float = typer.Option(0.7, help="Sampling temperature (0 = greedy)."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Longest reply, in tokens."),
    allow_tainted: bool = typer.Option(False, "--allow-tainted", help="Allow a version that saw since-forgotten data."),
) -> None:
    """Chat in the terminal, streaming; /reset, /params, /model, /help inside."""
    from lethe.serve.readiness import has_versions, no_version_error, version_notices

    ws = workspace()
    if not has_versions(ws.ledger):
        raise no_version_error(model)
    for notice in version_notices(ws.ledger, model):
        err_console.print(f"[yellow]note:[/] {notice}", highlight=False, soft_wrap=True)
    from lethe.chat.sampling import SamplingParams
    from lethe.chat.terminal import TerminalChat
    from lethe.serve.logging import ConversationLogger, LoggingConfig
    from lethe.serve.models import ModelPool

    pool = ModelPool(ws.ledger, allow_tainted=allow_tainted, base_dir=ws.home)
    logger = None if no_log else ConversationLogger(ws.ledger, LoggingConfig.from_env())
    params = SamplingParams(temperature=temperature, max_new_tokens=max_tokens)
    try:
        with console.status(f"loading {model}"):
            session = TerminalChat(
                pool.get, model, read=input, write=_write, logger=logger, params=params, system_prompt=system
            )
        session.run()
    finally:
        pool.close()
        if logger is not None:
            logger.close(timeout=2.0)
