"""The figures of reports and benchmarks (matplotlib `Figure` objects rendered by Agg; no display).

Every function takes plain data (dicts, lists, arrays: what audits and benchmark results store
as JSON) and returns a `Figure`; `png_bytes` and `save_png` turn it into an image. Colours
follow one convention throughout: the original (target) model grey, the retain / exact
reference model green, approximate methods from the tab10 palette.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.figure import (
    Figure,  # figures are built without pyplot: no global state, no display
)

TARGET_COLOUR = "#7f7f7f"
RETAIN_COLOUR = "#2ca02c"
BEFORE_COLOUR = "#9e9e9e"
AFTER_COLOUR = "#1f77b4"
REFERENCE_COLOUR = RETAIN_COLOUR
FQ_FLOOR = 1e-30
"""Forget quality is plotted on a log axis; p-values below this are drawn at this floor."""


def _palette(n: int) -> list:
    if n <= 8:
        cmap = matplotlib.colormaps["tab10"]
        skip = {2, 7}  # green and grey are the retain model's and the target's
        colours = [cmap(i) for i in range(10) if i not in skip]
    else:  # enough distinct colours for a dozen methods
        cmap = matplotlib.colormaps["tab20"]
        skip = {4, 5, 14, 15}
        colours = [cmap(i) for i in range(20) if i not in skip]
    return [colours[i % len(colours)] for i in range(n)]


def _figure(width: float = 6.4, height: float = 4.2) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=110)
    ax = fig.add_subplot(111)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def tradeoff(
    points: Sequence[Mapping[str, Any]],
    *,
    retain: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
    title: str = "Forget quality vs model utility",
    utility_label: str = "model utility (harmonic mean of 9 numbers)",
) -> Figure:
    """Forget quality (log) against model utility, one marker per method.

    `points`: dicts with `method`, `forget_quality`, `model_utility`; `retain` / `target` the
    retain model (forget quality 1 by definition when compared with itself) and the original.
    """
    fig, ax = _figure()
    colours = _palette(len(points))
    shown = False
    for point, colour in zip(points, colours):
        fq, mu = point.get("forget_quality"), point.get("model_utility")
        if fq is None or mu is None:
            continue
        ax.scatter([mu], [max(fq, FQ_FLOOR)], s=60, color=colour, label=point["method"], zorder=3)
        ax.annotate(point["method"], (mu, max(fq, FQ_FLOOR)), textcoords="offset points", xytext=(5, 4), fontsize=8)
        shown = True
    for ref, colour, marker, label in (
        (target, TARGET_COLOUR, "X", "target (original)"),
        (retain, RETAIN_COLOUR, "*", "retain model"),
    ):
        if ref and ref.get("model_utility") is not None:
            fq = ref.get("forget_quality", 1.0 if ref is retain else None)
            if fq is None:
                continue
            ax.scatter(
                [ref["model_utility"]],
                [max(fq, FQ_FLOOR)],
                s=180 if marker == "*" else 90,
                marker=marker,
                color=colour,
                edgecolor="black",
                linewidth=0.6,
                label=label,
                zorder=4,
            )
            shown = True
    if not shown:
        _empty(ax, "no forget quality / model utility to plot")
        return fig
    ax.set_yscale("log")
    ax.axhline(0.05, color="#d62728", linestyle=":", linewidth=1, label="p = 0.05")
    ax.set_xlabel(utility_label)
    ax.set_ylabel("forget quality (KS p-value, log)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def before_after(
    before: Mapping[str, float],
    after: Mapping[str, float],
    reference: Mapping[str, float] | None = None,
    *,
    title: str = "Before and after",
    labels: tuple[str, str, str] = ("before", "after", "exact reference"),
) -> Figure:
    """Grouped bars per metric: before, after and (if given) the exact reference."""
    series = {labels[0]: before, labels[1]: after}
    colours = [BEFORE_COLOUR, AFTER_COLOUR]
    if reference:
        series[labels[2]] = reference
        colours.append(REFERENCE_COLOUR)
    return metric_bars(series, title=title, colours=colours)


def metric_bars(
    series: Mapping[str, Mapping[str, float | None]], *, title: str = "Metrics", colours: Sequence[Any] | None = None
) -> Figure:
    """Grouped bars: one group per metric, one bar per series (label -> {metric: value}).

    Losses (unbounded) get their own panel on the right so that they do not flatten the
    metrics that live in [0, 1].
    """
    labels = list(series)
    metrics = list(dict.fromkeys(m for values in series.values() for m, v in values.items() if v is not None))
    losses = [m for m in metrics if "loss" in m and "auc" not in m]
    bounded = [m for m in metrics if m not in losses]
    width_in = max(6.4, (0.25 * len(labels) + 0.35) * len(metrics) + 2.5)
    fig = Figure(figsize=(min(width_in, 16), 4.4), dpi=110)
    if not metrics:
        ax = fig.add_subplot(111)
        _empty(ax, "no metrics to compare")
        return fig
    colours = list(colours) if colours else _series_colours(labels)
    groups = [g for g in (bounded, losses) if g]
    grid = fig.add_gridspec(1, len(groups), width_ratios=[max(1, len(g)) for g in groups])
    for position, group in enumerate(groups):
        ax = fig.add_subplot(grid[0, position])
        ax.grid(True, alpha=0.3, axis="y")
        width = 0.8 / len(labels)
        x = np.arange(len(group))
        for offset, (label, colour) in enumerate(zip(labels, colours)):
            values = series[label]
            heights = [values.get(m) if values.get(m) is not None else np.nan for m in group]
            ax.bar(x + (offset - (len(labels) - 1) / 2) * width, heights, width, label=label, color=colour)
        ax.set_xticks(x)
        ax.set_xticklabels(group, rotation=35, ha="right", fontsize=8)
        if group is bounded:
            ax.set_ylim(0, 1.28)  # headroom for the legend above bars that reach 1
            ax.set_yticks(np.linspace(0, 1, 6))
            ax.set_title(title)
            ax.legend(fontsize=7, loc="upper center", ncol=min(len(labels), 5))
        else:
            # log scale: a memorised 0.005 and an unlearned 6.75 are both visible side by side
            finite = [v for label in labels for m in group if (v := series[label].get(m)) is not None and v > 0]
            if finite:
                ax.set_yscale("log")
                ax.set_ylim(min(finite) / 2, max(finite) * 2)
            ax.set_title("NLL (nats/token, log scale)", fontsize=9)
            if not bounded:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


REFERENCE_LABELS = frozenset({"retain", "retain model", "reference", "exact reference", "exact replay", "exact"})
ORIGINAL_LABELS = frozenset({"target", "target (original)", "before", "original"})


def _role_colour(label: str) -> Any:
    """Green for the retain / exact reference model, grey for the original, else None."""
    lowered = label.lower().split(" (")[0].strip()
    if lowered in REFERENCE_LABELS or label.lower() in REFERENCE_LABELS:
        return RETAIN_COLOUR
    if lowered in ORIGINAL_LABELS or label.lower() in ORIGINAL_LABELS:
        return TARGET_COLOUR
    return None


def _series_colours(labels: Sequence[str]) -> list:
    """Target grey, retain / reference green, the rest from the palette."""
    palette = iter(_palette(len(labels)))
    return [_role_colour(label) or next(palette) for label in labels]


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for record in history:
        value = (record.get("losses") or {}).get(key) if key != "metrics" else None
        if value is not None and math.isfinite(value):
            steps.append(int(record.get("step", len(steps) + 1)))
            values.append(float(value))
    return steps, values


def _metric_series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for record in history:
        metrics = record.get("metrics") or {}
        value = metrics.get(key)
        if value is not None and math.isfinite(value):
            steps.append(int(record.get("step", 0)))
            values.append(float(value))
    return steps, values


def loss_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str = "Unlearning runs") -> Figure:
    """Per run (label -> progress records `{step, losses: {loss, ...}, metrics: {...}}`): the
    training loss per step (left) and the forget / retain NLL of the quick metrics (right)."""
    fig = Figure(figsize=(11, 4.0), dpi=110)
    left, right = fig.add_subplot(121), fig.add_subplot(122)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    colours = _palette(len(runs))
    plotted_left = plotted_right = False
    for (label, history), colour in zip(runs.items(), colours):
        steps, values = _series(history, "loss")
        if steps:
            left.plot(steps, values, color=colour, label=label, linewidth=1.2)
            plotted_left = True
        for key, style in (("forget_loss", "-"), ("retain_loss", "--")):
            steps, values = _metric_series(history, key)
            if steps:
                right.plot(
                    steps, values, style, color=colour, marker="o", markersize=3, label=f"{label} {key.split('_')[0]}"
                )
                plotted_right = True
    if plotted_left:
        left.set_xlabel("step")
        left.set_ylabel("training loss")
        left.set_title(f"{title}: loss per step")
        left.legend(fontsize=7)
    else:
        _empty(left, "no step losses recorded")
    if plotted_right:
        right.set_xlabel("step")
        right.set_ylabel("NLL per answer token")
        right.set_title("forget (solid) and retain (dashed) NLL")
        right.legend(fontsize=7)
    else:
        _empty(right, "no quick metrics recorded")
    fig.tight_layout()
    return fig


def training_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str = "Training") -> Figure:
    """Per training run (label -> its slices `{slice_index, version, epoch_losses}`): the mean
    training loss of each epoch, placed along the lineage's slices (slice k spans k to k+1), so
    a replay lies over the slices it retrained; each slice's end is marked with its version."""
    fig, ax = _figure(11, 4.0)
    ax.grid(True, alpha=0.3)
    plotted = False
    for (label, slices), colour in zip(runs.items(), _palette(len(runs))):
        xs_all, ys_all = [], []
        for sl in slices:
            losses = [v for v in sl.get("epoch_losses") or [] if v is not None and math.isfinite(v) and v > 0]
            if not losses:
                continue
            start = int(sl.get("slice_index") or 0)
            xs = [start + (i + 1) / len(losses) for i in range(len(losses))]
            xs_all += xs
            ys_all += losses
            ax.annotate(
                str(sl.get("version", "")), (xs[-1], losses[-1]), fontsize=7, xytext=(2, 4), textcoords="offset points"
            )
        if xs_all:
            ax.plot(xs_all, ys_all, color=colour, marker="o", markersize=2.5, linewidth=1.2, label=label)
            plotted = True
    if not plotted:
        _empty(ax, "no training losses recorded")
        return fig
    ax.set_yscale("log")
    # plain numbers on the log axis (0.05, 0.1, 1, not 5×10⁻²), and the slices' boundaries on x
    plain = ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("slice (epochs spread across each)")
    ax.set_ylabel("mean loss per answer token (log)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def roc(curves: Mapping[str, Any], *, title: str = "Membership inference: forget vs holdout") -> Figure:
    """ROC curves (label -> object or dict with `fpr`, `tpr`, `auc`) with the chance diagonal."""
    fig, ax = _figure(5.2, 4.6)
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1, label="chance")
    colours = _series_colours(list(curves))
    for (label, curve), colour in zip(curves.items(), colours):
        get = curve.get if isinstance(curve, Mapping) else lambda k, c=curve: getattr(c, k)
        dashed = colour == RETAIN_COLOUR  # a reference drawn over an identical curve stays visible
        ax.plot(
            get("fpr"),
            get("tpr"),
            color=colour,
            linewidth=2.2 if dashed else 1.5,
            linestyle="--" if dashed else "-",
            label=f"{label} (AUC {get('auc'):.2f})",
            drawstyle="steps-post",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate (holdout flagged)")
    ax.set_ylabel("true positive rate (forget set flagged)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def truth_ratio_histograms(ratios: Mapping[str, Sequence[float]], *, title: str = "Forget-set truth ratios") -> Figure:
    """Histograms of log10 R (R = P(perturbed) / P(paraphrased)) per model, shared bins.

    Left of 0 the model prefers the true (paraphrased) answer; a model that never learned the
    forget set sits near 0. Forget quality compares these distributions (KS test).
    """
    logs = {
        label: np.log10(np.clip(np.asarray(values, dtype=float), 1e-12, None))
        for label, values in ratios.items()
        if len(values)
    }
    if len(logs) > 4:
        return _truth_ratio_grid(logs, title)
    fig, ax = _figure()
    if not logs:
        _empty(ax, "no truth ratios")
        return fig
    everything = np.concatenate(list(logs.values()))
    low, high = float(everything.min()), float(everything.max())
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, 25)
    colours = _series_colours(list(logs))
    for (label, values), colour in zip(logs.items(), colours):
        if colour == RETAIN_COLOUR:  # the reference as an outline, so what lies under it shows
            ax.hist(values, bins=bins, histtype="step", color=colour, linewidth=2.2, label=f"{label} (n={len(values)})")
        else:
            ax.hist(
                values,
                bins=bins,
                alpha=0.45,
                color=colour,
                label=f"{label} (n={len(values)})",
                edgecolor=colour,
                linewidth=0.8,
            )
    ax.axvline(0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("log10 truth ratio  (< 0: prefers the true answer)")
    ax.set_ylabel("items")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _truth_ratio_grid(logs: Mapping[str, np.ndarray], title: str) -> Figure:
    """Many models: one small panel each, with the reference (green outline) and the original
    (grey) drawn in every panel for comparison."""
    reference = next((label for label in logs if _role_colour(label) == RETAIN_COLOUR), None)
    original = next((label for label in logs if _role_colour(label) == TARGET_COLOUR), None)
    others = [label for label in logs if label not in (reference, original)]
    everything = np.concatenate(list(logs.values()))
    low, high = np.percentile(everything, [0.5, 99.5])
    bins = np.linspace(float(low) - 1e-6, float(high) + 1e-6, 25)
    columns = 4
    rows = max(1, math.ceil(len(others) / columns))
    fig = Figure(figsize=(3.2 * columns, 2.4 * rows + 0.6), dpi=100)
    for index, label in enumerate(others):
        ax = fig.add_subplot(rows, columns, index + 1)
        if original is not None:
            ax.hist(np.clip(logs[original], bins[0], bins[-1]), bins=bins, color=TARGET_COLOUR, alpha=0.35)
        if reference is not None:
            ax.hist(
                np.clip(logs[reference], bins[0], bins[-1]),
                bins=bins,
                histtype="step",
                color=RETAIN_COLOUR,
                linewidth=2,
            )
        ax.hist(np.clip(logs[label], bins[0], bins[-1]), bins=bins, histtype="step", color=AFTER_COLOUR, linewidth=1.6)
        ax.axvline(0, color="black", linewidth=0.6, linestyle=":")
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(
        f"{title}: log10 R per model (blue), {reference or 'reference'} (green), {original or 'original'} (grey)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG file (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(fig))
    return path
