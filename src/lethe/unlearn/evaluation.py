"""Before/after evaluation of a forget request, stored in the ledger, and its audit.

The base version and the candidate are scored by the standard suite on the same splits:
`forget` (the trained documents of the request), `retain` (a seeded sample of what the base
saw, minus the forget set) and `holdout` (never-trained documents: the membership baseline).
When an exact-replay version of the same request exists, it is the reference the audit
compares against.
"""

from __future__ import annotations

import random

from lethe.eval.suite import SuiteConfig, evaluate_version

RETAIN_SAMPLE = 200


def request_splits(ledger, request, base, trained_ids: list[int], holdout: str | None = None) -> dict:
    seen = ledger.documents_seen(base.id)
    forget = set(trained_ids)
    retain = [d for d in seen if d not in forget]
    random.Random(0).shuffle(retain)
    splits: dict = {"forget": list(trained_ids), "retain": sorted(retain[:RETAIN_SAMPLE])}
    names = [holdout] if holdout else [c.name for c, _ in ledger.collections() if c.name.endswith("holdout")]
    holdout_ids = [i for n in names for i in ledger.collection_ids(n)]
    if holdout_ids:
        splits["holdout"] = holdout_ids
    return splits


def exact_reference(ledger, request) -> object | None:
    """The result of an earlier exact replay for the same documents, if one succeeded."""
    mine = {d for d, _ in ledger.forget_request_documents(request.id)}
    for other in ledger.forget_requests(limit=1000):
        if other.id == request.id or other.method != "exact" or other.result_version_id is None:
            continue
        if other.status not in ("evaluated", "succeeded"):
            continue
        if {d for d, _ in ledger.forget_request_documents(other.id)} == mine:
            return ledger.resolve_version(other.result_version_id, allow_tainted=True)
    return None


def evaluate_request(workspace, request, base, candidate, trained_ids: list[int], history: list[dict],
                     config: SuiteConfig | None = None) -> dict:
    """Score base and candidate (and the exact reference, when there is one); return the audit."""
    ledger = workspace.ledger
    holdout = (request.config or {}).get("holdout")
    splits = request_splits(ledger, request, base, trained_ids, holdout)
    config = config or SuiteConfig(max_items=100)
    kwargs = dict(forget=splits["forget"], retain=splits["retain"], holdout=splits.get("holdout"),
                  config=config, allow_tainted=True, request_id=request.id)
    before = evaluate_version(workspace, base.id, **kwargs)
    after = evaluate_version(workspace, candidate.id, **kwargs)
    reference = exact_reference(ledger, request)
    exact = evaluate_version(workspace, reference.id, **kwargs) if reference is not None else None
    from lethe.eval.audit import build_audit

    return build_audit(workspace, request=request, base=base, candidate=candidate, before=before, after=after,
                       exact=exact, history=history, forget_ids=splits["forget"])
