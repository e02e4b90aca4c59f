"""The Data tab: browse the ledger's documents, their revisions and exposures (which versions
saw them), with the text highlighted by token impact where it has been computed.
"""

from __future__ import annotations

from collections import defaultdict

import gradio as gr
import pandas as pd

from lethe.errors import LetheError
from lethe.serve.ui.common import Loader, UIContext, error_text, when

DOCUMENT_COLUMNS = ["id", "key", "revision", "kind", "title", "state"]
REVISION_COLUMNS = ["id", "revision", "state", "added", "sha256", "bytes"]
SAW_COLUMNS = ["version", "how", "kind", "state", "run", "created"]
RUN_COLUMNS = ["run", "steps", "first step", "last step"]
PAGE = 50


def _state(doc) -> str:
    if doc.forgotten_at is not None:
        return "forgotten"
    return "current" if doc.is_current else "old revision"


def documents_frame(ledger, query: str, collection: str, kind: str, page: int) -> pd.DataFrame:
    page = max(1, int(page or 1))
    if query and query.strip():
        found = ledger.search(query, limit=PAGE * page, collection=collection or None)
        found = [d for d in found if not kind or d.kind == kind][PAGE * (page - 1) :]
    else:
        found = ledger.list_documents(
            collection=collection or None, kind=kind or None, limit=PAGE, offset=PAGE * (page - 1)
        )
    rows = [[d.id, d.key, d.revision, d.kind, (d.title or "")[:80], _state(d)] for d in found]
    return pd.DataFrame(rows, columns=DOCUMENT_COLUMNS)


def document_header(ledger, doc) -> str:
    source = next((s.name for s in ledger.sources() if s.id == doc.source_id), doc.source_id)
    facts = (
        f"`{doc.key}` · revision {doc.revision} · {doc.kind} · source {source} · "
        f"{doc.size_bytes} bytes · added {when(doc.added_at)} · sha256 `{doc.content_hash[:16]}…`"
    )
    lines = [f"### #{doc.id} · {doc.title or doc.key}", facts]
    if doc.forgotten_at is not None:
        tomb = doc.tombstone or {}
        lines.append(
            f"**Forgotten** {when(doc.forgotten_at)}: only its hash remains "
            f"(reason: {tomb.get('reason', '—')}, request {tomb.get('request_id', '—')})."
        )
    if doc.tags:
        lines.append("tags: " + ", ".join(map(str, doc.tags)))
    return "  \n".join(lines)


def revisions_frame(ledger, doc_id: int) -> pd.DataFrame:
    rows = [
        [r.id, r.revision, _state(r), when(r.added_at), r.content_hash[:16], r.size_bytes]
        for r in ledger.revisions(doc_id)
    ]
    return pd.DataFrame(rows, columns=REVISION_COLUMNS)


def exposures_frames(ledger, doc_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(versions whose training saw the document, optimizer steps per run that held it).

    A version either trained on the document itself (steps of its own training held it) or only
    descends from one that did (an unlearned or updated version inherits what its parent saw).
    """
    steps: dict[int, list[int]] = defaultdict(list)
    for exposure in ledger.exposures(document_id=doc_id, limit=100_000):
        steps[exposure.run_id].append(exposure.step)
    saw, trainers = [], []
    for v in ledger.versions_that_saw(doc_id):
        if _trained_on_it(ledger, v, steps):
            how = "trained on it"
            trainers.append(v.name)
        else:
            how = (
                f"descends from {trainers[0]}, which trained on it" if trainers else "descends from a version that did"
            )
        saw.append([v.name, how, v.kind, "tainted" if v.tainted_at else v.status, v.run_id, when(v.created_at)])
    runs = [[run_id, len(s), min(s), max(s)] for run_id, s in sorted(steps.items())]
    return pd.DataFrame(saw, columns=SAW_COLUMNS), pd.DataFrame(runs, columns=RUN_COLUMNS)


def _trained_on_it(ledger, version, steps: dict[int, list[int]]) -> bool:
    """Whether a step that made `version` (beyond what its parent already covered) held the document."""
    covered = ledger.coverage(version.id)
    inherited = ledger.coverage(version.parent_id) if version.parent_id is not None else {}
    return any(
        inherited.get(run_id, -1) < step <= covered[run_id]
        for run_id, run_steps in steps.items()
        if run_id in covered
        for step in run_steps
    )


def impact_choices(ledger, doc_id: int) -> list[tuple[str, int]]:
    names = {v.id: v.name for v in ledger.list_versions(include_discarded=True)}
    return [
        (f"{names.get(r.version_id, r.version_id)} · score {r.score:.3f}", r.id)
        for r in ledger.token_impacts(document_id=doc_id)
    ]


def impact_view(ctx: UIContext, doc_id: int, impact_id: int | None) -> str:
    """The document's text with its most memorised tokens marked (opacity ~ impact)."""
    from html import escape

    doc = ctx.ledger.document(doc_id)
    records = {r.id: r for r in ctx.ledger.token_impacts(document_id=doc_id)}
    record = records.get(impact_id) if impact_id is not None else None
    if doc.content is None:
        return "<p><em>The content is erased; nothing to highlight.</em></p>"
    if record is None:
        plain = escape(doc.content)
        note = (
            "No token impact computed for this document (<code>lethe impact compute</code>)."
            if not records
            else "Pick a version to highlight its token impact."
        )
        return f'<p><em>{note}</em></p><div style="white-space: pre-wrap">{plain}</div>'
    from lethe.eval.impact_view import impact_html

    version = ctx.ledger.resolve_version(record.version_id, allow_tainted=True)
    return (
        f"<p>Token impact of <b>{escape(version.name)}</b>: mean {record.score:.3f} nats per token; "
        "darker = more memorised (hover for the value).</p>" + impact_html(version, doc, record, ctx.ledger)
    )


def build_data_tab(ctx: UIContext) -> Loader:
    ledger = ctx.ledger
    with gr.Row():
        query = gr.Textbox(label="Search titles and content", scale=3, elem_id="data-query")
        collection = gr.Dropdown(
            label="Collection", choices=[""], value="", scale=2, allow_custom_value=True, elem_id="data-collection"
        )
        kind = gr.Dropdown(label="Kind", choices=["", "text", "qa", "chat"], value="", scale=1)
        page = gr.Number(label="Page", value=1, precision=0, minimum=1, scale=1)
        browse = gr.Button("Browse", size="sm", scale=1, elem_id="data-browse")
    documents = gr.Dataframe(
        pd.DataFrame(columns=DOCUMENT_COLUMNS),
        label="Documents (click a row)",
        interactive=False,
        max_height=300,
        elem_id="data-documents",
    )
    with gr.Row():
        doc_id = gr.Number(label="Document id", precision=0, elem_id="data-doc-id", scale=1)
        open_doc = gr.Button("Open", size="sm", scale=1, elem_id="data-open")
        impact = gr.Dropdown(label="Token impact of version", choices=[], value=None, scale=3, elem_id="data-impact")
    header = gr.Markdown(elem_id="data-header")
    text = gr.HTML(elem_id="data-text", js_on_load=None)
    with gr.Row():
        revisions = gr.Dataframe(
            pd.DataFrame(columns=REVISION_COLUMNS), label="Revisions", interactive=False, elem_id="data-revisions"
        )
        saw = gr.Dataframe(
            pd.DataFrame(columns=SAW_COLUMNS), label="Versions that saw it", interactive=False, elem_id="data-saw"
        )
        runs = gr.Dataframe(
            pd.DataFrame(columns=RUN_COLUMNS),
            label="Exposures (optimizer steps per run)",
            interactive=False,
            elem_id="data-exposures",
        )

    def show_documents(q, c, k, p):
        try:
            return documents_frame(ledger, q, c, k, p)
        except LetheError as error:
            raise gr.Error(error_text(error)) from None

    def open_document(identifier):
        if not identifier:
            raise gr.Error("Type a document id, or click a row above.")
        try:
            doc = ledger.document(int(identifier))
        except LetheError as error:
            raise gr.Error(error_text(error)) from None
        choices = impact_choices(ledger, doc.id)
        chosen = choices[-1][1] if choices else None
        saw_frame, runs_frame = exposures_frames(ledger, doc.id)
        return (
            document_header(ledger, doc),
            impact_view(ctx, doc.id, chosen),
            gr.update(choices=choices, value=chosen),
            revisions_frame(ledger, doc.id),
            saw_frame,
            runs_frame,
        )

    def pick_row(frame, event: gr.SelectData):
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        return int(frame.iloc[row]["id"])

    def highlight(identifier, impact_id):
        if not identifier:
            return gr.update()
        return impact_view(ctx, int(identifier), impact_id)

    browse_inputs = [query, collection, kind, page]
    browse.click(show_documents, browse_inputs, [documents])
    query.submit(show_documents, browse_inputs, [documents])
    opened = [header, text, impact, revisions, saw, runs]
    documents.select(pick_row, [documents], [doc_id]).then(open_document, [doc_id], opened)
    open_doc.click(open_document, [doc_id], opened)
    doc_id.submit(open_document, [doc_id], opened)
    impact.input(highlight, [doc_id, impact], [text])

    def on_load(q, c, k, p):
        collections = [""] + [col.name for col, _ in ledger.collections()]
        return gr.update(choices=collections), show_documents(q, c, k, p)

    return Loader(on_load, browse_inputs, [collection, documents])
