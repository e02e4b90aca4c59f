"""The Changelog tab: the ledger's events with filters, the lineage of model versions, and
evaluation results per version as a table and a plot.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import gradio as gr
import pandas as pd

from lethe.serve.ui.common import Loader, UIContext, when

EVENT_COLUMNS = ["time", "kind", "subject", "actor", "details"]
EVALUATION_COLUMNS = ["version", "benchmark", "split", "metric", "value", "request"]
PLOT_COLUMNS = ["bar", "version", "split", "value"]
PREFERRED_METRICS = ("token_accuracy", "rouge_l_recall", "exact_match", "loss")


def _parse_time(text: str | None, field: str) -> datetime | None:
    if not text or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise gr.Error(f"{field}: use a date like 2025-01-31 or 2025-01-31 14:00") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def events_frame(ledger, kind: str | None, since: str | None, until: str | None, limit: int) -> pd.DataFrame:
    events = ledger.events(
        kind=kind or None,
        since=_parse_time(since, "since"),
        until=_parse_time(until, "until"),
        limit=max(1, int(limit or 200)),
    )
    rows = []
    for event in events:
        subject = f"{event.subject_type} {event.subject_id}" if event.subject_type else ""
        details = json.dumps(event.data, default=str, ensure_ascii=False) if event.data else ""
        rows.append([when(event.ts), event.kind, subject, event.actor or "", details[:240]])
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def event_kinds(ledger) -> list[str]:
    """Filter choices: every kind seen recently and its prefix (`run` for `run.started`)."""
    kinds = {e.kind for e in ledger.events(limit=5000)}
    return [""] + sorted(kinds | {k.split(".")[0] for k in kinds})


def lineage_columns(rows: list | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        rows or [], columns=["version", "kind", "state", "parent", "aliases", "slice", "run", "created", "taint reason"]
    )


def lineage(ledger) -> tuple[pd.DataFrame, str]:
    """Every version (discarded too) as a table, and the parent → child tree as text."""
    versions = ledger.list_versions(include_discarded=True)
    by_id = {v.id: v for v in versions}
    aliases: dict[int, list[str]] = {}
    for alias, version_id in ledger.aliases().items():
        aliases.setdefault(version_id, []).append(alias)
    rows = []
    for v in versions:
        state = "purged" if v.purged_at else "tainted" if v.tainted_at else v.status
        parent = by_id[v.parent_id].name if v.parent_id in by_id else ""
        rows.append(
            [
                v.name,
                v.kind,
                state,
                parent,
                ", ".join(sorted(aliases.get(v.id, []))),
                v.slice_index,
                v.run_id,
                when(v.created_at),
                v.taint_reason or "",
            ]
        )
    table = lineage_columns(rows)
    children: dict[int | None, list] = {}
    for v in versions:
        children.setdefault(v.parent_id if v.parent_id in by_id else None, []).append(v)
    lines: list[str] = []

    def walk(parent_id, depth):
        for v in children.get(parent_id, []):
            state = "purged" if v.purged_at else "tainted" if v.tainted_at else v.status
            tags = ", ".join(aliases.get(v.id, []))
            lines.append("    " * depth + f"└─ {v.name} [{v.kind}, {state}]" + (f" ← {tags}" if tags else ""))
            walk(v.id, depth + 1)

    walk(None, 0)
    return table, "```\n" + ("\n".join(lines) or "(no versions yet)") + "\n```"


def evaluations_frame(ledger, version: str | None = None) -> pd.DataFrame:
    names = {v.id: v.name for v in ledger.list_versions(include_discarded=True)}
    version_id = next((i for i, n in names.items() if n == version), None) if version else None
    rows = [
        [names.get(e.version_id, e.version_id), e.benchmark, e.split, e.metric, round(e.value, 4), e.request_id]
        for e in ledger.evaluations(version_id=version_id)
    ]
    return pd.DataFrame(rows, columns=EVALUATION_COLUMNS)


def evaluation_plot(frame: pd.DataFrame, benchmark: str | None, metric: str | None) -> pd.DataFrame:
    """Mean value of one benchmark metric per split and version: one bar each, coloured by
    version and labelled ``split · version`` so that the bars of a split stand together."""
    selected = frame
    if benchmark:
        selected = selected[selected.benchmark == benchmark]
    if metric:
        selected = selected[selected.metric == metric]
    if selected.empty:
        return pd.DataFrame(columns=PLOT_COLUMNS)
    means = selected.groupby(["split", "version"], as_index=False, sort=False)["value"].mean()
    means["version"] = means["version"].astype(str)
    means["bar"] = means["split"] + " · " + means["version"]
    return means[PLOT_COLUMNS]


def build_changelog_tab(ctx: UIContext) -> Loader:
    ledger = ctx.ledger
    with gr.Tab("Events"):
        with gr.Row():
            kind = gr.Dropdown(
                label="Kind (prefix)", choices=[""], value="", allow_custom_value=True, elem_id="changelog-kind"
            )
            since = gr.Textbox(label="Since", placeholder="2025-01-31 or 2025-01-31 14:00")
            until = gr.Textbox(label="Until", placeholder="empty: now")
            limit = gr.Number(label="At most", value=200, precision=0, minimum=1)
            apply = gr.Button("Apply", size="sm", elem_id="changelog-apply")
        events = gr.Dataframe(
            pd.DataFrame(columns=EVENT_COLUMNS),
            label="Events (newest first)",
            interactive=False,
            wrap=True,
            # fixed widths for the short columns, so "actor" is never squeezed into vertical letters
            column_widths=["165px", "190px", "170px", "110px", "auto"],
            max_height=480,
            elem_id="changelog-events",
        )
    with gr.Tab("Versions"):
        tree = gr.Markdown(elem_id="changelog-tree")
        versions = gr.Dataframe(
            lineage_columns(), label="Model versions", interactive=False, wrap=True, elem_id="changelog-versions"
        )
    with gr.Tab("Evaluations"):
        with gr.Row():
            version = gr.Dropdown(label="Version (empty: all)", choices=[""], value="")
            benchmark = gr.Dropdown(label="Benchmark", choices=[], value=None, elem_id="changelog-benchmark")
            metric = gr.Dropdown(label="Metric", choices=[], value=None, elem_id="changelog-metric")
        plot = gr.BarPlot(
            pd.DataFrame(columns=PLOT_COLUMNS),
            x="bar",
            y="value",
            color="version",
            title="Metric per split and version",
            height=300,
            x_title="split · version",
            sort="x",
            elem_id="changelog-plot",
        )
        table = gr.Dataframe(
            pd.DataFrame(columns=EVALUATION_COLUMNS),
            label="Evaluations",
            interactive=False,
            max_height=400,
            elem_id="changelog-evaluations",
        )
    refresh = gr.Button("↻ Refresh", size="sm", elem_id="changelog-refresh")

    def show_events(k, s, u, n):
        return events_frame(ledger, k, s, u, n)

    def show_evaluations(v, b, m):
        frame = evaluations_frame(ledger, v or None)
        everything = frame if not v else evaluations_frame(ledger)
        benchmarks = sorted(set(everything.benchmark))
        b = b if b in benchmarks else ("audit" if "audit" in benchmarks else next(iter(benchmarks), None))
        metrics = sorted(set(everything[everything.benchmark == b].metric))
        preferred = [x for x in PREFERRED_METRICS if x in metrics] + metrics
        m = m if m in metrics else next(iter(preferred), None)
        return (
            frame,
            evaluation_plot(everything, b, m),
            gr.update(choices=benchmarks, value=b),
            gr.update(choices=metrics, value=m),
        )

    def load_all(k, s, u, n, v, b, m):
        table_, tree_ = lineage(ledger)
        names = [""] + [x.name for x in ledger.list_versions(include_discarded=True)]
        return (
            gr.update(choices=event_kinds(ledger)),
            show_events(k, s, u, n),
            tree_,
            table_,
            gr.update(choices=names),
            *show_evaluations(v, b, m),
        )

    filters = [kind, since, until, limit]
    apply.click(show_events, filters, [events])
    kind.change(show_events, filters, [events], show_progress="hidden")
    for picker in (version, benchmark, metric):
        picker.input(show_evaluations, [version, benchmark, metric], [table, plot, benchmark, metric])
    everything_inputs = [*filters, version, benchmark, metric]
    everything_outputs = [kind, events, tree, versions, version, table, plot, benchmark, metric]
    refresh.click(load_all, everything_inputs, everything_outputs)
    return Loader(load_all, everything_inputs, everything_outputs)
