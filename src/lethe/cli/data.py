"""`lethe data …`: ingest sources and browse documents, their revisions and exposures.

Other modules add commands to `data_app` (``from lethe.cli.data import data_app``).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from lethe.cli.app import JsonOption, app, console, emit, err_console, ledger, plural

data_app = typer.Typer(
    help="Ingest documents (JSON, JSONL, TOFU, WikiExtractor, MediaWiki XML) and browse them.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


def _preview(text: str | None, width: int = 60) -> str:
    if text is None:
        return "(erased)"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def document_row(doc) -> dict:
    """One document as a table row (also `lethe forget --dry-run`'s)."""
    return {
        "id": doc.id,
        "key": doc.key,
        "rev": doc.revision,
        "kind": doc.kind,
        "title": doc.title or _preview(doc.content, 50),
        "bytes": doc.size_bytes,
        "erased": "yes" if doc.forgotten_at else "",
    }


@data_app.command("add")
def add(
    path: Path = typer.Argument(
        ...,
        help="A file or directory: JSON / JSONL, a TOFU directory, WikiExtractor "
        "output, or a MediaWiki XML export (.xml, .xml.bz2).",
    ),
    source: str = typer.Option(..., "--source", "-s", help="Source name; documents are keyed by source + id."),
    collection: str = typer.Option(None, "--collection", "-c", help="Also put every document in this collection."),
    reader_name: str = typer.Option(
        None, "--format", "-f", help="Reader to use (detected when omitted): jsonl, tofu, wikiextractor, mediawiki."
    ),
    id_field: str = typer.Option(
        None,
        "--id-field",
        help="jsonl: the field holding each row's id (default: id or external_id, else file name + row).",
    ),
    license: str = typer.Option(None, "--license", help="License of the source (recorded once per source)."),
    allow_forgotten: bool = typer.Option(
        False,
        "--allow-forgotten",
        help="Add back records a forget request erased (by default they are skipped and counted).",
    ),
    json: bool = JsonOption,
) -> None:
    """Ingest PATH in one transaction: reports documents added, updated (new revision), unchanged, and
    suppressed (erased by a forget request: a re-crawl does not bring them back)."""
    from lethe.data.ingest import ingest
    from lethe.data.sources import detect
    from lethe.errors import InputError

    reader = reader_name or detect(path)
    options = {}
    if id_field:
        if reader != "jsonl":
            raise InputError(f"--id-field applies to the jsonl format, not {reader}")
        options["id_field"] = id_field
    led = ledger()
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:,} documents"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=json,
    ) as progress:
        task = progress.add_task(f"reading {path.name} ({reader})", total=None)
        report = ingest(
            led,
            path,
            source=source,
            collection=collection,
            reader=reader,
            license=license,
            progress=lambda n: progress.update(task, completed=n),
            allow_forgotten=allow_forgotten,
            **options,
        )
    seconds = time.perf_counter() - started
    result = {"path": str(path), "source": source, "format": reader, **report.as_dict(), "seconds": round(seconds, 3)}
    if json:
        emit(result, True)
        return
    console.print(
        f"[bold]{path}[/] ({reader}) → source [bold]{source}[/]: "
        f"[green]{report.added:,} added[/], [yellow]{report.updated:,} updated[/], "
        f"{report.unchanged:,} unchanged in {seconds:.1f}s"
    )
    if report.suppressed:
        by = ", ".join(str(r) for r in report.suppressed_by) or "?"
        record = "record" if report.suppressed == 1 else "records"
        console.print(
            f"[yellow]{report.suppressed:,} {record} skipped[/]: forgotten by request {by} "
            "(their content or document was erased); `--allow-forgotten` adds them back"
        )
    if report.guarded:
        by = ", ".join(str(r) for r in report.guarded_by)
        record = "record" if report.guarded == 1 else "records"
        console.print(
            f"[yellow]{report.guarded:,} {record} redacted[/]: they name the subject of forget request {by}; "
            "`--allow-forgotten` stores them as given"
        )
    if report.collections:
        emit(None, False, rows=[{"collection": k, "joined": v} for k, v in report.collections.items()])


@data_app.command("ls")
def ls(
    collection: str = typer.Option(None, "--collection", "-c", help="Only documents of this collection."),
    kind: str = typer.Option(None, "--kind", "-k", help="Only this kind: text, qa or chat."),
    source: str = typer.Option(None, "--source", "-s", help="Only documents of this source."),
    all_revisions: bool = typer.Option(False, "--all-revisions", help="Include superseded revisions."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many documents."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many first."),
    json: bool = JsonOption,
) -> None:
    """List documents (current revisions unless --all-revisions)."""
    led = ledger()
    if collection:
        led.collection_ids(collection)  # a clear error for an unknown collection
    docs = led.list_documents(
        collection=collection, kind=kind, source=source, include_old_revisions=all_revisions, limit=limit, offset=offset
    )
    emit(docs, json, rows=[document_row(d) for d in docs], title=plural(len(docs), "document"))


@data_app.command("show")
def show(
    doc: str = typer.Argument(..., help="A document id, or a stable key source:external_id (newest revision)."),
    json: bool = JsonOption,
) -> None:
    """One document: its content, every revision, and which model versions (and tokenizers) saw each."""
    led = ledger()
    document = led.document(doc)
    revisions = led.revisions(document.id)
    collections = [c.name for c, _ in led.collections() if document.id in set(led.collection_ids(c.name))]
    history = []
    for rev in revisions:
        versions = led.versions_that_saw(rev.id)
        history.append(
            {
                "id": rev.id,
                "revision": rev.revision,
                "parent_id": rev.parent_id,
                "current": rev.is_current,
                "content_hash": rev.content_hash,
                "added_at": rev.added_at,
                "erased_at": rev.forgotten_at,
                "meta": rev.meta,
                "seen_by": [
                    {"version": v.name, "kind": v.kind, "created_at": v.created_at, "tainted": v.tainted_at is not None}
                    for v in versions
                ],
                "tokenizers": [t.name for t in led.tokenizers_of_document(rev.id)],
            }
        )
    if json:
        emit({"document": document, "collections": collections, "revisions": history}, True)
        return
    console.print(
        f"[bold]{document.key}[/] (id {document.id}, revision {document.revision}, {document.kind})"
        + (f" — {document.title}" if document.title else "")
    )
    if collections:
        console.print(f"collections: {', '.join(collections)}")
    if document.forgotten_at:
        reason = (document.tombstone or {}).get("reason")
        console.print(f"[red]erased {document.forgotten_at:%Y-%m-%d %H:%M}[/]: {reason}")
    else:
        console.print(_preview(document.content, 600), highlight=False)
    emit(
        None,
        False,
        title="revisions",
        rows=[
            {
                "id": h["id"],
                "rev": h["revision"],
                "current": "yes" if h["current"] else "",
                "hash": h["content_hash"][:12],
                "added": h["added_at"],
                "erased": h["erased_at"] or "",
                "seen by": ", ".join(v["version"] for v in h["seen_by"]) or "—",
                "tokenizers": ", ".join(h["tokenizers"]) or "—",
            }
            for h in history
        ],
    )


@data_app.command("search")
def search(
    text: str = typer.Argument(..., help="Text to find in titles and contents (any case)."),
    collection: str = typer.Option(None, "--collection", "-c", help="Only documents of this collection."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many documents."),
    json: bool = JsonOption,
) -> None:
    """Search current, unerased documents by title and content."""
    docs = ledger().search(text, limit=limit, collection=collection)
    if not docs and not json:
        where = f" in collection {collection!r}" if collection else ""
        console.print(f"no current document matches {text!r}{where} (erased documents are not searched)")
        return
    emit(docs, json, rows=[document_row(d) for d in docs], title=f"{plural(len(docs), 'document')} matching {text!r}")


@data_app.command("collections")
def collections(json: bool = JsonOption) -> None:
    """Named collections and their sizes."""
    found = ledger().collections()
    rows = [
        {"name": c.name, "documents": n, "created_at": c.created_at, "description": c.description} for c, n in found
    ]
    emit(
        rows,
        json,
        rows=rows,
        columns=["name", "documents", "created_at", "description"],
        title=plural(len(rows), "collection"),
    )
