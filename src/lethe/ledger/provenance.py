"""Provenance: lineages, runs, slices, exposures, model versions, checkpoints, taint.

The question this module answers exactly is "which documents shaped version V" and its
converse: a version's coverage (runs cut at a step) joined with the exposures of those runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, exists, func, insert, or_, select, update

from lethe.errors import ConflictError, NotFoundError
from lethe.ledger import repository
from lethe.ledger.owners import this_process
from lethe.ledger.schema import (
    Alias,
    Checkpoint,
    CollectionMember,
    Exposure,
    Lineage,
    ModelVersion,
    Run,
    Slice,
    SliceDocument,
    VersionCoverage,
    utcnow,
)
from lethe.ledger.states import FINISHED_RUN, RunStatus, VersionStatus

EXPOSURE_BATCH = 50_000


class ProvenanceMixin:
    # -- lineages and runs ---------------------------------------------------------------------

    def create_lineage(self, name: str, base: str, config: dict | None = None) -> Lineage:
        with self.transaction() as s:
            if s.scalar(select(Lineage).where(Lineage.name == name)) is not None:
                raise ConflictError(f"a lineage named {name!r} exists already")
            lineage = Lineage(name=name, base=base, config=config)
            s.add(lineage)
            s.flush()
            repository.record_event(s, "lineage.created", "lineage", lineage.id, name=name, base=base)
            return lineage

    def lineage(self, ref: int | str) -> Lineage:
        with self.reading() as s:
            if isinstance(ref, int) or str(ref).isdigit():
                lineage = s.get(Lineage, int(ref))
            else:
                lineage = s.scalar(select(Lineage).where(Lineage.name == ref))
            if lineage is None:
                raise NotFoundError(f"no lineage {ref!r}")
            return lineage

    def lineages(self) -> list[Lineage]:
        with self.reading() as s:
            return list(s.scalars(select(Lineage).order_by(Lineage.id)))

    def start_run(
        self,
        kind: str,
        *,
        lineage_id: int | None = None,
        parent_version_id: int | None = None,
        config: dict | None = None,
        seed: int | None = None,
        world_size: int = 1,
        effective_batch: int | None = None,
        environment: dict | None = None,
    ) -> int:
        with self.transaction() as s:
            run = Run(
                kind=kind,
                status=RunStatus.RUNNING,
                lineage_id=lineage_id,
                parent_version_id=parent_version_id,
                config=config,
                seed=seed,
                world_size=world_size,
                effective_batch=effective_batch,
                environment={**(environment or {}), "owner": this_process()},
                started_at=utcnow(),
            )
            s.add(run)
            s.flush()
            repository.record_event(s, "run.started", "run", run.id, kind=kind, lineage_id=lineage_id)
            return run.id

    def finish_run(
        self,
        run_id: int,
        status: RunStatus = RunStatus.SUCCEEDED,
        *,
        metrics: dict | None = None,
        error: str | None = None,
    ) -> None:
        if status not in FINISHED_RUN:
            raise ValueError(f"bad run status {status!r}")
        with self.transaction() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise NotFoundError(f"no run {run_id}")
            run.status, run.error, run.finished_at = status, error, utcnow()
            if metrics is not None:
                run.metrics = {**(run.metrics or {}), **metrics}
            repository.record_event(s, f"run.{status}", "run", run_id, kind=run.kind, error=error)

    def update_run_metrics(self, run_id: int, metrics: dict) -> None:
        with self.transaction() as s:
            run = s.get(Run, run_id)
            run.metrics = {**(run.metrics or {}), **metrics}

    def run(self, run_id: int) -> Run:
        with self.reading() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise NotFoundError(f"no run {run_id}")
            return run

    def runs(self, *, kind: str | None = None, limit: int = 100) -> list[Run]:
        query = select(Run)
        if kind:
            query = query.where(Run.kind == kind)
        with self.reading() as s:
            return list(s.scalars(query.order_by(Run.id.desc()).limit(limit)))

    # -- slices and exposures ------------------------------------------------------------------

    def add_slice(
        self,
        lineage_id: int,
        index: int,
        document_ids: Sequence[int],
        *,
        run_id: int | None = None,
        config: dict | None = None,
    ) -> int:
        with self.transaction() as s:
            if s.scalar(select(Slice).where(Slice.lineage_id == lineage_id, Slice.index == index)):
                raise ConflictError(f"lineage {lineage_id} has a slice {index} already")
            sl = Slice(lineage_id=lineage_id, index=index, run_id=run_id, config=config)
            s.add(sl)
            s.flush()
            rows = [{"slice_id": sl.id, "document_id": d} for d in dict.fromkeys(document_ids)]
            for i in range(0, len(rows), 5000):
                s.execute(insert(SliceDocument), rows[i : i + 5000])
            repository.record_event(
                s, "slice.added", "slice", sl.id, lineage_id=lineage_id, index=index, documents=len(rows)
            )
            return sl.id

    def slices(self, lineage_id: int) -> list[tuple[Slice, list[int]]]:
        """The lineage's slice plan, in order: each slice with its document ids."""
        with self.reading() as s:
            plan = list(s.scalars(select(Slice).where(Slice.lineage_id == lineage_id).order_by(Slice.index)))
            out = []
            for sl in plan:
                ids = list(
                    s.scalars(
                        select(SliceDocument.document_id)
                        .where(SliceDocument.slice_id == sl.id)
                        .order_by(SliceDocument.document_id)
                    )
                )
                out.append((sl, ids))
            return out

    def record_exposures(self, run_id: int, rows: Iterable[tuple[int, int]]) -> int:
        """Bulk-insert (step, document id) exposures of one run; returns how many."""
        total = 0
        batch: list[tuple[int, int, int]] = []
        with self.transaction() as s:
            for step, doc_id in rows:
                batch.append((run_id, step, doc_id))
                if len(batch) >= EXPOSURE_BATCH:
                    total += repository.insert_exposures(s, batch)
                    batch = []
            if batch:
                total += repository.insert_exposures(s, batch)
        if total >= 100_000 and self.dialect == "postgresql":
            # After a bulk COPY the planner's statistics are stale; provenance queries would scan.
            with self.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE exposures")
                conn.commit()
        return total

    def exposure_count(self, run_id: int | None = None) -> int:
        query = select(func.count()).select_from(Exposure)
        if run_id is not None:
            query = query.where(Exposure.run_id == run_id)
        with self.reading() as s:
            return s.scalar(query)

    def exposures(
        self, *, run_id: int | None = None, document_id: int | None = None, limit: int = 1000
    ) -> list[Exposure]:
        query = select(Exposure)
        if run_id is not None:
            query = query.where(Exposure.run_id == run_id)
        if document_id is not None:
            query = query.where(Exposure.document_id == document_id)
        with self.reading() as s:
            return list(s.scalars(query.order_by(Exposure.run_id, Exposure.step).limit(limit)))

    # -- model versions ------------------------------------------------------------------------

    def register_version(
        self,
        *,
        kind: str,
        path: str,
        weights_sha256: str,
        lineage_id: int | None = None,
        parent_id: int | None = None,
        run_id: int | None = None,
        run_max_step: int | None = None,
        inherit_coverage: bool = True,
        coverage: dict[int, int] | None = None,
        slice_index: int | None = None,
        status: VersionStatus = VersionStatus.PUBLISHED,
        meta: dict | None = None,
        aliases: Sequence[str] = ("latest",),
        name: str | None = None,
    ) -> ModelVersion:
        """Register a version; its coverage is its parent's (or `coverage`) plus its own run."""
        with self.transaction() as s:
            version = ModelVersion(
                name=name or f"tmp-{utcnow().timestamp()}",
                kind=kind,
                path=path,
                weights_sha256=weights_sha256,
                lineage_id=lineage_id,
                parent_id=parent_id,
                run_id=run_id,
                slice_index=slice_index,
                status=status,
                meta=meta,
                created_at=utcnow(),
            )
            s.add(version)
            s.flush()
            if name is None:
                version.name = f"v{version.id}"
            covered: dict[int, int] = dict(coverage or {})
            if coverage is None and inherit_coverage and parent_id is not None:
                for row in s.scalars(select(VersionCoverage).where(VersionCoverage.version_id == parent_id)):
                    covered[row.run_id] = row.max_step
            if run_id is not None:
                covered[run_id] = max(covered.get(run_id, -1), run_max_step if run_max_step is not None else 2**31 - 1)
            for rid, max_step in covered.items():
                s.add(VersionCoverage(version_id=version.id, run_id=rid, max_step=max_step))
            for alias in aliases if status == VersionStatus.PUBLISHED else ():
                repository.set_alias(s, alias, version.id)
            repository.record_event(
                s,
                "version.registered",
                "model_version",
                version.id,
                name=version.name,
                kind=kind,
                parent_id=parent_id,
                run_id=run_id,
                status=status,
                sha256=weights_sha256,
            )
            return version

    def set_alias(self, alias: str, ref: int | str) -> None:
        version = self.resolve_version(ref, allow_tainted=True)
        with self.transaction() as s:
            repository.set_alias(s, alias, version.id)

    def publish_version(self, ref: int | str, aliases: Sequence[str] = ("latest",)) -> ModelVersion:
        """Turn a candidate into a published version and point aliases at it."""
        with self.transaction() as s:
            version = repository.find_version(s, ref)
            version.status = VersionStatus.PUBLISHED
            for alias in aliases:
                repository.set_alias(s, alias, version.id)
            repository.record_event(s, "version.published", "model_version", version.id, name=version.name)
            return version

    def discard_version(self, ref: int | str) -> ModelVersion:
        with self.transaction() as s:
            version = repository.find_version(s, ref)
            if s.scalar(select(Alias).where(Alias.version_id == version.id)) is not None:
                raise ConflictError(f"{version.name} is aliased; point the alias elsewhere first")
            version.status = VersionStatus.DISCARDED
            repository.record_event(s, "version.discarded", "model_version", version.id, name=version.name)
            return version

    def resolve_version(self, ref: int | str = "latest", *, allow_tainted: bool = False) -> ModelVersion:
        """A version by id, name (`v3`) or alias (`latest`); tainted ones only when allowed."""
        with self.reading() as s:
            version = repository.find_version(s, ref)
        if version.purged_at is not None:
            raise ConflictError(f"{version.name}'s weights were purged ({version.taint_reason})")
        if version.tainted_at is not None and not allow_tainted:
            raise ConflictError(
                f"{version.name} is tainted: {version.taint_reason}. Serve a clean version, or pass the "
                "explicit override (--allow-tainted)"
            )
        return version

    def list_versions(self, *, include_discarded: bool = False) -> list[ModelVersion]:
        query = select(ModelVersion)
        if not include_discarded:
            query = query.where(ModelVersion.status != VersionStatus.DISCARDED)
        with self.reading() as s:
            return list(s.scalars(query.order_by(ModelVersion.id)))

    def aliases(self) -> dict[str, int]:
        with self.reading() as s:
            return {a.name: a.version_id for a in s.scalars(select(Alias))}

    def coverage(self, version_id: int) -> dict[int, int]:
        with self.reading() as s:
            return {
                r.run_id: r.max_step
                for r in s.scalars(select(VersionCoverage).where(VersionCoverage.version_id == version_id))
            }

    # -- provenance queries --------------------------------------------------------------------

    def versions_that_saw(self, document_id: int) -> list[ModelVersion]:
        """Every model version whose training path exposed the document."""
        saw = (
            select(VersionCoverage.version_id)
            .join(Exposure, and_(Exposure.run_id == VersionCoverage.run_id, Exposure.step <= VersionCoverage.max_step))
            .where(Exposure.document_id == document_id)
            .distinct()
        )
        with self.reading() as s:
            return list(s.scalars(select(ModelVersion).where(ModelVersion.id.in_(saw)).order_by(ModelVersion.id)))

    def documents_seen(
        self, version_id: int, *, collection_id: int | None = None, candidates: Sequence[int] | None = None
    ) -> list[int]:
        """Document ids the version saw, optionally restricted to a collection or a candidate set."""
        cov = self.coverage(version_id)
        if not cov:
            return []
        covered = or_(*[and_(Exposure.run_id == rid, Exposure.step <= step) for rid, step in cov.items()])
        with self.reading() as s:
            if collection_id is not None:
                # driven by the members, one index probe each (document_id, run_id, step): a join
                # let both planners scan the run's exposures instead
                probe = exists().where(Exposure.document_id == CollectionMember.document_id, covered)
                query = select(CollectionMember.document_id).where(
                    CollectionMember.collection_id == collection_id, probe
                )
                return sorted(s.scalars(query))
            if candidates is not None:
                ids, out = list(candidates), []
                for i in range(0, len(ids), 500):
                    query = (
                        select(Exposure.document_id)
                        .distinct()
                        .where(Exposure.document_id.in_(ids[i : i + 500]), covered)
                    )
                    out.extend(s.scalars(query))
                return sorted(out)
            return sorted(s.scalars(select(Exposure.document_id).distinct().where(covered)))

    # -- checkpoints and taint -----------------------------------------------------------------

    def register_checkpoint(
        self,
        *,
        lineage_id: int,
        slice_index: int,
        path: str,
        weights_sha256: str,
        version_id: int,
        run_id: int | None = None,
    ) -> int:
        with self.transaction() as s:
            ck = Checkpoint(
                lineage_id=lineage_id,
                slice_index=slice_index,
                path=path,
                version_id=version_id,
                weights_sha256=weights_sha256,
                run_id=run_id,
                created_at=utcnow(),
            )
            s.add(ck)
            s.flush()
            repository.record_event(
                s,
                "checkpoint.registered",
                "checkpoint",
                ck.id,
                lineage_id=lineage_id,
                slice_index=slice_index,
                version_id=version_id,
            )
            return ck.id

    def checkpoints(self, lineage_id: int, *, include_tainted: bool = False) -> list[Checkpoint]:
        """Checkpoints of a lineage; by default only clean ones whose version is published
        (a candidate's checkpoints, e.g. of an unpublished replay, are not a lineage's state)."""
        query = select(Checkpoint).where(Checkpoint.lineage_id == lineage_id)
        if not include_tainted:
            query = query.join(ModelVersion, ModelVersion.id == Checkpoint.version_id).where(
                Checkpoint.tainted_at.is_(None), ModelVersion.status == VersionStatus.PUBLISHED
            )
        with self.reading() as s:
            return list(s.scalars(query.order_by(Checkpoint.slice_index, Checkpoint.id)))

    def checkpoint_for(self, lineage_id: int, slice_index: int) -> Checkpoint | None:
        """The newest clean checkpoint after slice `slice_index`."""
        found = [c for c in self.checkpoints(lineage_id) if c.slice_index == slice_index]
        return found[-1] if found else None

    def taint(self, document_ids: Sequence[int], *, reason: str, keep: Sequence[int] = ()) -> list[ModelVersion]:
        """Mark every version (and its checkpoints) that saw any of the documents, except `keep`."""
        tainted: dict[int, ModelVersion] = {}
        for doc_id in document_ids:
            for v in self.versions_that_saw(doc_id):
                if v.id not in keep and v.tainted_at is None:
                    tainted[v.id] = v
        now = utcnow()
        with self.transaction() as s:
            ids = list(tainted)
            if ids:
                s.execute(
                    update(ModelVersion).where(ModelVersion.id.in_(ids)).values(tainted_at=now, taint_reason=reason)
                )
                s.execute(update(Checkpoint).where(Checkpoint.version_id.in_(ids)).values(tainted_at=now))
            repository.record_event(
                s, "versions.tainted", None, None, versions=[tainted[i].name for i in ids], reason=reason
            )
        return [self.resolve_version(i, allow_tainted=True) for i in tainted]

    def mark_purged(self, version_id: int) -> None:
        with self.transaction() as s:
            version = s.get(ModelVersion, version_id)
            version.purged_at = utcnow()
            s.execute(update(Checkpoint).where(Checkpoint.version_id == version_id).values(purged_at=utcnow()))
            repository.record_event(s, "version.purged", "model_version", version_id, name=version.name)
