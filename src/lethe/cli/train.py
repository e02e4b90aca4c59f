"""`lethe train`, `lethe update`, `lethe versions` and `lethe tokenizer train`."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import typer

from lethe.cli.app import JsonOption, app, console, emit, err_console, workspace
from lethe.cli.progress import StageProgress, slice_label
from lethe.errors import InputError

tokenizer_app = typer.Typer(help="Tokenizers trained on ledger documents.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")


class ProgressBars:
    """Turns training `ProgressEvent`s into one progress bar per slice (stderr), named for the job's kind."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.stages = StageProgress(err_console) if enabled else None

    def __enter__(self) -> Self:
        if self.stages is not None:
            self.stages.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.stages is not None:
            self.stages.finish()
            self.stages.__exit__(*exc)

    def __call__(self, event) -> None:
        if self.stages is None:
            return
        if event.kind == "slice_start":
            self.stages.finish()
            self.stages.start(slice_label(event))
        elif event.kind == "step":
            eta = event.eta
            info = " ".join(
                part
                for part in (
                    f"loss {event.loss:.3f}" if event.loss is not None else "",
                    f"{event.tokens_per_second:,.0f} tok/s" if event.tokens_per_second else "",
                    f"ETA {eta:.0f}s" if eta is not None else "",
                )
                if part
            )
            self.stages.update(event.step, event.steps_total or None, info)
        elif event.kind == "slice_end":
            self.stages.finish(f"{slice_label(event)} → {event.version}")


def _version_rows(versions) -> list[dict]:
    return [
        {
            "id": v.id,
            "name": v.name,
            "kind": v.kind,
            "status": v.status,
            "slice": v.slice_index,
            "run": v.run_id,
            "sha256": v.weights_sha256[:12],
            "path": v.path,
        }
        for v in versions
    ]


def _report(versions, as_json: bool, title: str) -> None:
    from lethe.train.distributed import is_main_process

    if not is_main_process():
        return
    if as_json:
        emit([{**row, "sha256": v.weights_sha256} for row, v in zip(_version_rows(versions), versions)], True)
    else:
        emit(None, False, rows=_version_rows(versions), title=title)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@app.command("train")
def train_command(
    data: list[str] = typer.Option(None, "--data", "-d", help="Collection(s) to train on (repeatable)."),
    preset: str = typer.Option(
        "tiny", "--preset", help="Model preset (nano, tiny, small, base) or a local HF model directory."
    ),
    task: str = typer.Option("auto", "--task", help="pretrain | sft | auto (text pretrains, QA/chat SFT)."),
    slices: int = typer.Option(
        1, "--slices", help="Ordered slices, each checkpointed (exact replay restarts from one)."
    ),
    epochs: int = typer.Option(1, "--epochs", help="Passes over each slice."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default 1e-3)."),
    batch_size: int = typer.Option(
        None, "--batch-size", help="Examples per optimizer step, all processes together (default 16)."
    ),
    seq_len: int = typer.Option(None, "--seq-len", help="Longest sequence in tokens (default 256)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation, the slice plan and the shuffles."),
    base: str = typer.Option(
        None, "--base", help="Fine-tune a base model imported with `lethe base add` (instead of --preset)."
    ),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (merged after each slice)."),
    lora_rank: int = typer.Option(None, "--lora-rank", help="LoRA rank (default 8)."),
    qlora: bool = typer.Option(
        False, "--qlora", help="QLoRA: LoRA on a 4-bit (NF4, bitsandbytes) copy, merged into full precision."
    ),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 autocast on the CPU."),
    cumulative: bool = typer.Option(
        False,
        "--cumulative",
        help="SISA-style: each slice also trains on every earlier slice's documents (as do later updates and replays).",
    ),
    save_every: int = typer.Option(None, "--save-every", help="Write the resume state every N steps (default 200)."),
    lineage: str = typer.Option(
        None, "--lineage", help="Name of the new lineage (or, with --resume, the one to resume)."
    ),
    tokenizer: str = typer.Option(
        None, "--tokenizer", help="Workspace tokenizer name or directory (default: the newest)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted training instead of starting one."),
    json: bool = JsonOption,
) -> None:
    """Train a new model lineage in slices, recording every document of every step."""
    from lethe.train import pipeline
    from lethe.train.config import TrainConfig

    _quiet_transformers()
    ws = workspace()
    with ProgressBars(enabled=not json) as bars:
        if resume:
            from lethe.forget.recovery import clean

            versions = pipeline.resume(ws, lineage=lineage, callback=bars)
            clean(ws)  # what the interrupted run left: its unrecorded directories, temporaries
        else:
            if not data:
                raise InputError(_which_data(ws))
            config = TrainConfig().replace(
                save_every=save_every, cumulative=cumulative, lora_r=lora_rank, qlora=qlora or None
            )
            versions = pipeline.train(
                ws,
                data=data,
                preset_or_path=preset,
                task=task,
                slices=slices,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                seq_len=seq_len,
                seed=seed,
                lora=lora or qlora,
                bf16=bf16,
                lineage=lineage,
                tokenizer=tokenizer,
                config=config,
                base_model=base,
                callback=bars,
            )
    _report(versions, json, "trained")


@app.command("update")
def update_command(
    data: list[str] = typer.Option(..., "--data", "-d", help="Collection(s) holding the new documents."),
    version: str = typer.Option("latest", "--version", help="Version to build on (id, name or alias)."),
    all_documents: bool = typer.Option(
        False, "--all", help="Train on the whole collection, not only unseen documents."
    ),
    epochs: int = typer.Option(None, "--epochs", help="Passes over the new slice (default: as the last slice)."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default: as the last slice)."),
    bf16: bool = typer.Option(None, "--bf16/--no-bf16", help="bfloat16 autocast (default: as the last slice)."),
    json: bool = JsonOption,
) -> None:
    """Train one new slice on top of the latest version and publish it (the weekly update)."""
    from lethe.train import pipeline

    _quiet_transformers()
    with ProgressBars(enabled=not json) as bars:
        versions = pipeline.update(
            workspace(),
            data=data,
            version=version,
            new_only=not all_documents,
            epochs=epochs,
            lr=lr,
            bf16=bf16,
            callback=bars,
        )
    _report(versions, json, "updated")


@app.command("versions")
def versions_command(
    all_versions: bool = typer.Option(False, "--all", help="Include discarded versions."),
    json: bool = JsonOption,
) -> None:
    """Model versions with their lineage, kind, parent, aliases and taint."""
    ledger = workspace().ledger
    versions = ledger.list_versions(include_discarded=all_versions)
    lineages = {lineage.id: lineage.name for lineage in ledger.lineages()}
    names = {v.id: v.name for v in versions}
    bases = ledger.version_bases()
    aliases: dict[int, list[str]] = {}
    for alias, version_id in sorted(ledger.aliases().items()):
        aliases.setdefault(version_id, []).append(alias)
    rows = [
        {
            "id": v.id,
            "name": v.name,
            "lineage": lineages.get(v.lineage_id),
            "base": bases.get(v.id),
            "kind": v.kind,
            "parent": names.get(v.parent_id, v.parent_id),
            "status": v.status,
            "slice": v.slice_index,
            "run": v.run_id,
            "aliases": aliases.get(v.id, []),
            "tainted": v.tainted_at is not None,
            "created_at": v.created_at,
            "path": v.path,
            "weights_sha256": v.weights_sha256,
        }
        for v in versions
    ]
    if json:
        emit(rows, True)
        return
    table = [{**r, "aliases": ", ".join(r["aliases"]), "tainted": "yes" if r["tainted"] else ""} for r in rows]
    emit(
        None,
        False,
        rows=table,
        title="model versions",
        columns=["name", "lineage", "base", "kind", "parent", "status", "slice", "run", "aliases", "tainted"],
    )


@tokenizer_app.command("train")
def tokenizer_train_command(
    collection: list[str] = typer.Option(
        None, "--collection", "-c", help="Collection(s) to learn from (default: every document)."
    ),
    vocab_size: int = typer.Option(4096, "--vocab-size", help="Vocabulary size, special and byte tokens included."),
    name: str = typer.Option(None, "--name", help="Saved as tokenizers/NAME (default bpe-<vocab size>)."),
    json: bool = JsonOption,
) -> None:
    """Train a byte-level BPE tokenizer with lethe's chat template on ledger documents."""
    from lethe.data.tokenizer import load_tokenizer
    from lethe.train.tokenizers import train_workspace_tokenizer

    path: Path = train_workspace_tokenizer(workspace(), collections=collection, vocab_size=vocab_size, name=name)
    result = {"name": path.name, "path": str(path), "vocab_size": len(load_tokenizer(path))}
    if json:
        emit(result, True)
    else:
        console.print(f"Tokenizer [bold]{result['name']}[/] ({result['vocab_size']} tokens) saved to {path}")


@tokenizer_app.command("ls")
def tokenizer_ls_command(json: bool = JsonOption) -> None:
    """The tokenizers lethe trained, with how many documents each learned from and what it replaced."""
    ledger = workspace().ledger
    rows = [
        {
            "id": t.id,
            "name": t.name,
            "vocab": t.vocab_size,
            "documents": len(ledger.tokenizer_document_ids(t.id)),
            "replaces": t.replaces_id or "",
            "created": t.created_at,
            "path": t.path,
        }
        for t in ledger.tokenizers()
    ]
    emit(rows, json, rows=rows, title="tokenizers")


def _which_data(ws) -> str:
    """What to pass as --data: the collections at hand, largest first (a tokenizer covers them all)."""
    found = sorted(ws.ledger.collections(), key=lambda pair: -pair[1])
    if not found:
        return (
            "nothing to train on yet: add documents (`lethe data add` or `lethe data synth`), then `--data COLLECTION`"
        )
    shown = ", ".join(f"{c.name} ({n:,})" for c, n in found[:6])
    more = f", … {len(found) - 6} more (`lethe data collections`)" if len(found) > 6 else ""
    return f"name the collection(s) to train on with --data, e.g. --data {found[0][0].name}; collections: {shown}{more}"
