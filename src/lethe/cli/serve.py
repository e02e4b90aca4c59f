"""`lethe serve`: the OpenAI-compatible API (and, when present, the web UI) in one process."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING

import typer

from lethe.cli.app import app, console, err_console, workspace
from lethe.errors import InputError

if TYPE_CHECKING:
    from lethe.workspace import Workspace


def check_bindable(host: str, port: int) -> None:
    """Refuse an address this process cannot listen on, before any model is loaded."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InputError(f"cannot listen on {host}:{port}: unknown host ({error.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise InputError(
                    f"port {port} on {host} is already in use (another `lethe serve`?); choose another with --port"
                ) from None
            raise InputError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def hint_versions(ws: Workspace) -> None:
    """Say what to do when there is nothing (or nothing good) to serve."""
    from lethe.serve.readiness import version_notices

    for notice in version_notices(ws.ledger):
        err_console.print(f"[yellow]note:[/] {notice}", highlight=False, soft_wrap=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(7860, min=1, max=65535, help="Port to listen on."),
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
    from lethe.serve.exposure import check_exposure

    check_exposure(host, api_key)
    check_bindable(host, port)  # a taken port fails now, not after every model has loaded
    ws = workspace()
    from lethe.chat.engine import EngineConfig
    from lethe.serve.api import create_app
    from lethe.serve.logging import ConversationLogger, LoggingConfig
    from lethe.serve.models import ModelPool
    from lethe.serve.server import run

    hint_versions(ws)
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
