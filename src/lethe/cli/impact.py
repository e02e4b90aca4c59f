"""`lethe impact compute | show`: which tokens of a document a version memorised."""

from __future__ import annotations

import typer

from lethe.cli.app import JsonOption, app, console, emit, workspace
from lethe.errors import InputError

impact_app = typer.Typer(help="Token impact: per-document memorisation, token by token.", no_args_is_help=True)
app.add_typer(impact_app, name="impact")


@impact_app.command("compute")
def compute(
    version: str = typer.Option("latest", "--version", help="The version to measure."),
    collection: str = typer.Option(None, "--collection", help="Only documents of this collection."),
    top_k: int = typer.Option(20, "--top-k", help="Most-impactful tokens kept per document."),
    json: bool = JsonOption,
) -> None:
    """Store per-document token impact: log p(version) - log p(a reference that never saw it)."""
    from rich.progress import Progress

    from lethe.eval.impact import compute_impacts

    ledger = workspace().ledger
    ids = ledger.collection_ids(collection) if collection else None
    with Progress(console=console, transient=True, disable=json) as progress:
        task = progress.add_task("token impact", total=None)
        result = compute_impacts(
            workspace(),
            version,
            document_ids=ids,
            top_k=top_k,
            callback=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if json:
        emit(result, True)
    else:
        console.print(
            f"{result['version']}: token impact of {result['documents']} documents stored ({result['slices']} slices)"
        )


@impact_app.command("show")
def show(
    doc: str = typer.Argument(..., help="Document id or key."),
    version: str = typer.Option("latest", "--version", help="Whose impact to show."),
    json: bool = JsonOption,
) -> None:
    """Print a document with its most-memorised tokens marked."""
    from lethe.eval.impact_view import render_impact

    ledger = workspace().ledger
    document = ledger.document(doc)
    target = ledger.resolve_version(version, allow_tainted=True)
    rows = [r for r in ledger.token_impacts(document_id=document.id) if r.version_id == target.id]
    if not rows:
        raise InputError(_no_impact_advice(ledger, document, target))
    record = rows[-1]
    if json:
        emit(
            {
                "document_id": document.id,
                "version": target.name,
                "score": record.score,
                "average_loss": record.average_loss,
                "relative_loss": record.relative_loss,
                "total_tokens": record.total_tokens,
                "top_tokens": record.top_tokens,
                "reference": record.reference,
            },
            True,
        )
        return
    console.print(
        f"[bold]{document.title or document.key}[/] on {target.name} (reference {record.reference}): "
        f"mean impact {record.score:.3f} nats/token over {record.total_tokens} tokens"
    )
    console.print(render_impact(target, document, record, ledger))


def _no_impact_advice(ledger, document, target) -> str:
    """Why there is no record, and the one thing that would give one (never the command just run)."""
    what = f"no token impact of document {document.id} on {target.name}"
    if document.forgotten_at is not None:
        return f"{what}: the document was forgotten and its content erased"
    if not ledger.documents_seen(target.id, candidates=[document.id]):
        return (
            f"{what}: {target.name} never trained on it, and token impact is measured only for documents a "
            f"version trained on (`lethe data show {document.id}` lists the versions that did)"
        )
    if not ledger.token_impacts(version_id=target.id):
        return f"{what}: run `lethe impact compute --version {target.name}` first"
    return (
        f"{what}: {target.name}'s token impact was computed, but not for this document (no checkpoint "
        "before the slice that first showed it to measure against, or a collection left it out)"
    )
