"""`lethe demo`: the whole story on a generated world, with a summary table at the end."""

from __future__ import annotations

import typer
from rich.table import Table

from lethe.cli.app import JsonOption, app, console, emit, workspace
from lethe.cli.progress import progress_callback

SUMMARY_ROWS = (
    "forget_token_accuracy",
    "retain_token_accuracy",
    "holdout_token_accuracy",
    "forget_exact_match",
    "retain_exact_match",
    "forget_loss",
    "retain_loss",
    "forget_mia_auc_loss",
    "general_token_accuracy",
    "general_loss",
    "forget_quality_vs_exact",
)


def _fmt(value) -> str:
    return "" if value is None else f"{value:.3g}"


@app.command()
def demo(
    quick: bool = typer.Option(False, "--quick", help="A nano model on a small world (~2 minutes)."),
    base: str = typer.Option(
        None, "--base", help="Fine-tune a real base model with LoRA instead (smollm2: the installed GGUF)."
    ),
    entities: int = typer.Option(None, "--entities", help="Entities in the generated world."),
    seed: int = typer.Option(None, "--seed", help="Seed of the world and of every run."),
    json: bool = JsonOption,
) -> None:
    """Generate a world, train in slices plus a weekly update, chat, forget (exact and fast), audit, report."""
    from lethe.demo import DemoConfig, run_demo

    config = DemoConfig.real(base) if base else DemoConfig.quick() if quick else DemoConfig()
    if entities is not None:
        config.entities = entities
    if seed is not None:
        config.seed = seed
    ws = workspace()
    say = (lambda _text: None) if json else console.print
    with progress_callback(not json) as callback:
        result = run_demo(ws, config, say=say, progress=callback)
    if json:
        emit(result.as_dict(), True)
        return
    for answer in result.answers:
        console.print(f"\n[bold]Q:[/] {answer['question']}\n  truth:  {answer['truth']}\n  before: {answer['before']}")
        for key in answer:
            if key not in ("question", "truth", "before"):
                console.print(f"  {key}: {answer[key]}")
    table = Table(
        title="\nforgetting, measured (forget = the deleted entities' QA, retain = the rest, "
        "MIA AUC = forget vs never-trained holdout; 0.5 = indistinguishable)"
    )
    labels = list(result.summary)
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    for metric in SUMMARY_ROWS:
        if any(metric in row for row in result.summary.values()):
            table.add_row(metric.replace("_", " "), *[_fmt(result.summary[label].get(metric)) for label in labels])
    console.print(table)
    timing = Table(title="time per step")
    timing.add_column("step")
    timing.add_column("seconds", justify="right")
    for name, seconds in result.timings.items():
        timing.add_row(name, f"{seconds:.1f}")
    timing.add_row("[bold]total[/]", f"[bold]{sum(result.timings.values()):.1f}[/]")
    console.print(timing)
    console.print(f"\nWorkspace: [bold]{ws.home}[/]   report: [bold]{result.report}[/]")
    console.print(
        f"Published {result.versions.get('published')} (tainted: {result.versions.get('tainted') or 'none'})."
    )
    console.print(f"Serve it:  lethe --home {ws.home} serve   →  http://127.0.0.1:7860  (OpenAI API at /v1)")
