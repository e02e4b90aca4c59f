"""Model versions by name, loaded on first use and kept warm: the pool every front end shares.

Names resolve through a `VersionResolver` — the ledger (``resolve_version("v3" | "12" |
"latest")``) or, without one, `DirectoryVersions` over local directories. A tainted version
(one that saw since-forgotten data) is refused unless the pool allows it explicitly. Each
loaded version has its own `ChatEngine`; the least recently used idle one is unloaded when
more than `max_loaded` are held.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lethe.chat.engine import ChatEngine, EngineConfig
from lethe.errors import ConflictError, InputError, LetheError, NotFoundError, Where

log = logging.getLogger(__name__)


class VersionInfo(Protocol):
    """What the pool needs to know of a model version (the ledger's `ModelVersion` fits)."""

    id: Any
    name: str
    path: Any
    tainted_at: Any


class VersionResolver(Protocol):
    """Where versions are looked up (the ledger fits)."""

    def resolve_version(self, ref: str, *, allow_tainted: bool = False) -> VersionInfo: ...

    def list_versions(self) -> list[Any]: ...


@dataclass(frozen=True)
class LocalVersion:
    """A version known only by its directory (no ledger)."""

    name: str
    path: Path
    id: int | None = None
    tainted_at: Any = None
    """Set when the version saw data since forgotten (tests use it; the ledger sets it)."""


class DirectoryVersions:
    """A resolver over named local directories, with optional aliases (e.g. ``latest``)."""

    def __init__(
        self,
        versions: Mapping[str, str | Path],
        aliases: Mapping[str, str] | None = None,
        tainted: Iterable[str] = (),
    ):
        tainted = set(tainted)
        self.versions = {
            name: LocalVersion(
                name=name,
                path=Path(path),
                id=index,
                tainted_at=time.time() if name in tainted else None,
            )
            for index, (name, path) in enumerate(versions.items(), start=1)
        }
        self.aliases = dict(aliases or {})
        if self.versions and "latest" not in self.aliases:
            self.aliases["latest"] = list(self.versions)[-1]

    def resolve_version(self, ref: str, *, allow_tainted: bool = False) -> LocalVersion:
        name = self.aliases.get(ref, ref)
        if name not in self.versions:
            raise NotFoundError(f"no model version {ref!r}", Where(field="model"))
        return self.versions[name]

    def list_versions(self) -> list[LocalVersion]:
        return list(self.versions.values())


def _weights_sha256(path: Path) -> str | None:
    from lethe.model.io import weights_sha256

    try:
        return weights_sha256(path)
    except InputError:
        return None


def load_model_directory(path: str | Path):
    """(model, tokenizer) of a saved version, read offline."""
    from lethe.model.io import load_version

    return load_version(path)


@dataclass
class LoadedModel:
    """A version in memory with its engine."""

    name: str
    """The version's name (what every response reports, even when asked for an alias)."""
    id: int | None
    path: Path
    engine: ChatEngine
    tainted: bool = False
    weights_sha256: str | None = None
    """SHA-256 of the safetensors files (as the ledger records it, or computed at load)."""
    loaded_at: float = field(default_factory=time.time)


class ModelPool:
    """Resolves, loads and caches model versions; thread-safe."""

    def __init__(
        self,
        resolver: VersionResolver,
        *,
        allow_tainted: bool = False,
        max_loaded: int = 2,
        engine_config: EngineConfig | None = None,
        loader: Callable[[str | Path], tuple[Any, Any]] = load_model_directory,
        base_dir: str | Path | None = None,
    ):
        if max_loaded < 1:
            raise InputError("max_loaded must be at least 1", Where(field="max_loaded"))
        self.resolver = resolver
        self.allow_tainted = allow_tainted
        self.max_loaded = max_loaded
        self.engine_config = engine_config or EngineConfig()
        self.loader = loader
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None
        self.latest_seen: str | None = None
        """The version ``latest`` named at the watcher's last look."""

    def resolve(self, ref: str) -> VersionInfo:
        """The version `ref` names, refusing a tainted one unless allowed."""
        try:
            # The pool applies the taint rule itself, so every front end words it the same.
            version = self.resolver.resolve_version(str(ref), allow_tainted=True)
        except NotFoundError as error:
            raise NotFoundError(error.message, Where(field="model")) from None
        if version.tainted_at is not None and not self.allow_tainted:
            reason = getattr(version, "taint_reason", None) or "it saw data since forgotten"
            raise ConflictError(
                f"model version {version.name} is tainted ({reason}); "
                "serve it only with an explicit override (allow_tainted / --allow-tainted)",
                Where(field="model"),
            )
        return version

    def get(self, ref: str) -> LoadedModel:
        """The loaded version `ref` names, loading it on first use."""
        version = self.resolve(ref)
        with self._lock:
            loaded = self._loaded.get(version.name)
            if loaded is not None:
                self._loaded.move_to_end(version.name)
                return loaded
            path = self._path(version)
            if path is None or not path.is_dir():
                raise NotFoundError(
                    f"the weights of model version {version.name} are gone",
                    Where(path=path, field="model"),
                )
            model, tokenizer = self.loader(path)
            loaded = LoadedModel(
                name=version.name,
                id=version.id,
                path=path,
                engine=ChatEngine(model, tokenizer, self.engine_config),
                tainted=version.tainted_at is not None,
                weights_sha256=getattr(version, "weights_sha256", None) or _weights_sha256(path),
            )
            self._loaded[version.name] = loaded
            self._evict()
            return loaded

    def _path(self, version: VersionInfo) -> Path | None:
        if not version.path:
            return None
        path = Path(version.path)
        return self.base_dir / path if self.base_dir is not None and not path.is_absolute() else path

    def _evict(self) -> None:
        for name in list(self._loaded):
            if len(self._loaded) <= self.max_loaded:
                return
            engine = self._loaded[name].engine
            if engine.scheduler.active or engine.scheduler.waiting:
                continue  # never cut a reply short; try again on the next load
            self._loaded.pop(name).engine.close()

    def available(self) -> list[Any]:
        """Versions that may be served (tainted ones only when allowed)."""
        return [
            v for v in self.resolver.list_versions() if self.allow_tainted or getattr(v, "tainted_at", None) is None
        ]

    # -- following `latest` ------------------------------------------------------------------

    def watch(self, interval_s: float = 1.0) -> ModelPool:
        """Follow ``latest`` live: every `interval_s`, read the aliases (one small query) and,
        when ``latest`` moved (a forget request published, from any process sharing the
        ledger), load the new version at once, so the next request gets it warm. Replies
        already running keep the engine they started on."""
        if self._watcher is None:
            self._watching.set()
            self._watcher = threading.Thread(target=self._watch, args=(interval_s,), name="lethe-latest", daemon=True)
            self._watcher.start()
        return self

    def _watch(self, interval_s: float) -> None:
        while self._watching.is_set():
            try:
                name = self.latest_name()
                if name is not None and name != self.latest_seen:
                    self.latest_seen = name
                    self.get("latest")
            except LetheError as error:  # a tainted or missing latest: requests will say so
                log.warning("not loading latest: %s", error)
            except Exception:
                log.exception("watching latest failed")
            time.sleep(interval_s)

    def latest_name(self) -> str | None:
        """The version ``latest`` names now (None when there is none)."""
        try:
            return self.resolver.resolve_version("latest", allow_tainted=True).name
        except NotFoundError:
            return None

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._loaded.values())

    def close(self) -> None:
        self._watching.clear()
        with self._lock:
            for loaded in self._loaded.values():
                loaded.engine.close()
            self._loaded.clear()
