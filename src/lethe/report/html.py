"""The workspace report: one self-contained HTML file (plots inlined as base64 PNG, inline CSS,
no scripts, fonts or links to fetch), readable offline and safe to mail around.

Sections: model versions; forget requests with their audits (before / after bars, membership
ROC curves, truth-ratio histograms, sample answers); the loss curves of unlearning runs;
stored evaluations per benchmark; and benchmark results found under `<home>/bench/*/`
(`results.json` + their PNG plots).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from lethe.eval.audit import REDACTED
from lethe.eval.audit_render import describe_tokenizer_leak
from lethe.report import plots
from lethe.report.robustness import robustness_panel
from lethe.report.tuning import tuning_section

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em;line-height:1.4}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}h3{margin-top:1.5em}
.scroll{max-width:100%;overflow-x:auto;margin:.5em 0 1em}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
td{max-width:32em;overflow-wrap:anywhere}th{white-space:nowrap}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #ddd;margin:.3em 0}
.muted{color:#777}.tainted{color:#b00}.fig{display:inline-block;margin-right:1em;vertical-align:top}
code{background:#f4f4f4;padding:0 3px}
"""
AUDIT_METRICS = (
    "loss",
    "token_accuracy",
    "exact_match",
    "rouge_l_recall",
    "answer_probability",
    "truth_ratio_stat",
    "mia_auc_loss",
    "exact_memorisation",
    "verbatim_rouge",
)


def _cell(value: Any) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else ''}</td>"
    if isinstance(value, (int, float)):
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f'<td class="num">{escape(text)}</td>'
    if isinstance(value, datetime):
        return f"<td>{escape(value.strftime('%Y-%m-%d %H:%M:%S'))}</td>"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    if len(text) > 160:
        text = text[:157] + "…"
    return f"<td>{escape(text)}</td>"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An HTML table of dict rows (values escaped; numbers right-aligned)."""
    if not rows:
        return '<p class="muted">none</p>'
    columns = list(columns or dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows)
    # the box scrolls, not the page: a wide table never makes the report wider than the window
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def image(png: bytes, alt: str) -> str:
    """An inline <img> of PNG bytes."""
    data = base64.b64encode(png).decode("ascii")
    return f'<div class="fig"><img alt="{escape(alt)}" src="data:image/png;base64,{data}"></div>'


def figure(fig: Any, alt: str) -> str:
    return image(plots.png_bytes(fig), alt)


# ----------------------------------------------------------------------------------- sections


def _versions(ledger: Any) -> str:
    aliases: dict[int, list[str]] = {}
    for alias, version_id in ledger.aliases().items():
        aliases.setdefault(version_id, []).append(alias)
    rows = [
        {
            "id": v.id,
            "name": v.name,
            "kind": v.kind,
            "status": v.status,
            "parent": v.parent_id,
            "aliases": ", ".join(sorted(aliases.get(v.id, []))),
            "created": v.created_at,
            "tainted": v.taint_reason if v.tainted_at else None,
            "purged": v.purged_at,
            "method": (v.meta or {}).get("method"),
        }
        for v in ledger.list_versions(include_discarded=True)
    ]
    return "<h2>Model versions</h2>" + table(rows)


def _requests(ledger: Any) -> tuple[str, list[Any]]:
    requests = list(reversed(ledger.forget_requests(limit=1000)))
    rows = []
    for r in requests:
        pairs = ledger.forget_request_documents(r.id)
        rows.append(
            {
                "id": r.id,
                "status": r.status,
                "method": r.method,
                "reason": r.reason,
                "documents": len(pairs),
                "trained": sum(1 for _, t in pairs if t),
                "base": r.base_version_id,
                "result": r.result_version_id,
                "created": r.created_at,
                "finished": r.finished_at,
                "error": r.error,
            }
        )
    return "<h2>Forget requests</h2>" + table(rows), requests


def _pick(metrics: dict[str, Any], label: str, split: str) -> dict[str, float] | None:
    if label not in metrics:
        return None
    values = metrics[label].get(split, {})
    return {m: values[m] for m in AUDIT_METRICS if m in values}


def _audit_section(request: Any) -> str:
    audit = request.audit or {}
    if "metrics" not in audit:
        return ""
    parts = [f"<h3>Audit of forget request {request.id} ({escape(str(request.method))})</h3>"]
    metrics = audit["metrics"]
    for split in ("forget", "retain"):
        if split not in metrics.get("after", {}):
            continue
        parts.append(
            figure(
                plots.before_after(
                    _pick(metrics, "before", split),
                    _pick(metrics, "after", split),
                    _pick(metrics, "reference", split),
                    title=f"request {request.id}: {split} set",
                ),
                f"before/after bars, {split}",
            )
        )
    roc = (audit.get("mia") or {}).get("roc") or {}
    if roc:
        parts.append(figure(plots.roc(roc, title=f"request {request.id}: MIA (LOSS) forget vs holdout"), "ROC"))
    ratios = {k: v for k, v in (audit.get("truth_ratios") or {}).items() if v}
    if ratios:
        parts.append(
            figure(
                plots.truth_ratio_histograms(ratios, title=f"request {request.id}: forget truth ratios"), "truth ratios"
            )
        )
    comparison = audit.get("reference_comparison")
    if comparison:
        parts.append(
            f"<p>Against the exact reference: mean |Δ| over headline metrics "
            f"<b>{comparison.get('mean_abs_distance', float('nan')):.4g}</b>; forget quality "
            f"(KS p-value, after vs exact) <b>{comparison.get('forget_quality_vs_reference', float('nan')):.4g}"
            "</b>.</p>"
        )
    parts.append(robustness_panel(audit.get("robustness"), title=f"request {request.id}: robustness"))
    if audit.get("tokenizer"):
        parts.append(f"<p>Tokenizer: {escape(describe_tokenizer_leak(audit['tokenizer']))}.</p>")
    samples = audit.get("samples") or []
    if samples and all(_erased(sample) for sample in samples):
        parts.append(f'<p class="muted">{len(samples)} sample answers: erased with the documents they quote.</p>')
    elif samples:
        labels = [k for k in ("before", "after", "reference") if k in samples[0]]
        parts.append(table(samples, ["question", "answer", *labels]))
    return "".join(parts)


def _erased(sample: dict[str, Any]) -> bool:
    """A sample row whose every text is the erasure marker (nothing left to show)."""
    texts = [v for v in sample.values() if isinstance(v, str)]
    return bool(texts) and all(v.strip() in ("", REDACTED) for v in texts)


def _training_curves(ledger: Any) -> str:
    """Per training run (train, update, replay), the loss per epoch of every slice it trained."""
    runs: dict[str, list[dict]] = {}
    names = {lineage.id: lineage.name for lineage in ledger.lineages()}
    for version in ledger.list_versions(include_discarded=True):
        meta = version.meta or {}
        if meta.get("epoch_losses") and version.lineage_id is not None:
            label = f"{names.get(version.lineage_id, version.lineage_id)}: run {version.run_id} ({version.kind})"
            runs.setdefault(label, []).append(
                {"slice_index": version.slice_index, "version": version.name, "epoch_losses": meta["epoch_losses"]}
            )
    if not runs:
        return ""
    return "<h2>Training</h2>" + figure(plots.training_curves(runs), "training loss curves")


def _loss_curves(ledger: Any, requests: Iterable[Any]) -> str:
    runs: dict[str, list] = {}
    for run in reversed(ledger.runs(kind="unlearn", limit=50)):
        history = (run.metrics or {}).get("history")
        if isinstance(history, list) and any(isinstance(h, dict) and "step" in h for h in history):
            method = (run.config or {}).get("method", "?")
            runs[f"run {run.id} ({method})"] = history
    if not runs:
        for request in requests:
            history = (request.audit or {}).get("history")
            if history:
                runs[f"request {request.id} ({request.method})"] = history
    if not runs:
        return ""
    return "<h2>Unlearning runs</h2>" + figure(plots.loss_curves(runs), "loss curves")


def _evaluations(ledger: Any) -> str:
    latest: dict[tuple, Any] = {}
    for row in ledger.evaluations():
        latest[(row.benchmark, row.version_id, row.request_id, row.split, row.metric)] = row
    if not latest:
        return "<h2>Evaluations</h2>" + table([])
    names = {v.id: v.name for v in ledger.list_versions(include_discarded=True)}
    parts = ["<h2>Evaluations</h2>"]
    for benchmark in sorted({key[0] for key in latest}):
        grouped: dict[tuple, dict[str, Any]] = {}
        for (bench, version_id, request_id, split, metric), row in latest.items():
            if bench != benchmark:
                continue
            entry = grouped.setdefault(
                (version_id, request_id, split),
                {"version": names.get(version_id, version_id), "request": request_id, "split": split},
            )
            entry[metric] = row.value
        metrics = list(dict.fromkeys(m for key in latest if key[0] == benchmark for m in [key[4]]))
        preferred = [m for m in AUDIT_METRICS if m in metrics] + [m for m in metrics if m not in AUDIT_METRICS]
        parts.append(
            f"<h3>{escape(benchmark)}</h3>"
            + table(list(grouped.values()), ["version", "request", "split", *preferred[:14]])
        )
    return "".join(parts)


def _benchmarks(home: Path) -> str:
    parts = []
    for results in sorted((home / "bench").glob("*/results.json")):
        try:
            data = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        title = f"{data.get('benchmark', results.parent.name)} — {results.parent.name}"
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(
            f'<p class="muted">configuration hash <code>{escape(str(data.get("config_hash", "?")))}</code>'
            f", code {escape(str(data.get('code_version', '?')))}, finished "
            f"{escape(str(data.get('finished_at', '?')))}</p>"
        )
        parts.append(table(data.get("rows") or []))
        if data.get("timings"):
            parts.append(table([{"step": k, "seconds": v} for k, v in data["timings"].items()]))
        for png in sorted(results.parent.glob("*.png")):
            parts.append(image(png.read_bytes(), png.stem))
    return ("<h2>Benchmarks</h2>" + "".join(parts)) if parts else ""


def render_report(workspace: Any) -> str:
    """The HTML text of the workspace report."""
    ledger = workspace.ledger
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    counts = ledger.count_documents()
    requests_html, requests = _requests(ledger)
    body = [
        "<h1>lethe report</h1>",
        (
            f'<p class="muted">workspace {escape(str(workspace.home))} · generated {generated} · documents '
            f"{escape(', '.join(f'{k}: {v}' for k, v in sorted(counts.items())) or 'none')}</p>"
        ),
        _versions(ledger),
        requests_html,
        _training_curves(ledger),
        "".join(_audit_section(r) for r in requests),
        _loss_curves(ledger, requests),
        _evaluations(ledger),
        tuning_section(ledger),
        _benchmarks(Path(workspace.home)),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>lethe report</title>'
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )


def write_report(workspace: Any, out_dir: str | Path) -> Path:
    """Write `report.html` into `out_dir` (created if needed); returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text(render_report(workspace), encoding="utf-8")
    tmp.replace(path)
    return path
