"""`lethe eval`, `lethe audit`, `lethe report` and `lethe bench`: measuring forgetting.

Each command parses its arguments and calls one library function: `lethe.eval.suite`,
`lethe.eval.tofu_logs`, `lethe.forget.audit`, `lethe.report.html`, `lethe.bench`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from lethe.cli.app import JsonOption, app, console, emit, err_console, print_json, workspace
from lethe.workspace import shared_data_dir

eval_app = typer.Typer(
    help="Evaluate a model version (the standard suite), or recompute TOFU's published numbers.",
    no_args_is_help=False,
    invoke_without_command=True,
)
app.add_typer(eval_app, name="eval")

bench_app = typer.Typer(help="Benchmarks: TOFU and the synthetic world, with tables and plots.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@eval_app.callback()
def eval_version(
    ctx: typer.Context,
    version: str = typer.Option(None, "--version", "-v", help="Model version: id, name or alias."),
    forget: str = typer.Option(None, "--forget", help="Collection of the forget set."),
    retain: str = typer.Option(None, "--retain", help="Collection of the retain set."),
    holdout: str = typer.Option(None, "--holdout", help="Collection of never-trained documents (MIA non-members)."),
    max_items: int = typer.Option(None, "--max-items", help="Items per split (seeded sample)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Longest greedy answer."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not record the results in the ledger."),
    allow_tainted: bool = typer.Option(False, "--allow-tainted", help="Evaluate a tainted version."),
    json: bool = JsonOption,
) -> None:
    """Run the standard suite on one model version and store it in the ledger."""
    if ctx.invoked_subcommand is not None:
        return
    if version is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    from lethe.eval.suite import SuiteConfig, evaluate_version, render_suite

    config = SuiteConfig().replace(max_items=max_items, max_new_tokens=max_new_tokens)
    with err_console.status(f"evaluating {version}"):
        result = evaluate_version(
            workspace(),
            version,
            forget=forget,
            retain=retain,
            holdout=holdout,
            config=config,
            store=not no_store,
            allow_tainted=allow_tainted,
        )
    if json:
        print_json(result)
    else:
        console.print(render_suite(result))


@eval_app.command("tofu-logs")
def eval_tofu_logs(
    full: Path = typer.Argument(..., help="TOFU eval log of the evaluated model (e.g. full)."),
    retain: Path = typer.Argument(..., help="TOFU eval log of the retain-only model."),
    json: bool = JsonOption,
) -> None:
    """Recompute TOFU's truth ratios, forget quality and model utility from its eval logs."""
    from lethe.eval.tofu_logs import render_tofu_logs, tofu_logs_command

    result = tofu_logs_command(full, retain)
    if json:
        print_json(result)
    else:
        console.print(render_tofu_logs(result))


@app.command()
def audit(
    request: int = typer.Argument(..., help="Forget request id."),
    refresh: bool = typer.Option(False, "--refresh", help="Recompute even if the request has an audit."),
    robustness: bool = typer.Option(
        True,
        "--robustness/--no-robustness",
        help="Also attack the candidate, the exact model and the target (relearning, quantisation, "
        "paraphrase, multi-hop, extraction); --no-robustness for speed.",
    ),
    json: bool = JsonOption,
) -> None:
    """A forget request's audit: metrics before and after, exact reference, MIA, sample answers."""
    from lethe.eval.audit_render import render_audit
    from lethe.forget.audit import audit_request

    probes = None
    if robustness:
        from lethe.eval.robustness import ProbeConfig

        probes = ProbeConfig()
    with err_console.status(f"auditing request {request}"):
        result = audit_request(workspace(), request, refresh=refresh, robustness=probes)
    if json:
        print_json(result)
    else:
        console.print(render_audit(result))


@app.command()
def report(
    out: Path = typer.Option(None, "--out", help="Output directory (default: <home>/reports)."),
    json: bool = JsonOption,
) -> None:
    """Write a self-contained HTML report (plots inlined) of the workspace."""
    from lethe.report.html import write_report

    ws = workspace()
    path = write_report(ws, out or ws.reports_dir())
    if json:
        emit({"report": str(path)}, True)
    else:
        console.print(f"report written to [bold]{path}[/]")


def _methods(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


@bench_app.command("tofu")
def bench_tofu(
    data: Path = typer.Option(None, "--data", help="TOFU directory (default: $LETHE_SHARED_DATA/tofu)."),
    split: str = typer.Option("forget10", "--split", help="forget01, forget05 or forget10."),
    authors: int = typer.Option(None, "--authors", help="Trained authors to keep (forget ones in proportion)."),
    mia_authors: int = typer.Option(None, "--mia-authors", help="Never-trained authors (MIA non-members)."),
    methods: str = typer.Option(None, "--methods", help="Comma-separated methods (default: all but exact, impact_ga)."),
    preset: str = typer.Option(None, "--preset", help="Model preset of target and retain models (default tiny)."),
    base: str = typer.Option(
        None, "--base", help="Fine-tune this imported base model (lethe base add) instead: TOFU as the paper runs it."
    ),
    lora: bool = typer.Option(None, "--lora/--full", help="With --base: LoRA adapters (default) or all weights."),
    epochs: int = typer.Option(None, "--epochs", help="Fine-tuning epochs (default 25)."),
    lr: float = typer.Option(None, "--lr", help="Fine-tuning learning rate (default 2e-3)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Fine-tuning batch (default 16)."),
    vocab_size: int = typer.Option(None, "--vocab-size", help="Tokenizer vocabulary (default 4096)."),
    unlearn_epochs: int = typer.Option(None, "--unlearn-epochs", help="Unlearning epochs per method (default 5)."),
    unlearn_lr: float = typer.Option(None, "--unlearn-lr", help="Unlearning learning rate (default 5e-4)."),
    unlearn_batch_size: int = typer.Option(
        None, "--unlearn-batch-size", help="Forget (and retain) examples per unlearning step (default 8)."
    ),
    seq_len: int = typer.Option(None, "--seq-len", help="Longest training sequence in tokens (default 256)."),
    eval_items: int = typer.Option(None, "--eval-items", help="Items per evaluation split (default 100)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Longest greedy answer (default 200)."),
    seed: int = typer.Option(None, "--seed"),
    robustness: bool = typer.Option(
        None,
        "--robustness/--no-robustness",
        help="Attack every model with the robustness suite (default on); off also skips the tuner's attacks.",
    ),
    probes: str = typer.Option(None, "--probes", help="Comma-separated robustness probes (default: all)."),
    tune: str = typer.Option(
        None, "--tune", help="Comma-separated methods to tune against the exact answer on calibration subjects."
    ),
    calibration: int = typer.Option(
        None, "--calibration", help="Calibration authors per draw for --tune (default: as many as forgotten)."
    ),
    calibration_draws: int = typer.Option(
        None, "--calibration-draws", help="Disjoint calibration draws, each retrained without (default 2)."
    ),
    tune_objective: str = typer.Option(
        None, "--tune-objective", help="How the draws score a trial: pooled (default), mean or worst."
    ),
    tune_time_fraction: float = typer.Option(
        None,
        "--tune-time-fraction",
        help="Feasible trials unlearn a draw in at most this share of its exact time (0.1).",
    ),
    tune_trials: int = typer.Option(None, "--tune-trials", help="Trials per tuned method (default 20)."),
    tune_budget: float = typer.Option(None, "--tune-budget", help="Seconds of tuning per method."),
    out: Path = typer.Option(None, "--out", help="Results directory (default: <home>/bench/tofu-<hash>)."),
    rerun: bool = typer.Option(False, "--rerun", help="Recompute every stage, ignoring cached results."),
    json: bool = JsonOption,
) -> None:
    """TOFU: target model on full, retain model on the retain split, every method, evaluated."""
    from lethe.bench.tofu import TofuBenchConfig, render_bench, run_tofu_bench

    config = TofuBenchConfig(data=data or shared_data_dir() / "tofu").replace(
        split=split,
        authors=authors,
        mia_authors=mia_authors,
        methods=_methods(methods),
        preset=preset,
        base=base,
        lora=lora,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        vocab_size=vocab_size,
        unlearn_epochs=unlearn_epochs,
        unlearn_lr=unlearn_lr,
        unlearn_batch_size=unlearn_batch_size,
        seq_len=seq_len,
        eval_items=eval_items,
        max_new_tokens=max_new_tokens,
        seed=seed,
        robustness=robustness,
        probes=_methods(probes),
        tune=_methods(tune),
        calibration=calibration,
        calibration_draws=calibration_draws,
        tune_objective=tune_objective,
        tune_time_fraction=tune_time_fraction,
        tune_trials=tune_trials,
        tune_budget=tune_budget,
    )
    result = run_tofu_bench(workspace(), config, out_dir=out, rerun=rerun, progress=_progress())
    if json:
        print_json(result)
    else:
        console.print(render_bench(result))


@bench_app.command("synth")
def bench_synth(
    entities: int = typer.Option(None, "--entities", help="Entities in the synthetic world (default 40)."),
    forget_entities: int = typer.Option(None, "--forget", help="Entities to forget (default 3)."),
    articles: bool = typer.Option(None, "--articles/--no-articles", help="Also train on the articles."),
    methods: str = typer.Option(None, "--methods", help="Comma-separated methods (default: all but exact, impact_ga)."),
    preset: str = typer.Option(None, "--preset", help="Model preset (default tiny)."),
    slices: int = typer.Option(None, "--slices", help="Training slices (exact replay restarts at a slice)."),
    epochs: int = typer.Option(None, "--epochs", help="Fine-tuning epochs (default 25)."),
    lr: float = typer.Option(None, "--lr", help="Fine-tuning learning rate (default 2e-3)."),
    vocab_size: int = typer.Option(None, "--vocab-size", help="Tokenizer vocabulary (default 4096)."),
    unlearn_epochs: int = typer.Option(None, "--unlearn-epochs", help="Unlearning epochs per method (default 5)."),
    unlearn_lr: float = typer.Option(None, "--unlearn-lr", help="Unlearning learning rate (default 5e-4)."),
    eval_items: int = typer.Option(None, "--eval-items", help="Items per evaluation split (default 100)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Longest greedy answer (default 48)."),
    seed: int = typer.Option(None, "--seed"),
    robustness: bool = typer.Option(
        None,
        "--robustness/--no-robustness",
        help="Attack every model with the robustness suite (default on); off also skips the tuner's attacks.",
    ),
    probes: str = typer.Option(None, "--probes", help="Comma-separated robustness probes (default: all)."),
    tune: str = typer.Option(
        None, "--tune", help="Comma-separated methods to tune against the exact answer on calibration subjects."
    ),
    calibration: int = typer.Option(
        None, "--calibration", help="Calibration entities per draw for --tune (default: as many as forgotten)."
    ),
    calibration_draws: int = typer.Option(
        None, "--calibration-draws", help="Disjoint calibration draws, pooled in every trial (default 2)."
    ),
    tune_objective: str = typer.Option(
        None, "--tune-objective", help="How the draws score a trial: pooled (default), mean or worst."
    ),
    tune_time_fraction: float = typer.Option(
        None, "--tune-time-fraction", help="Feasible trials unlearn a draw in at most this share of its replay (0.1)."
    ),
    tune_trials: int = typer.Option(None, "--tune-trials", help="Trials per tuned method (default 20)."),
    tune_budget: float = typer.Option(None, "--tune-budget", help="Seconds of tuning per method."),
    out: Path = typer.Option(None, "--out", help="Results directory (default: <home>/bench/synth-<hash>)."),
    rerun: bool = typer.Option(False, "--rerun", help="Recompute every stage, ignoring cached results."),
    json: bool = JsonOption,
) -> None:
    """The synthetic world: exact replay without the forgotten entities is the reference."""
    from lethe.bench.synth import SynthBenchConfig, run_synth_bench
    from lethe.bench.tofu import render_bench

    config = SynthBenchConfig().replace(
        entities=entities,
        forget_entities=forget_entities,
        articles=articles,
        methods=_methods(methods),
        preset=preset,
        slices=slices,
        epochs=epochs,
        lr=lr,
        vocab_size=vocab_size,
        unlearn_epochs=unlearn_epochs,
        unlearn_lr=unlearn_lr,
        eval_items=eval_items,
        max_new_tokens=max_new_tokens,
        seed=seed,
        robustness=robustness,
        probes=_methods(probes),
        tune=_methods(tune),
        calibration=calibration,
        calibration_draws=calibration_draws,
        tune_objective=tune_objective,
        tune_time_fraction=tune_time_fraction,
        tune_trials=tune_trials,
        tune_budget=tune_budget,
    )
    result = run_synth_bench(workspace(), config, out_dir=out, rerun=rerun, progress=_progress())
    if json:
        print_json(result)
    else:
        console.print(render_bench(result))


def _progress():
    """Progress lines on stderr (so --json output stays clean)."""

    def show(message: str) -> None:
        err_console.print(f"[dim]{message}[/]", highlight=False)

    return show
