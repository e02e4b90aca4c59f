"""Turning a forget job's ledger records into what the Forget tab shows: curves, tables, text.

Pure functions of job progress records and audits (JSON from the ledger), so they are cheap
to call on every timer tick and easy to test without a browser.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from lethe.eval.audit import HEADLINE

FRAME_COLUMNS = ["step", "value", "series"]


def _frame(rows: list[dict]) -> pd.DataFrame:
    # Typed even when empty: the plots take each column's kind (number or category) from its
    # dtype, and an untyped empty frame would turn the axes into categories.
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    return frame.astype({"step": "int64", "value": "float64", "series": "str"})


def progress_frames(progress: list[dict] | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(step losses, quick forget/retain NLL, quick forget/retain accuracy) as long frames."""
    losses, nll, accuracy = [], [], []
    for record in progress or []:
        kind = record.get("kind")
        if kind == "unlearn":
            step = record.get("step", 0)
            for name, value in (record.get("losses") or {}).items():
                if isinstance(value, (int, float)):
                    losses.append({"step": step, "value": float(value), "series": name})
            metrics = record.get("metrics") or {}
            for name in ("forget_loss", "retain_loss"):
                if isinstance(metrics.get(name), (int, float)):
                    nll.append({"step": step, "value": float(metrics[name]), "series": name})
            for name in ("forget_accuracy", "retain_accuracy"):
                if isinstance(metrics.get(name), (int, float)):
                    accuracy.append({"step": step, "value": float(metrics[name]), "series": name})
        elif kind == "step" and isinstance(record.get("loss"), (int, float)):
            # exact replay: training steps of each replayed slice
            losses.append(
                {
                    "step": record.get("global_step") or record.get("step", 0),
                    "value": float(record["loss"]),
                    "series": f"replay slice {record.get('slice_index', '?')}",
                }
            )
    return _frame(losses), _frame(nll), _frame(accuracy)


def last_step(progress: list[dict] | None) -> dict | None:
    steps = [r for r in progress or [] if r.get("kind") in ("unlearn", "step")]
    return steps[-1] if steps else None


def job_label(job, request=None) -> str:
    """A job picker entry; its status is left to the status line, which is kept fresh."""
    method = f" · {request.method}" if request is not None else ""
    rid = (job.params or {}).get("request_id")
    started = job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else ""
    return f"job {job.id} · request {rid}{method} · {started}"


def status_markdown(job, request) -> str:
    """One paragraph: what the job and its forget request are doing."""
    lines = [
        f"**Job {job.id}: {job.status}**"
        + (" (cancel requested)" if job.cancel_requested and job.status not in ("cancelled",) else "")
    ]
    if job.status == "queued":
        lines.append("waiting for the server's job worker…")
    step = last_step(job.progress)
    if step is not None:
        done, total = step.get("step", 0), step.get("steps_total") or 0
        where = f" of slice {step['slice_index']}" if step.get("kind") == "step" else ""
        lines.append(f"step {done}/{total}{where}")
        metrics = step.get("metrics") or {}
        if metrics:
            lines.append(
                "forget NLL {:.3f}, accuracy {:.3f} · retain NLL {:.3f}, accuracy {:.3f}".format(
                    metrics.get("forget_loss", float("nan")),
                    metrics.get("forget_accuracy", float("nan")),
                    metrics.get("retain_loss", float("nan")),
                    metrics.get("retain_accuracy", float("nan")),
                )
            )
    if request is not None:
        lines.append(f"forget request {request.id} ({request.method}): **{request.status}**")
        lines.extend(mention_lines((request.config or {}).get("mentions") or []))
        if request.status == "evaluated":
            lines.append("The candidate version is ready: publish it, or discard it.")
        if request.status == "running" and job.status == "succeeded":
            lines.append("evaluating…")
    if job.status == "running" and step is not None and step.get("step") == step.get("steps_total"):
        lines.append("unlearning done; evaluating before and after…")
    if job.error:
        lines.append(f"error: `{job.error}`")
    elif request is not None and request.error:
        lines.append(f"note: {request.error}")
    return "  \n".join(lines)


def mention_lines(mentions: list[dict]) -> list[str]:
    """The request's mentions (other documents naming the subject) and what is done with each."""
    if not mentions:
        return []
    lines = [f"{len(mentions)} other documents mention the subject:"]
    for m in mentions[:20]:
        why = f" ({m['reason']})" if m.get("reason") and m.get("decision") == "keep" else ""
        lines.append(f"- `{m['key']}` ({'/'.join(m.get('fields') or [])}): {m['decision']}{why}")
    if len(mentions) > 20:
        lines.append(f"- … and {len(mentions) - 20} more")
    return lines


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return value


def audit_table(audit: dict | None) -> pd.DataFrame:
    """Before / after (/ exact reference) of the headline metrics on every split."""
    columns = ["split", "metric", "before", "after", "change"]
    if not audit or "metrics" not in audit:
        return pd.DataFrame(columns=columns)
    metrics = audit["metrics"]
    has_reference = "reference" in metrics
    if has_reference:
        columns.insert(4, "exact reference")
    rows = []
    for split, values in metrics.get("after", {}).items():
        for metric in [m for m in HEADLINE if m in values]:
            before = metrics.get("before", {}).get(split, {}).get(metric)
            after = values.get(metric)
            row = [split, metric, _fmt(before), _fmt(after)]
            if has_reference:
                row.append(_fmt(metrics["reference"].get(split, {}).get(metric)))
            change = (audit.get("changes") or {}).get(split, {}).get(metric)
            row.append(_fmt(change))
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def audit_markdown(audit: dict | None) -> str:
    """The audit beyond the table: versions, MIA, agreement with exact replay, samples."""
    if not audit:
        return "*No audit yet (it appears when the job has evaluated the candidate).*"
    if "metrics" not in audit:
        return f"*{audit.get('note', 'no audit')}*"
    versions = audit.get("versions") or {}
    name = lambda key: (versions.get(key) or {}).get("name", "—")
    lines = [
        f"**Audit** · {name('before')} → {name('after')} · "
        + (
            f"exact reference {name('reference')}"
            if versions.get("reference")
            else "exact replay (this is the reference)"
            if audit.get("exact")
            else "no exact reference to compare with"
        )
    ]
    comparison = audit.get("reference_comparison") or {}
    if comparison:
        lines.append(
            f"- distance to exact replay (mean |Δ| of headline metrics): "
            f"{comparison.get('mean_abs_distance')}; forget quality (KS p vs exact): "
            f"{comparison.get('forget_quality_vs_reference')}"
        )
    aucs = (audit.get("mia") or {}).get("aucs") or {}
    for label, values in aucs.items():
        if values:
            shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items() if isinstance(v, (int, float)))
            lines.append(f"- membership inference AUC ({label}; 0.5 = chance): {shown}")
    if audit.get("tokenizer"):
        from lethe.eval.audit_render import describe_tokenizer_leak

        lines.append(f"- tokenizer: {html.escape(describe_tokenizer_leak(audit['tokenizer']))}")
    samples = audit.get("samples") or []
    if samples:
        labels = [k for k in ("before", "after", "reference") if k in samples[0]]
        lines.append("\n| question | answer | " + " | ".join(labels) + " |")
        lines.append("|---" * (2 + len(labels)) + "|")
        for row in samples:
            cells = [row.get("question"), row.get("answer")] + [row.get(k) for k in labels]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if audit.get("seconds") is not None:
        lines.append(f"\n*audit computed in {audit['seconds']:.1f} s*")
    return "\n".join(lines)


def _cell(value: Any, width: int = 90) -> str:
    text = " ".join(str(value or "").split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return html.escape(text).replace("|", "\\|")
