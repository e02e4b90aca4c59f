"""`lethe`: the command line. Each submodule registers its commands on `lethe.cli.app.app`."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

from lethe.cli.app import app, err_console
from lethe.errors import LetheError

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "app":
        importlib.import_module(f"{__name__}.{_module.name}")


def main() -> None:
    try:
        app()
    except LetheError as error:  # raised outside a command (e.g. while parsing options)
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except BrokenPipeError:  # the reader of stdout left (`lethe ... | head`); what ran is committed
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        sys.exit(141)  # 128 + SIGPIPE, as a shell reports it
