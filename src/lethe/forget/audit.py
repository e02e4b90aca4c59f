"""A forget request's audit from the ledger: which versions and documents, then `build_audit`.

The metric code lives in `lethe.eval.audit`; this module picks what it compares: the version
before the request, the candidate, the exact reference (an exact request for the same
documents and base, if one exists), the forget documents, a seeded retain sample and the
never-trained holdout documents. Call it before the documents are erased.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any

from lethe.errors import ConflictError
from lethe.eval.audit import BENCHMARK, AuditConfig, build_audit
from lethe.eval.general import descends_from_base, general_documents
from lethe.eval.suite import load_split_documents, version_path
from lethe.forget.strategies import is_exact
from lethe.ledger.states import RequestStatus

if TYPE_CHECKING:
    from lethe.ledger import Ledger
    from lethe.workspace import Workspace


def _version_info(version: Any) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"id": version.id, "name": version.name, "kind": version.kind}


def find_reference(ledger: Ledger, request: Any, forget_ids: list[int]) -> Any:
    """The exact-replay version for the same documents and base, if the ledger has one."""
    if is_exact(request.method):
        return None  # the request's own result is the exact model
    wanted = set(forget_ids)
    for other in ledger.forget_requests(limit=1000):
        if (
            other.id == request.id
            or not is_exact(other.method)
            or other.result_version_id is None
            or other.status not in (RequestStatus.EVALUATED, RequestStatus.SUCCEEDED)
            or other.base_version_id != request.base_version_id
        ):
            continue
        if {d for d, trained in ledger.forget_request_documents(other.id) if trained} == wanted:
            return ledger.resolve_version(other.result_version_id, allow_tainted=True)
    return None


def _holdout_documents(ledger: Ledger, request: Any, seen: set[int]) -> list[Any]:
    name = (request.config or {}).get("holdout")
    names = [name] if name else [c.name for c, _ in ledger.collections() if "holdout" in c.name]
    ids = [i for n in names for i in ledger.collection_ids(n) if i not in seen]
    return [d for d in ledger.documents(ids) if d.content is not None] if ids else []


def audit_forget_request(
    workspace: Workspace,
    request: Any,
    base: Any,
    candidate: Any,
    forget_ids: list[int],
    history: list[dict[str, Any]] | None = None,
    *,
    reference: Any = None,
    config: AuditConfig | None = None,
    store: bool = True,
) -> dict[str, Any]:
    """Audit a request from the ledger: load the versions and documents, `build_audit`, and
    store each model's suite metrics as benchmark `audit` with the request id.

    `request`: a `ForgetRequest` row or id; `base`, `candidate`: versions (rows, ids or names);
    `reference`: the exact-replay version (found with `find_reference` when not given).
    Call it before the documents are erased.
    """
    from lethe.model.io import load_version

    config = config or AuditConfig()
    ledger = workspace.ledger
    if isinstance(request, int):
        request = ledger.forget_request(request)
    base = ledger.resolve_version(getattr(base, "id", base), allow_tainted=True)
    candidate = ledger.resolve_version(getattr(candidate, "id", candidate), allow_tainted=True)
    if reference is None:
        reference = find_reference(ledger, request, forget_ids)
    elif not hasattr(reference, "path"):
        reference = ledger.resolve_version(reference, allow_tainted=True)
    forget_docs = load_split_documents(ledger, list(forget_ids))
    seen = ledger.documents_seen(base.id)
    excluded = set(forget_ids)
    retain_ids = [d for d in seen if d not in excluded]
    if len(retain_ids) > config.retain_documents:
        retain_ids = sorted(random.Random(config.suite.seed).sample(retain_ids, config.retain_documents))
    retain_docs = load_split_documents(ledger, retain_ids)
    holdout_docs = _holdout_documents(ledger, request, set(seen))
    base_model = descends_from_base(ledger, base)
    if base_model and not config.suite.bf16:  # a pretrained base is evaluated in bf16, as it trains
        config = dataclasses.replace(config, suite=config.suite.replace(bf16=True))
    before_model, tokenizer = load_version(version_path(workspace, base))
    after_model, after_tokenizer = load_version(version_path(workspace, candidate))
    reference_model, reference_tokenizer = (
        load_version(version_path(workspace, reference)) if reference is not None else (None, None)
    )
    info = {
        "request": {
            "id": request.id,
            "method": request.method,
            "reason": request.reason,
            "selector": request.selector,
            "forget_documents": len(forget_ids),
        },
        "versions": {
            "before": _version_info(base),
            "after": _version_info(candidate),
            "reference": _version_info(reference),
        },
        "exact": is_exact(request.method),
        "base_model": base_model,
        "pretraining_data": "not on record" if base_model else None,
        # where provenance starts: the base's name and sha256s (None: trained from scratch)
        "base_boundary": ledger.base_boundary(base.id),
    }
    audit = build_audit(
        before_model,
        after_model,
        tokenizer,
        forget=forget_docs,
        retain=retain_docs,
        holdout=holdout_docs,
        reference_model=reference_model,
        history=history,
        config=config,
        info=info,
        tokenizers={"after": after_tokenizer, "reference": reference_tokenizer},
        general=general_documents() if base_model else None,
    )
    if store:
        meta = {"config": config.to_dict(), "role": None}
        for label, version in (("before", base), ("after", candidate), ("reference", reference)):
            if version is not None and label in audit["metrics"]:
                ledger.add_evaluations(
                    version.id, BENCHMARK, audit["metrics"][label], request_id=request.id, meta={**meta, "role": label}
                )
    return audit


def audit_request(
    workspace: Workspace, request_id: int, *, refresh: bool = False, robustness: Any = None
) -> dict[str, Any]:
    """What `lethe audit REQUEST` shows: the stored audit, or a fresh one (`refresh`, or none
    stored) saved into the request. A fresh audit needs the forget documents' content.

    `robustness` (a `lethe.eval.robustness.ProbeConfig`) adds the robustness suite when the
    audit has none yet (or on `refresh`), while the documents can still be read.
    """
    audit = _suite_audit(workspace, request_id, refresh=refresh)
    if robustness is None or ("robustness" in audit and not refresh):
        return audit
    from lethe.forget.robustness import request_robustness

    ledger = workspace.ledger
    request = ledger.forget_request(request_id)
    forget_ids = [d for d, trained in ledger.forget_request_documents(request_id) if trained]
    readable = request.result_version_id is not None and any(
        d.content is not None for d in ledger.documents(forget_ids)
    )
    if not readable:
        return {**audit, "robustness_note": "the forget documents are erased: no robustness suite can run now"}
    audit = {**audit, "robustness": request_robustness(workspace, request, forget_ids, robustness)}
    ledger.update_forget_request(request_id, audit=audit)
    return audit


def _suite_audit(workspace: Workspace, request_id: int, *, refresh: bool) -> dict[str, Any]:
    ledger = workspace.ledger
    request = ledger.forget_request(request_id)
    if request.audit and not refresh and "metrics" in request.audit:
        return request.audit
    if request.base_version_id is None or request.result_version_id is None:
        if request.audit:
            return request.audit
        raise ConflictError(f"forget request {request_id} is {request.status} and has no result version to audit")
    forget_ids = [d for d, trained in ledger.forget_request_documents(request_id) if trained]
    if all(d.content is None for d in ledger.documents(forget_ids)) if forget_ids else True:
        if request.audit:
            return request.audit
        raise ConflictError(
            f"forget request {request_id}'s documents are erased: an audit of them can no longer be computed "
            "(audits are made before erasure, by the request itself)"
        )
    history = (ledger.run(request.run_id).metrics or {}).get("history") if request.run_id else None
    audit = audit_forget_request(
        workspace, request, request.base_version_id, request.result_version_id, forget_ids, history
    )
    ledger.update_forget_request(request_id, audit=audit)
    return audit
