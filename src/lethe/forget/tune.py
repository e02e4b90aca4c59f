"""`lethe tune` in a workspace: calibration, its exact answer (cached) and one study per method."""

from __future__ import annotations

from typing import Any

from lethe.errors import InputError, Where
from lethe.forget.tuning import Progress, TuneSettings, exact_references, study_summary, tune_method


def tune(
    workspace: Any,
    methods: list[str],
    *,
    version: str = "latest",
    like: str | None = None,
    calibration: int = 3,
    draws: int = 1,
    settings: TuneSettings | None = None,
    fixed: dict[str, Any] | None = None,
    eval_items: int = 60,
    study: str | None = None,
    progress: Progress | None = None,
    callback: Any = None,
) -> list[dict[str, Any]]:
    """Tune each method against the exact replay of calibration subjects; the study summaries.

    A study is named `<lineage>-<method>-c<calibration id>` unless `study` is given (one
    method only); calling again with the same arguments resumes it (trial numbers continue).
    With `draws` > 1, `calibration` x `draws` subjects are drawn and dealt into disjoint draws,
    each with its own exact replay; every trial is judged on all of them pooled.
    """
    from lethe.forget.calibration import calibration_exact, choose_calibration, workspace_problem
    from lethe.forget.strategies import strategy_for
    from lethe.forget.tuning_space import space_for
    from lethe.unlearn.config import UnlearnConfig

    settings = settings or TuneSettings()
    say = progress or (lambda _m: None)
    if not methods:
        raise InputError("name at least one method to tune, e.g. `lethe tune npo`", Where(field="method"))
    for method in methods:
        if strategy_for(method).exact:
            raise InputError(f"{method!r} is the exact answer itself: nothing to tune", Where(field="method"))
        space_for(method)
    if study is not None and len(methods) > 1:
        raise InputError("--study names one study: tune one method with it", Where(field="study"))
    fixed = {"seed": settings.seed, **(fixed or {})}
    UnlearnConfig.from_dict(fixed)  # unknown settings are refused before any work
    ledger = workspace.ledger
    base = ledger.resolve_version(version)
    if draws < 1:
        raise InputError("--draws must be at least 1", Where(field="draws"))
    everyone, _ = choose_calibration(ledger, base, like=like, k=calibration * draws, seed=settings.seed)
    rows, problems = [], []
    for d in range(draws):
        subjects = everyone[d::draws]
        document_ids = sorted({i for name in subjects for i in ledger.collection_ids(name)})
        document_ids = sorted(ledger.documents_seen(base.id, candidates=document_ids))
        say(
            f"calibration subjects (seeded, not the request){f' draw {d + 1}/{draws}' if draws > 1 else ''}: "
            f"{', '.join(subjects)} ({len(document_ids)} documents)"
        )
        row = ledger.tuning_calibration(base.id, document_ids)
        if row is None:
            say("exact replay of the calibration subjects (once; cached for every later tune)")
        else:
            say(f"exact replay of the calibration cached (calibration {row.id}, {row.seconds:.1f} s when computed)")
        row = calibration_exact(workspace, base, subjects, document_ids, callback=callback)
        rows.append(row)
        problems.append(workspace_problem(workspace, base, row, fixed=fixed, eval_items=eval_items, seed=settings.seed))
    references = exact_references(problems, settings)
    row = rows[0]
    lineage = ledger.lineage(base.lineage_id).name if base.lineage_id else "lineage"
    summaries = []
    for method in methods:
        name = study or f"{lineage}-{method}-c{'+'.join(str(r.id) for r in rows)}"
        summaries.append(
            tune_method(
                ledger,
                method,
                problems,
                settings,
                study_name=name,
                calibration_id=row.id,
                lineage_id=base.lineage_id,
                progress=say,
                reference=references,
            )
        )
    return summaries


def show_study(workspace: Any, ref: str | int) -> dict[str, Any]:
    ledger = workspace.ledger
    return study_summary(ledger, ledger.tuning_study(ref))
