"""`lethe tune METHOD…`: tune approximate methods against the exact replay of calibration
subjects; `lethe tune ls` and `lethe tune show STUDY` inspect the stored studies."""

from __future__ import annotations

from pathlib import Path

import typer

from lethe.cli.app import JsonOption, app, console, emit, err_console, print_json, workspace
from lethe.errors import InputError, Where

INSPECT = ("ls", "show")


@app.command(
    "tune",
    epilog="Inspect: `lethe tune ls` lists the studies, `lethe tune show STUDY [--plot FILE.png]` shows one.",
)
def tune_command(
    methods: list[str] = typer.Argument(..., help="Methods to tune (e.g. npo idk), or `ls`, or `show STUDY`."),
    trials: int = typer.Option(20, "--trials", help="Trials to add per method (a resumed study continues)."),
    budget: float = typer.Option(None, "--budget", help="Seconds per method after which no trial starts."),
    calibration: int = typer.Option(3, "--calibration", help="Calibration subjects per draw (drawn seeded)."),
    draws: int = typer.Option(1, "--draws", help="Disjoint calibration draws, each replayed; trials pool them."),
    objective: str = typer.Option(
        "pooled", "--objective", help="How draws score a trial: pooled, mean or worst (of each draw's own)."
    ),
    like: str = typer.Option(
        None, "--like", help="A collection of the kind the real request forgets (it is never a calibration subject)."
    ),
    version: str = typer.Option("latest", "--version", help="The version to tune on."),
    utility_fraction: float = typer.Option(0.97, "--utility-fraction", help="Utility floor, a fraction of exact's."),
    time_fraction: float = typer.Option(
        None,
        "--time-fraction",
        help="Time ceiling: a trial's unlearning over the exact replay's seconds (a trial past it is stopped).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seeds the calibration choice, the sampler and the runs."),
    param: list[str] = typer.Option(None, "--param", "-p", help="Fixed method setting key=value (not searched)."),
    study: str = typer.Option(None, "--study", help="Study name (default <lineage>-<method>-c<calibration>)."),
    no_robustness: bool = typer.Option(False, "--no-robustness", help="Skip the finalists' relearning/quant check."),
    plot: Path = typer.Option(None, "--plot", help="With `show`: write the Pareto chart (PNG) here."),
    json: bool = JsonOption,
) -> None:
    """Search each method's hyperparameters (Optuna TPE, pruning) for the best forget quality
    against the exact model with utility at or above the floor; the study is kept in the ledger."""
    from lethe.cli.forget import parse_settings

    if methods[0] in INSPECT:
        _inspect(methods, plot, json)
        return
    from lethe.forget.tune import tune
    from lethe.forget.tuning import TuneSettings

    settings = TuneSettings(
        trials=trials,
        budget=budget,
        utility_fraction=utility_fraction,
        seed=seed,
        robustness=not no_robustness,
        time_fraction=time_fraction,
        objective=objective,
    )
    say = (lambda _m: None) if json else (lambda m: err_console.print(f"[dim]{m}[/]", highlight=False))
    summaries = tune(
        workspace(),
        methods,
        version=version,
        like=like,
        calibration=calibration,
        draws=draws,
        settings=settings,
        fixed=parse_settings(param or []),
        study=study,
        progress=say,
    )
    if json:
        print_json(summaries)
        return
    for summary in summaries:
        _print_summary(summary)


def _print_summary(summary: dict) -> None:
    best = summary.get("best")
    console.print(
        f"study [bold]{summary['name']}[/] ({summary['method']}): {len(summary['trials'])} trials, "
        f"{summary['tuning_seconds']:.0f} s of unlearning; calibration {', '.join(summary['calibration']['subjects'])}"
    )
    if best is None:
        slow = sum(t["state"] == "slow" for t in summary["trials"])
        console.print(
            f"  no finished trial yet ({slow} stopped at the time ceiling; a larger --time-fraction lets them finish)"
            if slow
            else "  no finished trial yet"
        )
        return
    verdict = best.get("robustness")
    console.print(
        f"  chosen trial {best['number']}: forget quality {best['forget_quality']:.3g}, utility "
        f"{best['utility_fraction']:.1%} of exact"
        + ("" if best["feasible"] else " (no trial reached the floor)")
        + (
            ""
            if verdict is None
            else ", attacks " + ("within" if verdict["within_exact_range"] else "outside") + " the exact range"
        ),
        highlight=False,
    )
    console.print("  settings: " + ", ".join(f"{k}={v}" for k, v in best["params"].items()), highlight=False)
    console.print(f"  use them: lethe forget ... --method {summary['method']} --tuned", highlight=False)


def _inspect(words: list[str], plot: Path | None, json: bool) -> None:
    from lethe.forget.tune import show_study
    from lethe.forget.tuning import study_summary

    ws = workspace()
    if words[0] == "ls":
        ledger = ws.ledger
        rows = []
        for study in ledger.tuning_studies():
            summary = study_summary(ledger, study)
            best = summary["best"] or {}
            rows.append(
                {
                    "id": study.id,
                    "name": study.name,
                    "method": study.method,
                    "trials": len(summary["trials"]),
                    "best_trial": best.get("number"),
                    "forget_quality": best.get("forget_quality"),
                    "utility_fraction": best.get("utility_fraction"),
                    "updated": study.updated_at,
                }
            )
        emit(rows, json, rows=rows, title="tuning studies")
        return
    if len(words) != 2:
        raise InputError("usage: lethe tune show STUDY (an id or a name from `lethe tune ls`)", Where(field="study"))
    summary = show_study(ws, words[1])
    if plot is not None:
        from lethe.report.plots import save_png
        from lethe.report.tuning import pareto_figure

        save_png(pareto_figure([summary], title=f"{summary['name']}: forget quality vs utility"), plot)
    if json:
        print_json(summary)
        return
    _print_summary(summary)
    for trial in summary["trials"]:
        numbers = (
            f"forget quality {trial['forget_quality']:.3g}, utility {trial['utility_fraction']:.1%}"
            if trial["state"] == "complete"
            else trial["state"]
        )
        console.print(f"  trial {trial['number']:>3}: {numbers}  {trial['params']}", highlight=False)
    if plot is not None:
        console.print(f"Pareto chart: {plot}")
