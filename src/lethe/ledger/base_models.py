"""Pretrained base models: where a lineage that does not start from random weights starts."""

from __future__ import annotations

from sqlalchemy import select

from lethe.errors import ConflictError, NotFoundError
from lethe.ledger import repository
from lethe.ledger.schema import BaseModelRecord, Lineage, ModelVersion, utcnow

PRETRAINING_DATA = "not on record"


class BaseModelsMixin:
    def add_base_model(
        self,
        *,
        name: str,
        source_path: str,
        source_kind: str,
        source_sha256: str,
        path: str,
        weights_sha256: str,
        parameters: int,
        license: str | None = None,
        architecture: str | None = None,
        quantization: str | None = None,
        meta: dict | None = None,
    ) -> tuple[BaseModelRecord, bool]:
        """Record a converted base; (record, created). The same weights under the same name are
        recorded once; other weights under a taken name are a `ConflictError`."""
        with self.transaction() as s:
            existing = s.scalar(select(BaseModelRecord).where(BaseModelRecord.name == name))
            if existing is not None:
                if existing.weights_sha256 == weights_sha256:
                    return existing, False
                raise ConflictError(
                    f"a base model named {name!r} exists already with other weights "
                    f"({existing.source_path}); choose another --name"
                )
            row = BaseModelRecord(
                name=name,
                source_path=source_path,
                source_kind=source_kind,
                source_sha256=source_sha256,
                path=path,
                weights_sha256=weights_sha256,
                license=license,
                parameters=parameters,
                architecture=architecture,
                quantization=quantization,
                pretraining_data=PRETRAINING_DATA,
                meta=meta,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            repository.record_event(
                s,
                "base.added",
                "base_model",
                row.id,
                name=name,
                source=source_path,
                source_sha256=source_sha256,
                weights_sha256=weights_sha256,
                parameters=parameters,
                pretraining_data=PRETRAINING_DATA,
            )
            return row, True

    def base_models(self) -> list[BaseModelRecord]:
        with self.reading() as s:
            return list(s.scalars(select(BaseModelRecord).order_by(BaseModelRecord.id)))

    def base_model(self, ref: str | int) -> BaseModelRecord:
        """The base model named (or numbered) `ref`."""
        with self.reading() as s:
            query = select(BaseModelRecord)
            if isinstance(ref, int) or str(ref).isdigit():
                row = s.get(BaseModelRecord, int(ref))
            else:
                row = s.scalar(query.where(BaseModelRecord.name == str(ref)))
            if row is None:
                known = ", ".join(s.scalars(select(BaseModelRecord.name))) or "none yet"
                raise NotFoundError(f"no base model {ref!r} (known: {known}; add one with `lethe base add`)")
            return row

    def base_model_at(self, path: str) -> BaseModelRecord | None:
        """The base model whose converted directory is `path` (None: not an imported base)."""
        with self.reading() as s:
            return s.scalar(select(BaseModelRecord).where(BaseModelRecord.path == str(path)))

    def version_bases(self) -> dict[int, str]:
        """For each model version descending from an imported base model, that base's name."""
        with self.reading() as s:
            rows = s.execute(
                select(ModelVersion.id, Lineage.config).join(Lineage, ModelVersion.lineage_id == Lineage.id)
            )
            return {vid: config["base_model"] for vid, config in rows if (config or {}).get("base_model")}

    def base_boundary(self, version_id: int | None) -> dict | None:
        """Where provenance starts for a version fine-tuned from an imported base (None: trained
        from scratch, so every example it saw is on record): the base's name, the sha256 of the
        file it was imported from and of its converted weights, and the statement that its
        pretraining data is not on record. Receipts and audits carry it."""
        if version_id is None:
            return None
        with self.reading() as s:
            version = s.get(ModelVersion, version_id)
            lineage = s.get(Lineage, version.lineage_id) if version is not None and version.lineage_id else None
            config = (lineage.config if lineage is not None else None) or {}
            if not config.get("base_model"):
                return None
            record = s.get(BaseModelRecord, config["base_model_id"]) if config.get("base_model_id") else None
            if record is None:
                record = s.scalar(select(BaseModelRecord).where(BaseModelRecord.name == config["base_model"]))
            name = record.name if record is not None else config["base_model"]
            weights = record.weights_sha256 if record is not None else config.get("base_weights_sha256")
            pretraining = record.pretraining_data if record is not None else PRETRAINING_DATA
            return {
                "base_model": name,
                "source_kind": record.source_kind if record is not None else None,
                "source_sha256": record.source_sha256 if record is not None else None,
                "weights_sha256": weights,
                "license": record.license if record is not None else None,
                "quantization": record.quantization if record is not None else None,
                "pretraining_data": pretraining,
                "statement": (
                    f"provenance on record starts at the base model {name} (weights sha256 {weights}); "
                    f"its pretraining data is {pretraining}: what the base learned before fine-tuning "
                    "can be neither listed nor forgotten here"
                ),
            }
