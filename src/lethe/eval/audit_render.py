"""An audit in the terminal: the before/after table, the exact reference, MIA, samples."""

from __future__ import annotations

from typing import Any

from lethe.eval.audit import HEADLINE, REDACTED


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if (value != 0 and abs(value) < 1e-3) else f"{value:.3f}"
    return str(value)


def _short(text: Any, width: int = 70) -> str:
    text = "" if text is None else " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_tokenizer_leak(leak: dict[str, Any]) -> str:
    """One line on what a tokenizer keeps of forgotten documents (`tokenizer_leak`'s record)."""
    if leak.get("saw") is None:
        return leak.get("note", "its training data is not on record")
    if not leak["saw"]:
        return f"{leak['tokenizer']} never learned from these documents"
    if not leak.get("exclusive_merges"):
        return (
            f"{leak['tokenizer']} learned from {leak['saw']} of these {leak['forgotten']} documents, but none "
            "of its merges is used by them alone (`--method exact --retokenize` removes even their counts)"
        )
    shown = [e for e in leak.get("examples") or [] if e != REDACTED]
    pieces = f" (e.g. {', '.join(repr(e) for e in shown[:5])})" if shown else ""
    return (
        f"{leak['tokenizer']} learned from {leak['saw']} of these {leak['forgotten']} documents; "
        f"{leak['exclusive_merges']} of its merges are used by them alone{pieces}; "
        "`--method exact --retokenize` retrains it without them"
    )


def render_audit(audit: dict[str, Any]) -> Any:
    """A rich renderable of an audit: header, metrics before / after / reference, MIA, samples."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if "metrics" not in audit:
        return Text(f"audit: {audit}")
    request = audit.get("request") or {}
    versions = audit.get("versions") or {}
    name = lambda key: (versions.get(key) or {}).get("name", "—")
    header = Text.assemble(
        (f"forget request {request.get('id', '?')}", "bold"),
        f"  method {request.get('method', '?')}  ·  {request.get('forget_documents', '?')} documents  ·  "
        f"{name('before')} → {name('after')}",
        f"  ·  exact reference {name('reference')}"
        if versions.get("reference")
        else ("  ·  exact replay (this is the reference)" if audit.get("exact") else "  ·  no exact reference"),
    )
    parts: list[Any] = [header]
    boundary = audit.get("base_boundary")
    if boundary:  # what the ledger cannot vouch for comes first
        parts.append(Text(f"base: {boundary['statement']}", style="yellow"))
    metrics = audit["metrics"]
    labels = [label for label in ("before", "after", "reference") if label in metrics]
    table = Table(title="metrics", show_lines=False)
    table.add_column("split")
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    table.add_column("Δ after−before", justify="right")
    for split, values in metrics["after"].items():
        names = [m for m in HEADLINE if m in values] + [
            m for m in values if m not in HEADLINE and not m.endswith("items")
        ]
        for metric in names:
            change = (audit.get("changes") or {}).get(split, {}).get(metric)
            table.add_row(
                split, metric, *(_fmt(metrics[label].get(split, {}).get(metric)) for label in labels), _fmt(change)
            )
        table.add_section()
    parts.append(table)
    comparison = audit.get("reference_comparison")
    if comparison:
        parts.append(
            Text(
                f"vs exact reference: mean |Δ| over headline metrics {_fmt(comparison.get('mean_abs_distance'))}; "
                f"forget quality (KS p, after vs exact) {_fmt(comparison.get('forget_quality_vs_reference'))}"
            )
        )
    aucs = (audit.get("mia") or {}).get("aucs") or {}
    if any(aucs.values()):
        mia_table = Table(title="membership inference AUC, forget vs holdout (0.5 = chance)")
        mia_table.add_column("attack")
        for label in aucs:
            mia_table.add_column(label, justify="right")
        attacks = list(dict.fromkeys(a for values in aucs.values() for a in values))
        for attack in attacks:
            mia_table.add_row(attack, *(_fmt(aucs[label].get(attack)) for label in aucs))
        parts.append(mia_table)
    if audit.get("robustness"):
        parts.append(render_robustness(audit["robustness"]))
    elif audit.get("robustness_note"):
        parts.append(Text(f"robustness: {audit['robustness_note']}"))
    if audit.get("tokenizer"):
        parts.append(Text(f"tokenizer: {describe_tokenizer_leak(audit['tokenizer'])}"))
    samples = audit.get("samples") or []
    if samples:
        sample_table = Table(title="sample questions about the forgotten documents", show_lines=True)
        sample_table.add_column("question / answer")
        for label in labels:
            sample_table.add_column(label)
        for row in samples:
            sample_table.add_row(
                f"{_short(row.get('question'), 60)}\n[dim]{_short(row.get('answer'), 60)}[/]",
                *(_short(row.get(label), 60) for label in labels),
            )
        parts.append(sample_table)
    parts.append(Text(f"computed in {audit.get('seconds', 0):.1f} s", style="dim"))
    return Group(*parts)


def render_robustness(result: dict[str, Any]) -> Any:
    """A rich Table of a robustness result: each probe variant's headline metric per model."""
    from rich.table import Table

    from lethe.eval.robustness.runner import headline_rows

    roles = result.get("roles") or {}
    labels = list(result.get("labels") or [])
    table = Table(title="robustness: the forget set under attack (higher = more of it back)")
    for column in ("probe", "variant", "metric"):
        table.add_column(column)
    for label in labels:
        table.add_column(roles.get(label, label), justify="right")
    for row in headline_rows(result):
        table.add_row(row["probe"], row["variant"], row["metric"], *(_fmt(row.get(label)) for label in labels))
    return table
