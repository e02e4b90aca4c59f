"""Tokenizers lethe trained, and the documents each one learned its merges from."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select

from lethe.errors import NotFoundError
from lethe.ledger import repository
from lethe.ledger.schema import Tokenizer, TokenizerDocument, utcnow


class TokenizersMixin:
    def register_tokenizer(
        self,
        *,
        name: str,
        path: str,
        sha256: str,
        vocab_size: int,
        settings: dict,
        document_ids: Sequence[int],
        replaces_id: int | None = None,
        reason: str | None = None,
    ) -> Tokenizer:
        """Record a trained tokenizer and its training documents (in training order)."""
        with self.transaction() as s:
            row = Tokenizer(
                name=name,
                path=path,
                sha256=sha256,
                vocab_size=vocab_size,
                settings=settings,
                replaces_id=replaces_id,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            if document_ids:
                s.execute(
                    insert(TokenizerDocument),
                    [{"tokenizer_id": row.id, "document_id": d, "position": i} for i, d in enumerate(document_ids)],
                )
            repository.record_event(
                s,
                "tokenizer.trained",
                "tokenizer",
                row.id,
                name=name,
                path=path,
                vocab_size=vocab_size,
                documents=len(document_ids),
                replaces=replaces_id,
                reason=reason,
            )
            return row

    def tokenizer(self, tokenizer_id: int) -> Tokenizer:
        with self.reading() as s:
            row = s.get(Tokenizer, tokenizer_id)
            if row is None:
                raise NotFoundError(f"no tokenizer {tokenizer_id}")
            return row

    def find_tokenizer_record(self, sha256: str) -> Tokenizer | None:
        """The newest recorded tokenizer whose tokenizer.json has this digest (None: not lethe's)."""
        with self.reading() as s:
            return s.scalar(select(Tokenizer).where(Tokenizer.sha256 == sha256).order_by(Tokenizer.id.desc()))

    def tokenizers(self) -> list[Tokenizer]:
        with self.reading() as s:
            return list(s.scalars(select(Tokenizer).order_by(Tokenizer.id)))

    def tokenizer_document_ids(self, tokenizer_id: int) -> list[int]:
        """The documents tokenizer `tokenizer_id` was trained on, in training order."""
        with self.reading() as s:
            return list(
                s.scalars(
                    select(TokenizerDocument.document_id)
                    .where(TokenizerDocument.tokenizer_id == tokenizer_id)
                    .order_by(TokenizerDocument.position)
                )
            )

    def tokenizers_of_document(self, document_id: int) -> list[Tokenizer]:
        """The tokenizers that learned from document `document_id`."""
        with self.reading() as s:
            return list(
                s.scalars(
                    select(Tokenizer)
                    .join(TokenizerDocument)
                    .where(TokenizerDocument.document_id == document_id)
                    .order_by(Tokenizer.id)
                )
            )
