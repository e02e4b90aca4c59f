"""Tuning records: calibration exact answers (cached), studies, trials, tuned settings."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import func, select

from lethe.errors import NotFoundError
from lethe.ledger import repository
from lethe.ledger.schema import TuningCalibration, TuningStudy, TuningTrial, utcnow


def documents_sha256(document_ids: list[int]) -> str:
    """The cache key of a calibration's documents (with the version it unlearns from)."""
    return hashlib.sha256(json.dumps(sorted(int(i) for i in document_ids)).encode()).hexdigest()


class TuningMixin:
    # -- calibrations -------------------------------------------------------------------------

    def tuning_calibration(self, version_id: int, document_ids: list[int]) -> TuningCalibration | None:
        """The cached exact answer for these calibration documents of this version, if any."""
        with self.reading() as s:
            return s.scalar(
                select(TuningCalibration).where(
                    TuningCalibration.version_id == version_id,
                    TuningCalibration.documents_sha256 == documents_sha256(document_ids),
                )
            )

    def add_tuning_calibration(
        self,
        *,
        version_id: int,
        subjects: list[str],
        document_ids: list[int],
        exact_version_id: int,
        seconds: float,
        meta: dict | None = None,
    ) -> TuningCalibration:
        with self.transaction() as s:
            row = TuningCalibration(
                version_id=version_id,
                documents_sha256=documents_sha256(document_ids),
                subjects=list(subjects),
                document_ids=sorted(int(i) for i in document_ids),
                exact_version_id=exact_version_id,
                seconds=float(seconds),
                meta=meta,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            repository.record_event(s, "tuning.calibrated", "tuning_calibration", row.id, subjects=list(subjects))
            return row

    def tuning_calibration_by_id(self, calibration_id: int) -> TuningCalibration:
        with self.reading() as s:
            row = s.get(TuningCalibration, calibration_id)
        if row is None:
            raise NotFoundError(f"no tuning calibration {calibration_id}")
        return row

    # -- studies ------------------------------------------------------------------------------

    def tuning_study_named(self, name: str) -> TuningStudy | None:
        with self.reading() as s:
            return s.scalar(select(TuningStudy).where(TuningStudy.name == name))

    def add_tuning_study(
        self, *, name: str, method: str, lineage_id: int | None, calibration_id: int, config: dict
    ) -> TuningStudy:
        with self.transaction() as s:
            now = utcnow()
            row = TuningStudy(
                name=name,
                method=method,
                lineage_id=lineage_id,
                calibration_id=calibration_id,
                config=config,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            repository.record_event(s, "tuning.study_created", "tuning_study", row.id, name=name, method=method)
            return row

    def tuning_study(self, ref: str | int) -> TuningStudy:
        """A study by id or name."""
        with self.reading() as s:
            row = s.get(TuningStudy, int(ref)) if str(ref).isdigit() else None
            row = row or s.scalar(select(TuningStudy).where(TuningStudy.name == str(ref)))
        if row is None:
            raise NotFoundError(f"no tuning study {ref!r}; `lethe tune ls` lists them")
        return row

    def tuning_studies(self, *, lineage_id: int | None = None, method: str | None = None) -> list[TuningStudy]:
        with self.reading() as s:
            query = select(TuningStudy).order_by(TuningStudy.id)
            if lineage_id is not None:
                query = query.where(TuningStudy.lineage_id == lineage_id)
            if method is not None:
                query = query.where(TuningStudy.method == method)
            return list(s.scalars(query))

    def set_tuning_best(self, study_id: int, best: dict | None) -> None:
        with self.transaction() as s:
            row = s.get(TuningStudy, study_id)
            row.best = best
            row.updated_at = utcnow()
            repository.record_event(s, "tuning.best_chosen", "tuning_study", study_id, best=best)

    # -- trials -------------------------------------------------------------------------------

    def tuning_trials(self, study_id: int) -> list[TuningTrial]:
        with self.reading() as s:
            return list(
                s.scalars(select(TuningTrial).where(TuningTrial.study_id == study_id).order_by(TuningTrial.number))
            )

    def next_tuning_trial_number(self, study_id: int) -> int:
        with self.reading() as s:
            top = s.scalar(select(func.max(TuningTrial.number)).where(TuningTrial.study_id == study_id))
        return 0 if top is None else top + 1

    def add_tuning_trial(self, study_id: int, **values) -> TuningTrial:
        with self.transaction() as s:
            row = TuningTrial(study_id=study_id, created_at=utcnow(), **values)
            s.add(row)
            study = s.get(TuningStudy, study_id)
            study.updated_at = utcnow()
            s.flush()
            return row
