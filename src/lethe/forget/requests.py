"""Forget requests, end to end: resolve, unlearn, evaluate, publish, taint, erase.

The order is what makes a request safe to fail at any point:

1. `create_request` resolves the selector to documents (all revisions) and records which of
   them the base version actually trained on.
2. `run_request` unlearns into a *candidate* version (approximate method, or exact replay
   from the last clean checkpoint), evaluates base and candidate, and builds the audit.
3. `publish_request` (run by `run_request` unless asked not to) moves `latest`, taints every
   other version and checkpoint that saw the documents, erases their content, and optionally
   purges tainted weights. Until then nothing is erased, and a failure at any step leaves the
   request `failed` with its error, the previous version untouched and the ledger consistent.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lethe.errors import CancelledError, ConflictError, InputError
from lethe.forget.cleanup import abandon_request, candidates_of
from lethe.forget.erasure import compact_after_commit, erase_for_request, record_scan, record_tokenizer_purge
from lethe.forget.mentions import mentions_for_request, recorded
from lethe.forget.name_guard import guard_config
from lethe.forget.selectors import Selector, redact_selector, resolve
from lethe.forget.strategies import StrategyContext, strategy_for
from lethe.forget.strategies.base import RECORDED_KEYS
from lethe.forget.tokenizer_purge import purge_old_tokenizer, taint_tokenizer_users
from lethe.killpoints import kill_point
from lethe.ledger.states import RequestStatus, RunKind, RunStatus
from lethe.train import distributed

if TYPE_CHECKING:
    from lethe.eval.suite import SuiteConfig
    from lethe.ledger import Ledger
    from lethe.ledger.schema import ForgetRequest
    from lethe.workspace import Workspace


@dataclass
class ForgetOutcome:
    """What a forget request produced."""

    request_id: int
    status: str
    version: str | None = None
    trained_documents: int = 0
    untrained_documents: int = 0
    audit: dict | None = None
    tainted: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    tokenizer: dict | None = None
    """What the result's tokenizer keeps of the documents (`lethe.train.tokenizers.tokenizer_leak`)."""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def create_request(
    workspace: Workspace,
    selector: Selector,
    *,
    method: str,
    config: dict | None = None,
    reason: str | None = None,
    requester: str | None = None,
    version: str = "latest",
    holdout: str | None = None,
    mentions: str | None = None,
    mention_choices: dict | None = None,
    name_guard: dict | None = None,
) -> int:
    """Record a forget request for what `selector` names; raises if it names nothing.

    `mentions` (`redact`, `drop` or `keep`; default `redact` with a search selector, else
    `keep`) and `mention_choices` decide what happens to other documents naming the subject
    (`lethe.forget.mentions`). Unless the mode is `keep` the request keeps a name guard for
    later ingests (`lethe.forget.name_guard`); `name_guard` carries an earlier request's over."""
    strategy_for(method).check(config or {})
    ledger = workspace.ledger
    # Before any model exists there is nothing to unlearn: the request only erases.
    no_model = version == "latest" and "latest" not in ledger.aliases() and not ledger.list_versions()
    base = None if no_model else ledger.resolve_version(version, allow_tainted=True)
    document_ids = resolve(ledger, selector)
    named = resolve(ledger, replace(selector, search=None)) if selector.docs or selector.collection else []
    found, document_ids, names = mentions_for_request(
        ledger, document_ids, search=selector.search, named=named, mode=mentions, choices=mention_choices
    )
    if not document_ids:
        raise InputError("every document the selector matches is a mention kept as it is; nothing to forget")
    guard = name_guard or guard_config(workspace.home, names, mentions or ("redact" if selector.search else "keep"))
    trained = ledger.documents_seen(base.id, candidates=document_ids) if base else []
    return ledger.create_forget_request(
        selector=selector.as_dict(),
        document_ids=document_ids,
        trained_ids=trained,
        method=method,
        config={
            **(config or {}),
            "holdout": holdout,
            "mentions": recorded(found),
            **({"name_guard": guard} if guard else {}),
        },
        reason=reason,
        requester=requester,
        base_version_id=base.id if base else None,
    )


def run_request(
    workspace: Workspace,
    request_id: int,
    *,
    publish: bool = True,
    purge: bool = False,
    callback: Callable | None = None,
    cancel=None,
    evaluate: bool = True,
    suite: SuiteConfig | None = None,
) -> ForgetOutcome:
    """Run a pending request with its method; publish the result unless `publish=False`."""
    ledger = workspace.ledger
    request = ledger.forget_request(request_id)
    if request.status not in (RequestStatus.PENDING, RequestStatus.FAILED):
        raise ConflictError(f"forget request {request_id} is {request.status}; only pending or failed ones run")
    started = time.perf_counter()
    pairs = ledger.forget_request_documents(request_id)
    trained_ids = [d for d, trained in pairs if trained]
    outcome = ForgetOutcome(
        request_id,
        RequestStatus.RUNNING,
        trained_documents=len(trained_ids),
        untrained_documents=len(pairs) - len(trained_ids),
    )
    base = (
        ledger.resolve_version(request.base_version_id, allow_tainted=True)
        if request.base_version_id is not None
        else None
    )
    run_id = ledger.start_run(
        RunKind.UNLEARN,
        lineage_id=base.lineage_id if base else None,
        parent_version_id=base.id if base else None,
        config={"method": request.method, **(request.config or {}), "request_id": request_id},
        seed=(request.config or {}).get("seed", 0),
        world_size=distributed.world_size(),
    )
    ledger.update_forget_request(request_id, status=RequestStatus.RUNNING, run_id=run_id)
    try:
        if not trained_ids:
            # Nothing to unlearn: the lineage never trained on these documents. Erase only.
            outcome.tokenizer = _tokenizer_leak(workspace, base, [d for d, _ in pairs]) if base else None
            with ledger.transaction():
                ledger.finish_run(run_id, RunStatus.SUCCEEDED, metrics={"note": "no trained documents; erased only"})
                ledger.update_forget_request(
                    request_id,
                    status=RequestStatus.SUCCEEDED,
                    audit={"note": "never trained; erased only", "tokenizer": _without_examples(outcome.tokenizer)},
                )
                strings = _erase(ledger, request, [d for d, _ in pairs])
            compact_after_commit(ledger, request_id)
            record_scan(workspace, request_id, strings)
            outcome.status = RequestStatus.SUCCEEDED
            return outcome
        made = strategy_for(request.method).unlearn(
            StrategyContext(
                workspace=workspace,
                request=request,
                base=base,
                trained_ids=trained_ids,
                run_id=run_id,
                callback=callback,
                cancel=cancel,
            )
        )
        candidate, history = made.version, made.history
        # Recorded before the audit, so that a failure from here on discards the candidate.
        ledger.update_forget_request(request_id, result_version_id=candidate.id)
        kill_point("forget.candidate")
        audit = None
        if evaluate:
            from lethe.eval.audit import AuditConfig
            from lethe.forget.audit import audit_forget_request

            audit = audit_forget_request(
                workspace,
                request,
                base,
                candidate,
                trained_ids,
                history,
                config=AuditConfig(suite=suite) if suite is not None else None,
            )
        outcome.tokenizer = _tokenizer_leak(workspace, candidate, [d for d, _ in pairs])
        if audit is not None:
            audit["tokenizer"] = outcome.tokenizer
        with ledger.transaction():
            ledger.finish_run(
                run_id,
                RunStatus.SUCCEEDED,
                metrics={"history": history[-500:], "tokenizer": _without_examples(outcome.tokenizer)},
            )
            ledger.update_forget_request(
                request_id, result_version_id=candidate.id, audit=audit, status=RequestStatus.EVALUATED
            )
        kill_point("forget.evaluated")
        outcome.version, outcome.audit, outcome.status = candidate.name, audit, RequestStatus.EVALUATED
    except CancelledError as error:
        abandon_request(ledger, request_id, RequestStatus.CANCELLED, str(error))
        outcome.status = RequestStatus.CANCELLED
        raise
    except BaseException as error:
        abandon_request(
            ledger,
            request_id,
            RequestStatus.FAILED,
            f"{type(error).__name__}: {error}",
            detail=traceback.format_exc(limit=8),
        )
        outcome.status = RequestStatus.FAILED
        raise
    finally:
        outcome.seconds = time.perf_counter() - started
    if publish:
        # Outside the cleanup above: a publish that fails rolls back as a whole and leaves the
        # request evaluated, its candidate intact, to publish (or rebase, or discard) later.
        outcome = publish_request(workspace, request_id, purge=purge, outcome=outcome)
        outcome.seconds = time.perf_counter() - started
    return outcome


def _tokenizer_leak(workspace, version, document_ids: list[int]) -> dict:
    """What `version`'s tokenizer keeps of the documents (before they are erased)."""
    from lethe.data.tokenizer import load_tokenizer
    from lethe.train.tokenizers import tokenizer_leak

    lineage = workspace.ledger.lineage(version.lineage_id) if version.lineage_id is not None else None
    tokenizer_id = (lineage.config or {}).get("tokenizer_id") if lineage else None
    return tokenizer_leak(workspace.ledger, tokenizer_id, document_ids, load_tokenizer(version.path))


def _without_examples(leak: dict | None) -> dict | None:
    """The leak record without the merged pieces of forgotten text, for records never redacted."""
    return {k: v for k, v in leak.items() if k != "examples"} if leak else leak


def publish_request(
    workspace: Workspace, request_id: int, *, purge: bool = False, outcome: ForgetOutcome | None = None
) -> ForgetOutcome:
    """Publish an evaluated request's version, taint what saw the documents, erase them.

    Versions, aliases, taint, erasure, redaction and the request's status change in one
    transaction: a kill at any point leaves the old state or the new one. Only purging
    weights (files) happens after the commit. A candidate built on a version that `latest`
    no longer points to is refused (a `ConflictError`): publishing it would move
    `latest` back onto an older branch and taint the newer work.
    """
    ledger = workspace.ledger
    request = ledger.forget_request(request_id)
    if request.status != RequestStatus.EVALUATED or request.result_version_id is None:
        raise ConflictError(f"forget request {request_id} is {request.status}; only evaluated requests publish")
    check_current(ledger, request)
    pairs = ledger.forget_request_documents(request_id)
    outcome = outcome or ForgetOutcome(request_id, RequestStatus.EVALUATED, trained_documents=sum(t for _, t in pairs))
    result = ledger.resolve_version(request.result_version_id, allow_tainted=True)
    reason = f"forget request {request_id}" + (f": {request.reason}" if request.reason else "")
    with ledger.transaction():
        # An exact replay registers a version per replayed slice: publish them all (aliases go
        # to the last), so their checkpoints become the lineage's clean state for later replays.
        for other in candidates_of(ledger, request_id):
            if other.id != result.id:
                ledger.publish_version(other.id, aliases=())
        version = ledger.publish_version(result.id)
        kill_point("publish.versions")
        tainted = ledger.taint([d for d, trained in pairs if trained], reason=reason, keep=[version.id])
        kill_point("publish.tainted")
        strings = _erase(ledger, request, [d for d, _ in pairs])
        kill_point("publish.erased")
        ledger.update_forget_request(request_id, status=RequestStatus.SUCCEEDED)
    kill_point("publish.committed")
    compact_after_commit(ledger, request_id)
    from lethe.eval.audit import redact_tokenizer_leak

    outcome.audit = _redacted_audit(outcome.audit, redact_selector(request.selector))
    outcome.tokenizer = redact_tokenizer_leak(outcome.tokenizer)
    outcome.tainted = [v.name for v in tainted]
    old_tokenizer = _retokenized_from(ledger, request, result)
    if purge and old_tokenizer is not None:
        tainted += taint_tokenizer_users(ledger, old_tokenizer, reason=f"{reason} (tokenizer)", keep=[version.id])
        outcome.tainted = [v.name for v in tainted]
    if purge:
        outcome.purged = purge_tainted(workspace, tainted)
    if purge and old_tokenizer is not None:
        record_tokenizer_purge(ledger, request_id, purge_old_tokenizer(workspace, old_tokenizer))
    record_scan(workspace, request_id, strings)
    outcome.status, outcome.version = RequestStatus.SUCCEEDED, version.name
    return outcome


def is_current(ledger: Ledger, request: ForgetRequest) -> bool:
    """Whether the request was made on the version `latest` points to now (or there is none)."""
    aliases = ledger.aliases()
    return request.base_version_id is None or "latest" not in aliases or aliases["latest"] == request.base_version_id


def check_current(ledger: Ledger, request: ForgetRequest) -> None:
    """Refuse to publish a candidate built on a version that `latest` no longer points to.

    Publishing moves `latest` to the candidate and taints every other version that saw the
    documents, so a candidate branched off an older version would silently undo the newer
    work (a later update, another request's clean version). The request can be re-applied
    to the current version instead (`rebase_request`).
    """
    if is_current(ledger, request):
        return
    aliases = ledger.aliases()
    base = ledger.resolve_version(request.base_version_id, allow_tainted=True)
    latest = ledger.resolve_version(aliases["latest"], allow_tainted=True)
    raise ConflictError(
        f"forget request {request.id}'s candidate was built on {base.name}, but `latest` is now {latest.name}: "
        f"publishing it would move `latest` back to an older branch and taint the newer work. "
        f"Re-apply the request to {latest.name} with `lethe requests publish {request.id} --rebase` "
        f"(or discard it: `lethe requests discard {request.id}`)"
    )


def rebase_request(
    workspace: Workspace,
    request_id: int,
    *,
    publish: bool = True,
    purge: bool = False,
    callback: Callable | None = None,
    evaluate: bool = True,
) -> ForgetOutcome:
    """Re-apply an evaluated request whose base is no longer `latest` to the current version.

    A new request names the same documents with the same method and settings on `latest`
    and runs (and, with `publish`, publishes); the old one's candidates are discarded and it
    ends `cancelled`, saying which request replaced it. Returns the new request's outcome.
    """
    ledger = workspace.ledger
    request = ledger.forget_request(request_id)
    if request.status != RequestStatus.EVALUATED:
        raise ConflictError(f"forget request {request_id} is {request.status}; only evaluated requests rebase")
    documents = [str(d) for d, _ in ledger.forget_request_documents(request_id)]
    settings = {k: v for k, v in (request.config or {}).items() if k not in RECORDED_KEYS}
    new_id = create_request(
        workspace,
        Selector(docs=documents),  # the documents it resolved to, mentions decided already
        method=request.method,
        config=settings,
        reason=request.reason,
        requester=request.requester,
        holdout=(request.config or {}).get("holdout"),
        mentions="keep",
        name_guard=(request.config or {}).get("name_guard"),  # the subject's names stay guarded
    )
    with ledger.transaction():
        for version in candidates_of(ledger, request_id):
            ledger.discard_version(version.id)
        ledger.update_forget_request(
            request_id,
            status=RequestStatus.CANCELLED,
            error=f"rebased: re-applied to `latest` as forget request {new_id}",
        )
    return run_request(workspace, new_id, publish=publish, purge=purge, callback=callback, evaluate=evaluate)


def _erase(ledger: Ledger, request: ForgetRequest, document_ids: list[int]):
    """Erase the request's documents and redact what quotes them, inside the caller's
    transaction; the forgotten strings, for the workspace scan after the commit."""
    _redact_requests_covering(ledger, set(document_ids))
    _, strings = erase_for_request(ledger, request, document_ids)
    return strings


def _retokenized_from(ledger, request, result) -> int | None:
    """The tokenizer a retokenized replay replaced (None when the request did not retokenize)."""
    if not (request.config or {}).get("retokenize") or result.lineage_id is None:
        return None
    new = ledger.lineage(result.lineage_id).config or {}
    old = new.get("retokenized_from")
    return (ledger.lineage(old).config or {}).get("tokenizer_id") if old else None


def _redact_requests_covering(ledger, erased: set[int]) -> None:
    """Audits quote erased documents in their samples, and selectors may name the person:
    redact every request that covers them (the one erasing them, and any discarded or failed
    one before it)."""
    for other in ledger.forget_requests(limit=10_000):
        if not erased & {d for d, _ in ledger.forget_request_documents(other.id)}:
            continue
        selector = redact_selector(other.selector)
        if selector != other.selector:
            ledger.redact_forget_selector(other.id, selector)
        audit = _redacted_audit(other.audit, selector)
        if audit != other.audit:
            ledger.update_forget_request(other.id, audit=audit)


def _redacted_audit(audit: dict | None, selector: dict | None) -> dict | None:
    from lethe.eval.audit import redact_samples

    audit = redact_samples(audit)
    if audit and "selector" in (audit.get("request") or {}):
        audit = {**audit, "request": {**audit["request"], "selector": selector}}
    return audit


def discard_request(workspace: Workspace, request_id: int) -> None:
    """Drop an evaluated request's candidate: nothing is tainted or erased; the request is cancelled."""
    ledger = workspace.ledger
    request = ledger.forget_request(request_id)
    if request.status != RequestStatus.EVALUATED:
        raise ConflictError(f"forget request {request_id} is {request.status}; only evaluated requests discard")
    with ledger.transaction():
        for version in candidates_of(ledger, request_id):
            ledger.discard_version(version.id)
        ledger.update_forget_request(request_id, status=RequestStatus.CANCELLED, error="discarded by the user")


def purge_tainted(workspace: Workspace, versions) -> list[str]:
    """Delete the weights (and checkpoints) of tainted versions; their ledger rows stay."""
    ledger = workspace.ledger
    purged = []
    for version in versions:
        for path in [version.path] + [
            c.path for c in ledger.checkpoints(version.lineage_id, include_tainted=True) if c.version_id == version.id
        ]:
            target = Path(path)
            if target.exists() and workspace.home.resolve() in target.resolve().parents:
                shutil.rmtree(target) if target.is_dir() else target.unlink()
        ledger.mark_purged(version.id)
        purged.append(version.name)
    return purged
