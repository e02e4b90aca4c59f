"""The robustness suite of a forget request: the candidate, the exact model and the target
under the same attacks, stored as benchmark `robustness` rows of each version.

Like the rest of an audit it reads the forget documents' content, so it runs before they
are erased (`lethe forget --no-publish`, then `lethe audit N`).
"""

from __future__ import annotations

import random
from typing import Any

from lethe.eval.robustness.base import ProbeConfig, ProbeContext, default_examples
from lethe.eval.robustness.runner import BENCHMARK, evaluation_rows, run_robustness

LABELS = {"after": "candidate", "reference": "exact", "before": "target"}
"""Audit label -> the role the report names it by."""


def request_robustness(
    workspace: Any,
    request: Any,
    forget_ids: list[int],
    config: ProbeConfig | None = None,
    *,
    reference: Any = None,
    retain_documents: int = 200,
    store: bool = True,
) -> dict[str, Any]:
    """Run the probes on a request's candidate, its exact reference (found in the ledger
    when not given) and its base version; store each model's rows; return the result."""
    from lethe.eval.suite import version_path
    from lethe.forget.audit import find_reference
    from lethe.model.io import load_version
    from lethe.train.config import lineage_config

    config = config or ProbeConfig()
    ledger = workspace.ledger
    base = ledger.resolve_version(request.base_version_id, allow_tainted=True)
    candidate = ledger.resolve_version(request.result_version_id, allow_tainted=True)
    if reference is None:
        reference = find_reference(ledger, request, forget_ids)
    versions = {"after": candidate, "reference": reference, "before": base}
    models, tokenizer = {}, None
    for label, version in versions.items():
        if version is not None:
            models[label], own = load_version(version_path(workspace, version))
            tokenizer = tokenizer or own
    excluded = set(forget_ids)
    retain_ids = [d for d in ledger.documents_seen(base.id) if d not in excluded]
    if len(retain_ids) > retain_documents:
        retain_ids = sorted(random.Random(config.seed).sample(retain_ids, retain_documents))
    train_config = lineage_config(ledger, base.lineage_id)
    context = ProbeContext(
        tokenizer,
        forget=ledger.documents(list(forget_ids)),
        retain=ledger.documents(retain_ids),
        examples_of=lambda documents: default_examples(documents, tokenizer, train_config),
        config=config,
    )
    result = run_robustness(models, context)
    result["roles"] = {label: LABELS[label] for label in models}
    if store:
        for label, version in versions.items():
            rows = evaluation_rows(result, label)
            if version is not None and rows:
                ledger.add_evaluations(
                    version.id,
                    BENCHMARK,
                    rows,
                    request_id=request.id,
                    meta={"config": config.to_dict(), "role": label},
                )
    return result
