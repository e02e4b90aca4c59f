"""The tuning panel: the Pareto front of each study, forget quality against utility.

One point per finished trial (utility as a fraction of the exact model's on x, forget quality
on a log scale on y), the non-dominated trials joined by a step line, pruned and slow trials
left out (they have no final numbers; the legend counts them), the utility floor drawn as a
vertical line and the chosen trial ringed; the legend sits beside the axes. `tuning_html` is the report's section: the chart and the chosen settings.
"""

from __future__ import annotations

from html import escape
from typing import Any

from matplotlib.figure import Figure

from lethe.report import plots


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-dominated (utility, forget quality) points, by increasing utility."""
    front = []
    for u, q in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not front or q > front[-1][1]:
            front.append((u, q))
    return sorted(front)


def pareto_figure(studies: list[dict[str, Any]], *, title: str = "Tuning: forget quality vs utility") -> Figure:
    """The Pareto chart of one or more study summaries (`lethe.forget.tuning.study_summary`)."""
    fig, ax = plots._figure(9.0, 4.6)
    colours = plots._palette(max(1, len(studies)))
    drawn = 0
    floor = None
    for colour, study in zip(colours, studies):
        trials = [t for t in study["trials"] if t["state"] == "complete" and t["utility_fraction"] is not None]
        if not trials:
            continue
        floor = (study.get("config") or {}).get("utility_fraction", floor)
        xs = [t["utility_fraction"] for t in trials]
        ys = [max(t["forget_quality"], 1e-12) for t in trials]
        unfinished = {state: sum(t["state"] == state for t in study["trials"]) for state in ("pruned", "slow", "fail")}
        said = {"pruned": "pruned", "slow": "stopped at the time ceiling", "fail": "failed"}
        label = f"{study['method']} ({len(trials)} finished" + "".join(
            f"; {n} {said[state]}" for state, n in unfinished.items() if n
        )
        ax.scatter(xs, ys, color=colour, alpha=0.65, s=28, label=label + ")")
        front = pareto_front(list(zip(xs, ys)))
        ax.step([p[0] for p in front], [p[1] for p in front], where="pre", color=colour, alpha=0.8, lw=1.2)
        best = study.get("best")
        if best and best.get("utility_fraction") is not None:
            ax.scatter(
                [best["utility_fraction"]],
                [max(best["forget_quality"], 1e-12)],
                s=170,
                facecolors="none",
                edgecolors=colour,
                linewidths=2.2,
                label=f"{study['method']}: chosen (trial {best['number']})",
            )
        drawn += len(trials)
    if not drawn:
        plots._empty(ax, "no finished trials yet")
        return fig
    if floor is not None:
        ax.axvline(floor, color="#555", ls="--", lw=1, label=f"utility floor ({floor:.0%} of exact)")
    ax.axhline(0.9, color="#2ca02c", ls=":", lw=1, label="forget quality 0.9")
    ax.set_yscale("log")
    ax.set_xlabel("model utility / exact model's")
    ax.set_ylabel("forget quality vs exact (KS p-value)")
    ax.set_title(title)
    # beside the axes, never over a trial (a study with one finished trial had it hidden)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig


def tuning_html(studies: list[dict[str, Any]], image: str) -> str:
    """The report's tuning section: the chart (a data URI or file name) and the choices."""
    rows = []
    for study in studies:
        best = study.get("best") or {}
        params = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.get("params", {}).items()
        )
        rows.append(
            f"<tr><td>{escape(study['method'])}</td><td>{len(study['trials'])}</td>"
            f"<td>{best.get('number', '')}</td><td>{(best.get('forget_quality') or 0):.3g}</td>"
            f"<td>{(best.get('utility_fraction') or 0):.1%}</td><td>{escape(params)}</td></tr>"
        )
    return (
        "<section><h2>Tuning against the exact answer</h2>"
        f'<img alt="Pareto front of the tuning studies" src="{escape(image)}">'
        "<table><tr><th>method</th><th>trials</th><th>chosen</th><th>forget quality</th>"
        "<th>utility / exact</th><th>settings</th></tr>" + "".join(rows) + "</table></section>"
    )


def tuning_section(ledger: Any) -> str:
    """The report's section for the workspace's tuning studies ("" when there are none)."""
    import base64

    from lethe.forget.tuning import study_summary

    studies = [study_summary(ledger, s) for s in ledger.tuning_studies()]
    if not studies:
        return ""
    png = plots.png_bytes(pareto_figure(studies))
    return tuning_html(studies, "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
