"""Forget requests, evaluations and token-impact records."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select

from lethe.errors import NotFoundError
from lethe.ledger import repository
from lethe.ledger.schema import (
    Evaluation,
    Event,
    ForgetRequest,
    ForgetRequestDocument,
    TokenImpact,
    utcnow,
)
from lethe.ledger.states import FINISHED_REQUEST, RequestStatus

REQUEST_STATUSES = tuple(RequestStatus)


class RequestsMixin:
    # -- forget requests -----------------------------------------------------------------------

    def create_forget_request(
        self,
        *,
        selector: dict,
        document_ids: Sequence[int],
        trained_ids: Sequence[int],
        method: str | None,
        config: dict | None = None,
        reason: str | None = None,
        requester: str | None = None,
        base_version_id: int | None = None,
    ) -> int:
        trained = set(trained_ids)
        with self.transaction() as s:
            request = ForgetRequest(
                selector=selector,
                method=method,
                config=config,
                reason=reason,
                requester=requester or self.actor,
                base_version_id=base_version_id,
                status=RequestStatus.PENDING,
                created_at=utcnow(),
            )
            s.add(request)
            s.flush()
            rows = [
                {"request_id": request.id, "document_id": d, "trained": d in trained}
                for d in dict.fromkeys(document_ids)
            ]
            for i in range(0, len(rows), 5000):
                s.execute(insert(ForgetRequestDocument), rows[i : i + 5000])
            repository.record_event(
                s,
                "forget.requested",
                "forget_request",
                request.id,
                selector=selector,
                method=method,
                documents=len(rows),
                trained=len(trained),
                reason=reason,
            )
            return request.id

    def update_forget_request(self, request_id: int, **fields) -> ForgetRequest:
        """Set fields (status, run_id, result_version_id, audit, error, ...) and log the change."""
        with self.transaction() as s:
            request = s.get(ForgetRequest, request_id)
            if request is None:
                raise NotFoundError(f"no forget request {request_id}")
            if fields.get("status", RequestStatus.PENDING) not in REQUEST_STATUSES:
                raise ValueError(f"bad forget request status {fields['status']!r}")
            for name, value in fields.items():
                if not hasattr(ForgetRequest, name):
                    raise AttributeError(name)
                setattr(request, name, value)
            if fields.get("status") in FINISHED_REQUEST:
                request.finished_at = utcnow()
            if "status" in fields:
                repository.record_event(
                    s,
                    f"forget.{fields['status']}",
                    "forget_request",
                    request_id,
                    error=fields.get("error"),
                    result_version_id=request.result_version_id,
                )
            return request

    def redact_forget_selector(self, request_id: int, selector: dict) -> None:
        """Replace a request's selector, and its copy in the `forget.requested` event, with `selector`
        (the redacted form kept after erasure)."""
        with self.transaction() as s:
            request = s.get(ForgetRequest, request_id)
            if request is None:
                raise NotFoundError(f"no forget request {request_id}")
            request.selector = selector
            for event in s.scalars(
                select(Event).where(Event.kind == "forget.requested", Event.subject_id == request_id)
            ):
                event.data = {**(event.data or {}), "selector": selector}
            repository.record_event(s, "forget.selector_redacted", "forget_request", request_id)

    def forget_request(self, request_id: int) -> ForgetRequest:
        with self.reading() as s:
            request = s.get(ForgetRequest, request_id)
            if request is None:
                raise NotFoundError(f"no forget request {request_id}")
            return request

    def forget_requests(self, limit: int = 100) -> list[ForgetRequest]:
        with self.reading() as s:
            return list(s.scalars(select(ForgetRequest).order_by(ForgetRequest.id.desc()).limit(limit)))

    def forget_request_documents(self, request_id: int) -> list[tuple[int, bool]]:
        """(document id, trained by this lineage) for each document of a request."""
        with self.reading() as s:
            rows = s.execute(
                select(ForgetRequestDocument.document_id, ForgetRequestDocument.trained)
                .where(ForgetRequestDocument.request_id == request_id)
                .order_by(ForgetRequestDocument.document_id)
            )
            return [(d, t) for d, t in rows]

    # -- evaluations ---------------------------------------------------------------------------

    def add_evaluations(
        self,
        version_id: int,
        benchmark: str,
        results: dict[str, dict[str, float]],
        *,
        run_id: int | None = None,
        request_id: int | None = None,
        meta: dict | None = None,
    ) -> int:
        """Store `{split: {metric: value}}` for a version; returns the number of rows."""
        rows = [
            {
                "version_id": version_id,
                "benchmark": benchmark,
                "split": split,
                "metric": metric,
                "value": float(value),
                "run_id": run_id,
                "request_id": request_id,
                "meta": meta,
                "created_at": utcnow(),
            }
            for split, metrics in results.items()
            for metric, value in metrics.items()
            if value is not None
        ]
        with self.transaction() as s:
            if rows:
                s.execute(insert(Evaluation), rows)
            repository.record_event(
                s,
                "evaluation.stored",
                "model_version",
                version_id,
                benchmark=benchmark,
                splits=sorted(results),
                rows=len(rows),
                request_id=request_id,
            )
        return len(rows)

    def evaluations(
        self, *, version_id: int | None = None, benchmark: str | None = None, request_id: int | None = None
    ) -> list[Evaluation]:
        query = select(Evaluation)
        if version_id is not None:
            query = query.where(Evaluation.version_id == version_id)
        if benchmark:
            query = query.where(Evaluation.benchmark == benchmark)
        if request_id is not None:
            query = query.where(Evaluation.request_id == request_id)
        with self.reading() as s:
            return list(s.scalars(query.order_by(Evaluation.id)))

    # -- token impact --------------------------------------------------------------------------

    def store_token_impacts(
        self,
        version_id: int,
        records: Sequence[dict],
        *,
        reference_version_id: int | None = None,
        reference: str | None = None,
    ) -> int:
        """Replace the token-impact rows of a version for the given documents.

        Each record: document_id, score, total_tokens, top_tokens, and optionally average_loss,
        relative_loss.
        """
        now = utcnow()
        with self.transaction() as s:
            doc_ids = [r["document_id"] for r in records]
            for i in range(0, len(doc_ids), 500):
                s.execute(
                    delete(TokenImpact).where(
                        TokenImpact.version_id == version_id, TokenImpact.document_id.in_(doc_ids[i : i + 500])
                    )
                )
            rows = [
                {
                    "version_id": version_id,
                    "reference_version_id": reference_version_id,
                    "reference": reference,
                    "created_at": now,
                    "average_loss": None,
                    "relative_loss": None,
                    **r,
                }
                for r in records
            ]
            for i in range(0, len(rows), 2000):
                s.execute(insert(TokenImpact), rows[i : i + 2000])
            repository.record_event(
                s,
                "impact.computed",
                "model_version",
                version_id,
                documents=len(rows),
                reference_version_id=reference_version_id,
            )
        return len(records)

    def token_impacts(self, *, document_id: int | None = None, version_id: int | None = None) -> list[TokenImpact]:
        query = select(TokenImpact)
        if document_id is not None:
            query = query.where(TokenImpact.document_id == document_id)
        if version_id is not None:
            query = query.where(TokenImpact.version_id == version_id)
        with self.reading() as s:
            return list(s.scalars(query.order_by(TokenImpact.id)))
