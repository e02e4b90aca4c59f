"""`lethe serve`: the OpenAI-compatible API (and, when present, the web UI) in one process."""

from __future__ import annotations

import typer

from lethe.cli.app import app, console, workspace


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(7860, help="Port to listen on."),
    api_key: str = typer.Option(
        None,
        "--api-key",
        envvar="LETHE_API_KEY",
        help="Bearer key clients must send; required when HOST is not loopback.",
    ),
    allow_tainted: bool = typer.Option(
        False, "--allow-tainted", help="Allow serving versions that saw since-forgotten data."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Do not record conversations."),
    no_ui: bool = typer.Option(False, "--no-ui", help="Serve the API only (no web UI, no job worker)."),
    max_batch_size: int = typer.Option(16, help="Replies decoded together per model version."),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="Host names clients may use besides loopback and HOST (repeatable)."
    ),
) -> None:
    """Serve model versions over HTTP (POST /v1/chat/completions, GET /v1/models, /health)."""
    from lethe.chat.engine import EngineConfig
    from lethe.serve.api import check_exposure, create_app
    from lethe.serve.logging import ConversationLogger, LoggingConfig
    from lethe.serve.models import ModelPool
    from lethe.serve.server import run

    check_exposure(host, api_key)  # before touching the workspace
    ws = workspace()
    pool = ModelPool(
        ws.ledger,
        allow_tainted=allow_tainted,
        base_dir=ws.home,
        engine_config=EngineConfig(max_batch_size=max_batch_size),
    )
    pool.watch(1.0)  # follow `latest` when a forget request publishes, from any process
    logger = None if no_log else ConversationLogger(ws.ledger, LoggingConfig.from_env())
    api = create_app(pool, logger=logger, api_key=api_key, host=host, allowed_hosts=tuple(allowed_host))
    worker = None
    if not no_ui:
        from lethe.serve.ui import UIContext, mount_ui
        from lethe.serve.worker import JobWorker

        worker = JobWorker(ws).start()  # fails jobs a dead server left running, runs queued ones
        mount_ui(api, UIContext(ws, pool, logger, worker), api_key=api_key)
        console.print(f"lethe web UI on http://{host}:{port}/")
    console.print(f"lethe API on http://{host}:{port}/v1 (health: /health)")
    try:
        run(api, host=host, port=port)
    finally:
        if worker is not None:
            worker.stop(timeout=5.0)
        pool.close()
        if logger is not None:
            logger.close(timeout=2.0)
