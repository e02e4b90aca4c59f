"""The robustness panel: the forget set under each attack, candidate vs exact vs target.

One grouped bar chart (a group per probe variant, a bar per model, the headline metric of
each probe: higher means more of the forget set came back) and the table behind it. The
exact model's bar is the range a candidate should stay in; the target's is what the
attack gets out of a model that never forgot.
"""

from __future__ import annotations

from html import escape
from typing import Any

from matplotlib.figure import Figure

from lethe.report import plots

ROLE_NAMES = {"after": "candidate", "reference": "exact", "before": "target"}


def _series_name(label: str, roles: dict[str, str]) -> str:
    return roles.get(label) or ROLE_NAMES.get(label) or label


def robustness_series(result: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Model name -> {"<probe>/<variant> (<metric>)": headline value}, target and exact last."""
    from lethe.eval.robustness.runner import headline_rows

    roles = result.get("roles") or {}
    labels = list(result.get("labels") or [])
    series: dict[str, dict[str, float | None]] = {}
    for label in labels:
        series[_series_name(label, roles)] = {}
    for row in headline_rows(result):
        group = f"{row['probe']}/{row['variant']}\n({row['metric']})"
        for label in labels:
            series[_series_name(label, roles)][group] = row.get(label)
    order = sorted(series, key=lambda name: (name in ("exact", "target"), name == "target"))
    return {name: series[name] for name in order}


def robustness_figure(result: dict[str, Any], *, title: str = "Forget set under attack") -> Figure:
    """The grouped bar chart of a robustness result (`run_robustness`'s shape)."""
    return plots.metric_bars(robustness_series(result), title=f"{title} (higher = more recovered)")


def robustness_panel(result: dict[str, Any] | None, *, title: str = "Robustness") -> str:
    """HTML: the chart and its table, or nothing when there is no result."""
    if not result or not result.get("probes"):
        return ""
    from lethe.report.html import figure, table

    series = robustness_series(result)
    groups = list(dict.fromkeys(g for values in series.values() for g in values))
    rows = [
        {"probe / variant (metric)": group.replace("\n", " "), **{name: series[name].get(group) for name in series}}
        for group in groups
    ]
    return (
        f"<h4>{escape(title)}</h4>"
        + figure(robustness_figure(result, title=title), "robustness: candidate vs exact vs target")
        + table(rows)
    )


def robustness_markdown(result: dict[str, Any] | None, fmt: Any = None, *, heading: str = "## ") -> list[str]:
    """Markdown lines: a heading and a table of each probe variant's headline metric per model."""
    if not result or not result.get("probes"):
        return []
    fmt = fmt or (lambda value: "" if value is None else f"{value:.3f}")
    series = robustness_series(result)
    groups = list(dict.fromkeys(g for values in series.values() for g in values))
    lines = [
        f"{heading}Robustness (the forget set under attack; higher = more of it back)",
        "",
        "| probe / variant (metric) | " + " | ".join(series) + " |",
        "|---|" + "---:|" * len(series),
    ]
    for group in groups:
        cells = [fmt(series[name].get(group)) for name in series]
        lines.append(f"| {group.replace(chr(10), ' ')} | " + " | ".join(cells) + " |")
    return [*lines, ""]
