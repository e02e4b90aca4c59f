"""`lethe base add / ls`: pretrained base models, imported from a HF directory or a GGUF file."""

from __future__ import annotations

from pathlib import Path

import typer

from lethe.cli.app import JsonOption, app, console, emit, err_console, workspace

base_app = typer.Typer(help="Pretrained base models (local HF directories or GGUF files).", no_args_is_help=True)
app.add_typer(base_app, name="base")


def _row(record) -> dict:
    return {
        "id": record.id,
        "name": record.name,
        "source": record.source_path,
        "kind": record.source_kind,
        "parameters": record.parameters,
        "license": record.license,
        "quantization": record.quantization,
        "source_sha256": record.source_sha256,
        "weights_sha256": record.weights_sha256,
        "pretraining_data": record.pretraining_data,
        "path": record.path,
        "added": record.created_at,
    }


@base_app.command("add")
def add_command(
    path: Path = typer.Argument(..., help="A local Hugging Face model directory or a .gguf file."),
    name: str = typer.Option(
        None, "--name", help="Name to train from (default: the GGUF's basename or the directory's name)."
    ),
    license: str = typer.Option(None, "--license", help="License, when the source does not say."),
    json: bool = JsonOption,
) -> None:
    """Convert a base model once into lethe's layout (safetensors, tokenizer, chat template) and record it."""
    from lethe.model.base import import_base

    if not json:
        err_console.print(
            f"importing {path} (a GGUF file is dequantised once per machine, about a minute)", soft_wrap=True
        )
    record, created = import_base(workspace(), path, name=name, license=license)
    row = _row(record)
    if json:
        emit({**row, "created": created}, True)
        return
    verb = "added" if created else "already recorded"
    console.print(
        f"base model [bold]{record.name}[/] {verb}: {record.parameters:,} parameters, "
        f"license {record.license or 'not given'}, weights sha256 {record.weights_sha256[:12]}, at {record.path}"
    )
    if record.quantization:
        console.print(f"its weights are dequantised from {record.quantization} (rounded as the GGUF file stored them)")
    console.print(f"pretraining data: {record.pretraining_data}; provenance in this ledger starts at this base")


@base_app.command("ls")
def ls_command(json: bool = JsonOption) -> None:
    """The imported base models."""
    rows = [_row(r) for r in workspace().ledger.base_models()]
    table = [{**r, "weights_sha256": r["weights_sha256"][:12], "parameters": f"{r['parameters']:,}"} for r in rows]
    emit(
        rows,
        json,
        rows=table,
        title="base models",
        columns=["name", "kind", "parameters", "license", "quantization", "weights_sha256", "pretraining_data"],
    )
