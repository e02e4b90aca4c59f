"""Tuning approximate unlearning against the exact answer (`lethe tune`).

A `TuningProblem` is a calibration: subjects that are *not* the real request (other trained
entities of the same kind), the version to unlearn them from, and their exact replay (see
`lethe.forget.calibration`). Each trial unlearns the calibration documents with settings
drawn from the method's search space (`lethe.forget.tuning_space`) and is judged as a forget
request is: forget quality (TOFU's KS p-value of the forget truth ratios against the exact
model's) and model utility as a fraction of the exact model's. Optuna's TPE sampler (seeded)
maximises forget quality under the constraint utility ≥ `utility_fraction` × exact; a median
pruner stops trials whose forget quality halfway through is hopeless. The feasible trials
with the best forget quality are then attacked (relearning and quantisation probes), and the
first whose probes stay within the exact model's range (plus `robustness_margin`) is chosen.

A study may tune on several calibration *draws* at once (a list of problems, each its own
subjects and exact answer, sharing the target and the retain sample): every trial unlearns
each draw from the target separately, and its forget quality is the KS p-value of the pooled
truth ratios (every draw's candidate ratios against every draw's exact ratios). Pooling gives
the KS test more items, so its p-value moves in finer steps and one lucky draw cannot carry a
setting; utility is the mean fraction over the draws. With `time_fraction` a trial is
feasible only when one draw's unlearning took at most that fraction of its exact replay, and
a trial that passes that ceiling is stopped there (state "slow", pruned for Optuna): it can
no longer be feasible, and on a real base one slow setting would otherwise cost as much as
the retraining it is meant to avoid. The enqueued start trial (the untuned settings) always
runs to the end, so a study has at least that point to compare with.

Studies live in lethe's own tables (`tuning_studies`, `tuning_trials`): Optuna's RDB storage
creates an `alembic_version` table of its own, which is lethe's Alembic's. On resume the
Optuna study is rebuilt from the recorded trials (`create_trial` + `add_trial`), so trial
numbering continues and the sampler and pruner see the whole history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lethe.errors import InputError, Where

Progress = Callable[[str], None]
TRIAL_PROTOCOL = 2
"""How a trial is run and timed; studies of another protocol are not resumed by the benchmarks
(1: quick metrics on, never stopped for time; 2: no quick metrics, stopped at the time ceiling)."""
ROBUSTNESS_PROBES = ("relearning", "quantisation")
OBJECTIVES = ("pooled", "mean", "worst")


@dataclass
class TuneSettings:
    """How a study searches (recorded with it)."""

    trials: int = 20
    """Trials to add in this call (a resumed study continues its numbering)."""
    budget: float | None = None
    """Stop starting new trials once this many seconds have passed (per method)."""
    utility_fraction: float = 0.97
    """A trial is feasible when its utility is at least this fraction of the exact model's."""
    seed: int = 0
    """Seeds the TPE sampler (and every unlearning run through the fixed settings)."""
    prune: bool = True
    """Stop a trial halfway when its forget quality is below the median of earlier trials'."""
    finalists: int = 3
    """Feasible trials (best forget quality first) attacked with the robustness probes."""
    robustness_margin: float = 0.05
    """A finalist passes when every relearning / quantisation headline metric (token accuracy
    on the forget set after the attack) is at most the exact model's plus this."""
    robustness: bool = True
    """Run the robustness check at all (off: the best feasible trial is chosen)."""
    time_fraction: float | None = None
    """A trial is feasible only when unlearning one draw took at most this fraction of the
    draw's exact replay (None: no time constraint)."""
    objective: str = "pooled"
    """How several draws score a trial: `pooled` (the KS p-value of all draws' truth ratios
    together), `mean` or `worst` (of each draw's own forget quality, at the request's size)."""

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise InputError("--trials must be >= 0", Where(field="trials"))
        if self.budget is not None and self.budget <= 0:
            raise InputError("--budget must be a positive number of seconds", Where(field="budget"))
        if not 0 < self.utility_fraction <= 1.5:
            raise InputError("--utility-fraction must be in (0, 1.5]", Where(field="utility_fraction"))
        if self.time_fraction is not None and not 0 < self.time_fraction <= 1:
            raise InputError("--time-fraction must be in (0, 1]", Where(field="time_fraction"))
        if self.objective not in OBJECTIVES:
            raise InputError(
                f"objective {self.objective!r} is not one of {', '.join(OBJECTIVES)}", Where(field="objective")
            )


@dataclass
class TuningProblem:
    """What every trial of one calibration unlearns, and what it is judged against."""

    target_path: Path
    """The version the calibration subjects are unlearned from."""
    exact_path: Path
    """The exact answer: the target's lineage replayed without the calibration documents."""
    exact_seconds: float
    forget_examples: list[dict[str, Any]]
    retain_examples: list[dict[str, Any]]
    forget_documents: list[Any]
    """The calibration QA documents (forget split of the evaluation)."""
    retain_documents: list[Any]
    """A sample of retained QA documents (retain split: utility)."""
    eval_config: Any
    """A `TofuEvalConfig`."""
    examples_of: Callable[[list[Any], Any], list[dict[str, Any]]]
    """Training examples of documents for a tokenizer (the robustness probes fine-tune on them)."""
    fixed: dict[str, Any] = field(default_factory=dict)
    """Unlearning settings every trial shares (seed, batch sizes, LoRA, ...)."""
    subjects: list[str] = field(default_factory=list)


@dataclass
class Reference:
    """The exact model's numbers on the calibration (computed once per tune)."""

    ratios: Any
    utility: float
    probes: dict[str, dict[str, float]] | None = None
    """{"<probe>/<variant>": headline metric} under the robustness attacks."""


@dataclass
class TrialOutcome:
    forget_quality: float
    utility: float
    utility_fraction: float
    seconds: float
    intermediate: dict[int, float] = field(default_factory=dict)
    model: Any = None
    ratios: Any = None
    """The candidate's forget truth ratios (pooled over the draws for `run_draws`)."""
    request_seconds: float | None = None
    """Unlearning seconds of one draw (the mean over draws); `seconds` is their sum."""


class Pruned(Exception):
    """The trial was stopped: by the pruner (`reason` "median"; its intermediate forget
    quality is recorded) or at the time ceiling (`reason` "time")."""

    def __init__(self, intermediate: dict[int, float], seconds: float, reason: str = "median"):
        super().__init__("pruned")
        self.intermediate = intermediate
        self.seconds = seconds
        self.reason = reason


# ------------------------------------------------------------------------------ measuring


def _eval_splits(problem: TuningProblem) -> dict[str, list[Any]]:
    return {"forget": problem.forget_documents, "retain": problem.retain_documents}


def exact_references(problems: list[TuningProblem], settings: TuneSettings) -> list[Reference]:
    """Every draw's exact reference; only the first draw's is attacked (the finalists' attacks
    run on the first draw, see `choose`), so the others skip the probes."""
    return [exact_reference(p, settings, probes=i == 0) for i, p in enumerate(problems)]


def exact_reference(problem: TuningProblem, settings: TuneSettings, *, probes: bool = True) -> Reference:
    """The exact model's forget truth ratios, utility and (if asked and `probes`) probe metrics."""
    from lethe.eval.tofu import evaluate_tofu
    from lethe.model.io import load_version

    model, tokenizer = load_version(problem.exact_path)
    evaluation = evaluate_tofu(model, tokenizer, _eval_splits(problem), problem.eval_config)
    if evaluation.model_utility is None or not evaluation.forget_ratios().size:
        raise InputError(
            "the calibration documents need QA pairs with perturbed answers (a truth ratio) and a retain split"
        )
    reference = Reference(evaluation.forget_ratios(), float(evaluation.model_utility))
    if settings.robustness and probes:
        reference.probes = probe_headlines(model, tokenizer, problem, settings)
    return reference


def probe_headlines(model: Any, tokenizer: Any, problem: TuningProblem, settings: TuneSettings) -> dict[str, float]:
    """Relearning and quantisation attacks on one model: {"probe/variant": token accuracy}."""
    from lethe.eval.robustness import ProbeConfig, ProbeContext, run_robustness
    from lethe.eval.robustness.runner import headline_rows

    config = ProbeConfig(probes=ROBUSTNESS_PROBES, seed=settings.seed, max_items=32, max_new_tokens=32)
    context = ProbeContext(
        tokenizer,
        problem.forget_documents,
        problem.retain_documents,
        examples_of=lambda documents: problem.examples_of(documents, tokenizer),
        config=config,
    )
    result = run_robustness({"model": model}, context)
    return {f"{row['probe']}/{row['variant']}": row.get("model") for row in headline_rows(result)}


def robustness_verdict(candidate: dict[str, float], exact: dict[str, float], margin: float) -> dict[str, Any]:
    """Whether every attack leaves the candidate within the exact model's range (+ margin)."""
    worst = {
        key: round(value - exact[key], 4)
        for key, value in candidate.items()
        if value is not None and exact.get(key) is not None
    }
    return {
        "within_exact_range": all(gap <= margin for gap in worst.values()),
        "margin": margin,
        "candidate": candidate,
        "exact": exact,
        "gap": worst,
    }


def run_trial(
    method: str,
    problem: TuningProblem,
    reference: Reference,
    params: dict[str, Any],
    *,
    report: Callable[[int, float], bool] | None = None,
    time_limit: float | None = None,
) -> TrialOutcome:
    """Unlearn the calibration with `params`; its forget quality and utility against exact.

    `report(step, forget_quality)` is called halfway through; when it returns True the run
    stops and `Pruned` is raised. So it is when unlearning passes `time_limit` seconds
    (checked before every step; `Pruned.reason` "time").
    """
    import torch

    from lethe.errors import CancelledError
    from lethe.eval.item_scores import ScoreSettings, score_qa
    from lethe.eval.tofu import evaluate_tofu, tofu_items
    from lethe.eval.tofu_math import forget_quality
    from lethe.model.io import load_version
    from lethe.unlearn import UnlearnConfig, run_unlearning

    config = UnlearnConfig.from_dict({**problem.fixed, **params})
    if not config.has_early_stop:  # the trial is evaluated in full afterwards; the quick metrics only watch
        config = replace(config, eval_every=0)
    model, tokenizer = load_version(problem.target_path)
    items = tofu_items(problem.forget_documents, "forget", problem.eval_config.max_items, problem.eval_config.seed)
    quick = ScoreSettings(**{**asdict(problem.eval_config.settings()), "generate": False})
    state: dict[str, Any] = {"pruned": False, "slow": False, "checked": False, "intermediate": {}}

    def callback(event: Any) -> None:
        if report is None or state["checked"] or event.step < max(1, event.steps_total // 2):
            return
        state["checked"] = True
        was_training = model.training
        model.eval()
        with torch.no_grad():
            ratios = score_qa(model, tokenizer, items, quick).truth_ratios
        model.train(was_training)
        quality = forget_quality(ratios, reference.ratios)
        state["intermediate"][event.step] = quality
        state["pruned"] = report(event.step, quality)

    def cancel() -> bool:
        if time_limit is not None and time.perf_counter() - started > time_limit:
            state["slow"] = True
        return bool(state["pruned"] or state["slow"])

    started = time.perf_counter()
    try:
        result = run_unlearning(
            method,
            model,
            tokenizer,
            problem.forget_examples,
            problem.retain_examples,
            config,
            callback=callback,
            cancel=cancel,
        )
    except CancelledError:
        if state["pruned"] or state["slow"]:
            reason = "median" if state["pruned"] else "time"
            raise Pruned(state["intermediate"], time.perf_counter() - started, reason) from None
        raise
    seconds = time.perf_counter() - started
    evaluation = evaluate_tofu(result.model, tokenizer, _eval_splits(problem), problem.eval_config)
    quality = forget_quality(evaluation.forget_ratios(), reference.ratios)
    utility = float(evaluation.model_utility or 0.0)
    return TrialOutcome(
        forget_quality=float(quality),
        utility=utility,
        utility_fraction=utility / reference.utility if reference.utility > 0 else 0.0,
        seconds=seconds,
        intermediate=state["intermediate"],
        model=result.model,
        ratios=evaluation.forget_ratios(),
        request_seconds=seconds,
    )


def run_draws(
    method: str,
    problems: list[TuningProblem],
    references: list[Reference],
    params: dict[str, Any],
    *,
    report: Callable[[int, float], bool] | None = None,
    objective: str = "pooled",
    time_limit: float | None = None,
) -> TrialOutcome:
    """`run_trial` on every draw; forget quality of the pooled truth ratios against the pooled
    exact ratios (`objective` "pooled"), or the mean / worst of the draws' own; utility the mean
    fraction, the first draw's model kept (the probes attack it). Pruning looks at the first
    draw only (every trial is compared on the same items); `time_limit` applies to each draw."""
    import numpy as np

    from lethe.eval.tofu_math import forget_quality

    outcomes = []
    spent = 0.0
    for i, (problem, reference) in enumerate(zip(problems, references, strict=True)):
        try:
            outcomes.append(
                run_trial(method, problem, reference, params, report=report if i == 0 else None, time_limit=time_limit)
            )
        except Pruned as pruned:
            raise Pruned(pruned.intermediate, spent + pruned.seconds, pruned.reason) from None
        spent += outcomes[-1].seconds
    if len(outcomes) == 1:
        return outcomes[0]
    ratios = np.concatenate([np.asarray(o.ratios, dtype=float) for o in outcomes])
    exact = np.concatenate([np.asarray(r.ratios, dtype=float) for r in references])
    for outcome in outcomes[1:]:
        outcome.model = None  # only the first draw's model is attacked; free the others
    seconds = sum(o.seconds for o in outcomes)
    return TrialOutcome(
        forget_quality=float(
            forget_quality(ratios, exact)
            if objective == "pooled"
            else (np.mean if objective == "mean" else np.min)([o.forget_quality for o in outcomes])
        ),
        utility=float(np.mean([o.utility for o in outcomes])),
        utility_fraction=float(np.mean([o.utility_fraction for o in outcomes])),
        seconds=seconds,
        intermediate=outcomes[0].intermediate,
        model=outcomes[0].model,
        ratios=ratios,
        request_seconds=seconds / len(outcomes),
    )


def time_gap(request_seconds: float | None, problems: list[TuningProblem], settings: TuneSettings) -> float | None:
    """The time constraint's value (<= 0 feasible): one draw's unlearning seconds minus
    `time_fraction` x the draws' mean exact replay seconds; None without a time constraint."""
    if settings.time_fraction is None or request_seconds is None:
        return None
    exact = sum(p.exact_seconds for p in problems) / len(problems)
    return request_seconds - settings.time_fraction * exact


def time_ceiling(problems: list[TuningProblem], settings: TuneSettings) -> float | None:
    """Seconds of unlearning after which one draw can no longer be feasible (None: unbounded)."""
    if settings.time_fraction is None:
        return None
    return settings.time_fraction * sum(p.exact_seconds for p in problems) / len(problems)


def _constraints(utility_gap: float, time: float | None) -> dict[str, float]:
    return {"utility": utility_gap, **({} if time is None else {"time": time})}


# ------------------------------------------------------------------------------ the study


def _rebuild(ledger: Any, study_id: int, study: Any, settings: TuneSettings, problems: list[TuningProblem]) -> None:
    """Add every recorded trial to a fresh in-memory Optuna study (resume)."""
    from optuna.distributions import json_to_distribution
    from optuna.trial import TrialState, create_trial

    states = {
        "complete": TrialState.COMPLETE,
        "pruned": TrialState.PRUNED,
        "slow": TrialState.PRUNED,
        "fail": TrialState.FAIL,
    }
    for row in ledger.tuning_trials(study_id):
        distributions = {k: json_to_distribution(v) for k, v in row.distributions.items()}
        state = states[row.state]
        gap = settings.utility_fraction - row.utility_fraction if row.utility_fraction is not None else 1.0
        per_draw = row.seconds / len(problems) if row.seconds is not None else None
        study.add_trial(
            create_trial(
                state=state,
                value=row.forget_quality if state == TrialState.COMPLETE else None,
                params=row.params,
                distributions=distributions,
                intermediate_values={int(k): v for k, v in (row.intermediate or {}).items()},
                constraints=_constraints(gap, time_gap(per_draw, problems, settings))
                if state == TrialState.COMPLETE
                else None,
            )
        )


def _study_config(method: str, problems: list[TuningProblem], settings: TuneSettings) -> dict[str, Any]:
    problem = problems[0]
    config = {
        "method": method,
        "seed": settings.seed,
        "utility_fraction": settings.utility_fraction,
        "fixed": problem.fixed,
        "eval": problem.eval_config.to_dict(),
        "subjects": [s for p in problems for s in p.subjects],
        "exact_seconds": problem.exact_seconds,
    }
    if settings.time_fraction is not None:
        config["time_fraction"] = settings.time_fraction
    if len(problems) > 1:
        config["objective"] = settings.objective
    if len(problems) > 1:
        config["draws"] = [
            {"subjects": p.subjects, "documents": len(p.forget_documents), "exact_seconds": p.exact_seconds}
            for p in problems
        ]
    return config


def tune_method(
    ledger: Any,
    method: str,
    problem: TuningProblem | list[TuningProblem],
    settings: TuneSettings,
    *,
    study_name: str,
    calibration_id: int,
    lineage_id: int | None,
    progress: Progress | None = None,
    reference: Reference | list[Reference] | None = None,
    start: dict[str, Any] | None = None,
    warm: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the study `study_name`; record its trials and its chosen settings.

    `problem` may be a list of calibration draws (their `reference`s in the same order);
    `start`, on a new study, is enqueued as its first trial (e.g. the untuned settings), so
    the search starts from what an untuned run would do and the choice is never worse on the
    calibration. `warm` are settings found good elsewhere on the same calibration (see
    `warm_start`); each not yet tried in this study is enqueued next, so it is re-measured
    under this study's protocol rather than trusted."""
    import warnings

    import optuna

    from lethe.forget.tuning_space import space_for

    problems = problem if isinstance(problem, list) else [problem]
    if reference is None:
        references = exact_references(problems, settings)
    else:
        references = reference if isinstance(reference, list) else [reference]
    say = progress or (lambda _m: None)
    space = space_for(method)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = _study_config(method, problems, settings)
    row = ledger.tuning_study_named(study_name)
    if row is None:
        row = ledger.add_tuning_study(
            name=study_name, method=method, lineage_id=lineage_id, calibration_id=calibration_id, config=config
        )
    elif row.method != method or row.calibration_id != calibration_id:
        raise InputError(
            f"study {study_name!r} tunes {row.method} on calibration {row.calibration_id}, not {method} "
            f"on {calibration_id}; choose another --study name",
            Where(field="study"),
        )
    with warnings.catch_warnings():  # multivariate TPE is marked experimental; it models lr x epochs jointly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=settings.seed + ledger.next_tuning_trial_number(row.id),  # a resumed run draws afresh
            n_startup_trials=5,
            multivariate=True,
        )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0) if settings.prune else None
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner or optuna.pruners.NopPruner())
    _rebuild(ledger, row.id, study, settings, problems)
    if start and not study.trials:
        study.enqueue_trial(start, skip_if_exists=True)
    for params in warm or []:
        study.enqueue_trial(params, skip_if_exists=True)
    started = time.perf_counter()
    ceiling = time_ceiling(problems, settings)
    kept: dict[int, Any] = {}  # trial number -> unlearned model, for the robustness check
    for _ in range(settings.trials):
        if settings.budget is not None and time.perf_counter() - started >= settings.budget:
            say(f"{method}: budget of {settings.budget:.0f} s spent")
            break
        trial = study.ask()
        number = ledger.next_tuning_trial_number(row.id)
        params = space(trial, problems[0].fixed)

        def report(step: int, quality: float, trial: Any = trial) -> bool:
            trial.report(quality, step)
            return trial.should_prune()

        distributions = {k: optuna.distributions.distribution_to_json(d) for k, d in trial.distributions.items()}
        untuned_start = start is not None and number == 0  # the enqueued start runs to its end
        try:
            outcome = run_draws(
                method,
                problems,
                references,
                params,
                report=report,
                objective=settings.objective,
                time_limit=None if untuned_start else ceiling,
            )
        except Pruned as pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            ledger.add_tuning_trial(
                row.id,
                number=number,
                state="slow" if pruned.reason == "time" else "pruned",
                params=trial.params,
                distributions=distributions,
                intermediate={str(k): v for k, v in pruned.intermediate.items()},
                seconds=pruned.seconds,
            )
            if pruned.reason == "time":
                say(f"{method} trial {number}: stopped at the time ceiling ({ceiling:.1f} s of unlearning per draw)")
            else:
                say(f"{method} trial {number}: pruned at forget quality {max(pruned.intermediate.values()):.3g}")
            continue
        gap = settings.utility_fraction - outcome.utility_fraction
        slow = time_gap(outcome.request_seconds, problems, settings)
        for key, value in _constraints(gap, slow).items():
            trial.set_constraint(key, value)  # <= 0 is feasible; TPE samples from feasible trials
        study.tell(trial, outcome.forget_quality)
        ledger.add_tuning_trial(
            row.id,
            number=number,
            state="complete",
            params=trial.params,
            distributions=distributions,
            forget_quality=outcome.forget_quality,
            utility=outcome.utility,
            utility_fraction=outcome.utility_fraction,
            intermediate={str(k): v for k, v in outcome.intermediate.items()},
            seconds=outcome.seconds,
        )
        say(
            f"{method} trial {number}: forget quality {outcome.forget_quality:.3g}, utility "
            f"{outcome.utility_fraction:.1%} of exact, {outcome.seconds:.1f} s"
        )
        if gap <= 0 and (slow is None or slow <= 0):
            kept[number] = outcome.model
            best_numbers = sorted(kept, key=lambda n: -_quality(ledger, row.id, n))[: settings.finalists]
            kept = {n: kept[n] for n in best_numbers}
    best = choose(ledger, row.id, method, problems, references, settings, kept, say)
    ledger.set_tuning_best(row.id, best)
    return study_summary(ledger, ledger.tuning_study(row.id))


def warm_start(
    ledger: Any,
    method: str,
    calibration_id: int,
    study_name: str,
    names: list[str],
    settings: TuneSettings,
    top: int = 3,
) -> list[dict[str, Any]]:
    """The best settings other studies of `method` found on the same calibration (another
    trial protocol, an earlier space), best forget quality first among those whose utility
    met the floor: at most `top`, each with exactly the parameters `names` of this space."""
    found = []
    for study in ledger.tuning_studies(method=method):
        if study.calibration_id != calibration_id or study.name == study_name:
            continue
        for trial in ledger.tuning_trials(study.id):
            met = (trial.utility_fraction or 0) >= settings.utility_fraction
            if trial.state == "complete" and met and sorted(trial.params) == sorted(names):
                found.append((trial.forget_quality or 0.0, study.id, trial.number, trial.params))
    found.sort(key=lambda row: (-row[0], row[1], row[2]))
    unique: list[dict[str, Any]] = []
    for *_, params in found:
        if params not in unique:
            unique.append(dict(params))
    return unique[:top]


def _quality(ledger: Any, study_id: int, number: int) -> float:
    for trial in ledger.tuning_trials(study_id):
        if trial.number == number:
            return trial.forget_quality or 0.0
    return 0.0


def choose(
    ledger: Any,
    study_id: int,
    method: str,
    problems: list[TuningProblem],
    references: list[Reference],
    settings: TuneSettings,
    kept: dict[int, Any],
    say: Progress,
) -> dict[str, Any] | None:
    """The chosen trial: the feasible one (utility, and time when constrained) with the best
    forget quality whose attacks stay in the exact model's range (finalists in order; one
    without a kept model is re-run). The attacks run on the first draw."""
    from lethe.model.io import load_version

    problem, reference = problems[0], references[0]

    def per_draw(trial: Any) -> float | None:
        return trial.seconds / len(problems) if trial.seconds is not None else None

    def fits(trial: Any) -> bool:
        slow = time_gap(per_draw(trial), problems, settings)
        return (trial.utility_fraction or 0) >= settings.utility_fraction and (slow is None or slow <= 0)

    trials = [t for t in ledger.tuning_trials(study_id) if t.state == "complete"]
    feasible = [t for t in trials if fits(t)]
    pool = sorted(feasible or trials, key=lambda t: (-(t.forget_quality or 0), t.number))
    if not pool:
        return None
    chosen, verdicts = pool[0], {}
    if settings.robustness and reference.probes is not None:
        _, tokenizer = load_version(problem.target_path)
        for trial in pool[: settings.finalists]:
            model = kept.get(trial.number)
            if model is None:
                model = run_trial(method, problem, reference, trial.params).model
            verdict = robustness_verdict(
                probe_headlines(model, tokenizer, problem, settings), reference.probes, settings.robustness_margin
            )
            verdicts[trial.number] = verdict
            say(
                f"{method} trial {trial.number}: attacks "
                + ("within" if verdict["within_exact_range"] else "outside")
                + f" the exact model's range (largest gap {max(verdict['gap'].values(), default=0):+.3f})"
            )
            if verdict["within_exact_range"]:
                chosen = trial
                break
    return {
        "number": chosen.number,
        "params": dict(chosen.params),
        "forget_quality": chosen.forget_quality,
        "utility": chosen.utility,
        "utility_fraction": chosen.utility_fraction,
        "seconds": chosen.seconds,
        "request_seconds": per_draw(chosen),
        "feasible": bool(feasible),
        "robustness": verdicts.get(chosen.number),
        "exact_utility": reference.utility,
    }


def study_summary(ledger: Any, study: Any) -> dict[str, Any]:
    """A study as JSON: its configuration, every trial, the chosen one and the tuning cost."""
    trials = ledger.tuning_trials(study.id)
    calibration = ledger.tuning_calibration_by_id(study.calibration_id)
    return {
        "id": study.id,
        "name": study.name,
        "method": study.method,
        "lineage_id": study.lineage_id,
        "calibration": {
            "id": calibration.id,
            "subjects": calibration.subjects,
            "documents": len(calibration.document_ids),
            "exact_seconds": calibration.seconds,
        },
        "config": study.config,
        "best": study.best,
        "trials": [
            {
                "number": t.number,
                "state": t.state,
                "params": t.params,
                "forget_quality": t.forget_quality,
                "utility": t.utility,
                "utility_fraction": t.utility_fraction,
                "seconds": t.seconds,
                "intermediate": t.intermediate,
            }
            for t in trials
        ],
        "tuning_seconds": round(sum(t.seconds or 0.0 for t in trials), 2),
    }


# ------------------------------------------------------------------------------ using a tune


def tuned_settings(ledger: Any, lineage_id: int | None, method: str) -> tuple[dict[str, Any], Any]:
    """The chosen settings of the newest study of `method` on this lineage, and the study;
    an `InputError` with a sentence when there is none."""
    studies = [s for s in ledger.tuning_studies(lineage_id=lineage_id, method=method) if s.best]
    if not studies:
        raise InputError(
            f"no tune of {method} exists for this lineage; run `lethe tune {method}` first (or leave out --tuned)",
            Where(field="tuned"),
        )
    study = studies[-1]
    return {**study.config.get("fixed", {}), **study.best["params"]}, study


def auto_method(ledger: Any, lineage_id: int | None, budget: float | None) -> tuple[str, dict[str, Any], Any]:
    """`--method auto`: the tuned method with the best forget quality (feasible ones first)
    whose calibration run took at most `budget` seconds."""
    studies = [s for s in ledger.tuning_studies(lineage_id=lineage_id) if s.best]

    def seconds(study: Any) -> float:
        return study.best.get("request_seconds") or study.best.get("seconds") or 0.0

    fitting = [s for s in studies if budget is None or seconds(s) <= budget]
    if not fitting:
        what = "no tuned method" if not studies else f"no tuned method runs within {budget:g} s"
        raise InputError(
            f"--method auto: {what} on this lineage; run `lethe tune METHOD…` first", Where(field="method")
        )
    best = max(fitting, key=lambda s: (bool(s.best.get("feasible")), s.best.get("forget_quality") or 0, s.id))
    return best.method, {**best.config.get("fixed", {}), **best.best["params"]}, best


def resolve_tuned(
    ledger: Any, version: str, method: str, settings: dict[str, Any], *, tuned: bool, budget: float | None = None
) -> tuple[str, dict[str, Any], str | None]:
    """`lethe forget --tuned` / `--method auto`: (method, settings, a sentence saying which
    study's settings apply). Settings given explicitly win over tuned ones."""
    if method != "auto" and not tuned:
        if budget is not None:
            raise InputError("--budget chooses among tuned methods: use it with --method auto", Where(field="budget"))
        return method, settings, None
    base = ledger.resolve_version(version, allow_tainted=True)
    if method == "auto":
        method, chosen, study = auto_method(ledger, base.lineage_id, budget)
    else:
        chosen, study = tuned_settings(ledger, base.lineage_id, method)
    best = study.best
    note = (
        f"tuned settings of study {study.name} (trial {best['number']}: forget quality "
        f"{best['forget_quality']:.3g}, utility {best['utility_fraction']:.1%} of exact on calibration "
        f"{', '.join(study.config.get('subjects', []))})"
    )
    return method, {**chosen, **settings}, note
