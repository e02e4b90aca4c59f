"""Calibration subjects of `lethe tune` and their exact answer, computed once per version.

Calibration subjects are trained entities of the same kind as the real request, but not it:
collections beside `like` (the siblings of `synth/entity/person/0007` are the other
`synth/entity/person/…`), or every `synth/entity/…` collection when no `like` is given. `k` of
them are drawn with a seeded generator (the choice is printed and recorded). Their exact
answer is what the exact strategy computes for a request (`lethe.train.pipeline.replay` of
the lineage without their documents, never published), cached in `tuning_calibrations` by
the version and the documents, so every later tune of any method on them reuses it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lethe.errors import InputError, Where

DEFAULT_PREFIX = "synth/entity/"


def subject_prefix(like: str | None) -> str:
    if like is None:
        return DEFAULT_PREFIX
    return like.rstrip("/").rsplit("/", 1)[0] + "/" if "/" in like.strip("/") else like


def choose_calibration(
    ledger: Any, version: Any, *, like: str | None, k: int, seed: int, exclude_ids: set[int] = frozenset()
) -> tuple[list[str], list[int]]:
    """(subjects, their trained document ids): `k` collections of the same kind as `like`
    that the version trained on, never `like` itself nor any holding an excluded document."""
    if k < 1:
        raise InputError("--calibration must be at least 1", Where(field="calibration"))
    prefix = subject_prefix(like)
    excluded = set(exclude_ids)
    if like is not None:
        if not any(c.name == like for c, _ in ledger.collections()):
            raise InputError(f"no collection {like!r}; `lethe data ls` lists them", Where(field="like"))
        excluded |= set(ledger.collection_ids(like))
    candidates = {}
    for collection, _count in ledger.collections():
        name = collection.name
        if not name.startswith(prefix) or name == like:
            continue
        ids = set(ledger.collection_ids(name))
        if ids & excluded:
            continue
        trained = ledger.documents_seen(version.id, candidates=sorted(ids))
        if trained:
            candidates[name] = sorted(trained)
    if len(candidates) < k:
        raise InputError(
            f"--calibration {k}: only {len(candidates)} trained collections under {prefix!r} besides the request "
            "(pass --like with a collection of the kind to forget, or a smaller --calibration)",
            Where(field="calibration"),
        )
    chosen = sorted(random.Random(f"calibration-{seed}").sample(sorted(candidates), k))
    return chosen, sorted({i for name in chosen for i in candidates[name]})


def calibration_exact(
    workspace: Any, version: Any, subjects: list[str], document_ids: list[int], *, callback: Any = None
) -> Any:
    """The cached exact answer for these documents of this version (a `TuningCalibration`),
    computed by the exact strategy's replay when there is none yet."""
    from lethe.train.pipeline import replay

    ledger = workspace.ledger
    row = ledger.tuning_calibration(version.id, document_ids)
    if row is not None:
        return row
    started = time.perf_counter()
    versions = replay(
        workspace,
        version.lineage_id,
        exclude_document_ids=document_ids,
        publish=False,
        aliases=(),
        callback=callback or (lambda _event: None),
    )
    return ledger.add_tuning_calibration(
        version_id=version.id,
        subjects=subjects,
        document_ids=document_ids,
        exact_version_id=versions[-1].id,
        seconds=time.perf_counter() - started,
        meta={"replay_versions": [v.name for v in versions]},
    )


def workspace_problem(
    workspace: Any, version: Any, calibration: Any, *, fixed: dict[str, Any], eval_items: int, seed: int
) -> Any:
    """The `TuningProblem` of a calibration in a workspace (examples encoded as the lineage trained)."""
    from lethe.data.tokenizer import load_tokenizer
    from lethe.eval.suite import version_path
    from lethe.eval.tofu import TofuEvalConfig
    from lethe.forget.strategies.approximate import RETAIN_CAP, training_examples
    from lethe.forget.tuning import TuningProblem
    from lethe.train.config import lineage_config

    ledger = workspace.ledger
    exact = ledger.resolve_version(calibration.exact_version_id, allow_tainted=True)
    target_path = Path(version_path(workspace, version))
    tokenizer = load_tokenizer(target_path)
    train_config = lineage_config(ledger, version.lineage_id)
    forbidden = set(calibration.document_ids)
    retain_ids = [d for d in ledger.documents_seen(version.id) if d not in forbidden]
    random.Random(seed).shuffle(retain_ids)
    retain_docs = [d for d in ledger.documents(sorted(retain_ids[:RETAIN_CAP])) if d.forgotten_at is None]
    forget_docs = [d for d in ledger.documents(calibration.document_ids) if d.forgotten_at is None]
    examples_of: Callable = lambda documents, t: training_examples(documents, t, train_config)
    return TuningProblem(
        target_path=target_path,
        exact_path=Path(version_path(workspace, exact)),
        exact_seconds=calibration.seconds,
        forget_examples=training_examples(forget_docs, tokenizer, train_config),
        retain_examples=training_examples(retain_docs, tokenizer, train_config),
        forget_documents=[d for d in forget_docs if d.kind == "qa"],
        retain_documents=[d for d in retain_docs if d.kind == "qa"],
        eval_config=TofuEvalConfig(max_items=eval_items, seed=seed, max_new_tokens=48),
        examples_of=examples_of,
        fixed=fixed,
        subjects=list(calibration.subjects),
    )
