"""Where things live: one workspace directory (LETHE_HOME) with the ledger and the artefacts.

```
lethe-home/
  ledger.db       the SQLite ledger (unless LETHE_DB_URL / --db names another database)
  models/         published model versions, one HF directory each
  checkpoints/    per-slice training state for exact replay
  reports/        HTML reports and plots
  tokenizers/     trained tokenizers
  bench/          benchmark caches and results
  bases/          imported pretrained base models (lethe base add), linked from the machine cache
```
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from lethe.errors import InputError

DEFAULT_HOME = "./lethe-home"
SHARED_DATA_ENV = "LETHE_SHARED_DATA"
SUBDIRS = ("models", "checkpoints", "reports", "tokenizers", "bench", "bases")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,120}$")


@dataclass
class Workspace:
    """A lethe workspace: a home directory and a ledger URL."""

    home: Path
    db_url: str | None = None
    ingest_guard: Any = field(default=None, compare=False, repr=False)
    """The ledger's name guard (`Ledger.ingest_guard`), set by `lethe.forget.name_guard.guarded`."""

    @classmethod
    def from_env(cls, home: str | Path | None = None, db_url: str | None = None) -> Workspace:
        home = Path(home or os.environ.get("LETHE_HOME") or DEFAULT_HOME).expanduser().resolve()
        return cls(home=home, db_url=db_url or os.environ.get("LETHE_DB_URL") or None)

    @property
    def ledger_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'ledger.db'}"

    def __reduce__(self):
        # Pickled as where it is, without an open ledger (another process opens its own).
        return (type(self), (self.home, self.db_url))

    def init(self) -> Workspace:
        check_ledger_url(self.ledger_url, need_ledger=False)
        for sub in SUBDIRS:
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        _ = self.ledger  # creates and migrates the database
        return self

    @property
    def exists(self) -> bool:
        return (self.home / "models").is_dir()

    def require(self) -> Workspace:
        """This workspace, if `lethe init` made it; a missing one is an error, never a new one.

        A typo in `--home` or `--db` would otherwise create an empty workspace and answer from it.
        """
        if self.db_url is not None:  # the database the user named explicitly is checked first
            check_ledger_url(self.db_url)
        if not self.exists:
            hint = "" if self.home == Path(DEFAULT_HOME).resolve() else f" --home {self.home}"
            raise InputError(f"no lethe workspace at {self.home}; run `lethe{hint} init` to create one")
        if self.db_url is None:
            check_ledger_url(self.ledger_url, init_hint=False)
        return self

    @cached_property
    def ledger(self):
        from lethe.ledger import Ledger

        for sub in SUBDIRS:
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        ledger = Ledger.open(self.ledger_url)
        ledger.home = self.home
        ledger.ingest_guard = self.ingest_guard
        return ledger

    def path(self, kind: str, name: str) -> Path:
        """A path for an artefact `name` under `kind/`, refusing names that escape the workspace."""
        if kind not in SUBDIRS:
            raise InputError(f"unknown workspace area {kind!r} (expected one of {SUBDIRS})")
        if not _SAFE_NAME.match(name):
            raise InputError(f"unsafe artefact name {name!r}: use letters, digits, '.', '_' and '-'")
        target = (self.home / kind / name).resolve()
        if self.home.resolve() not in target.parents:
            raise InputError(f"{name!r} escapes the workspace {self.home}")
        return target

    def models_dir(self) -> Path:
        return self.home / "models"

    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"

    def reports_dir(self) -> Path:
        return self.home / "reports"


SUPPORTED_DATABASES = "SQLite (sqlite:///PATH) or PostgreSQL (postgresql://USER:PASS@HOST/DB)"


def display_url(url: str) -> str:
    """`url` with its password hidden, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy can parse: show the part after any credentials
        return url.split("@")[-1]


def check_ledger_url(url: str, *, init_hint: bool = True, need_ledger: bool = True) -> None:
    """Refuse a ledger URL that names no existing lethe ledger, in one sentence.

    SQLite: the file must exist (SQLite would create it). Other URLs: the driver must be installed,
    the server must answer within a few seconds, and the database must hold lethe's schema.
    With `need_ledger=False` (for `lethe init`) only the URL and the server are checked.
    """
    import sqlalchemy
    from sqlalchemy import exc

    run_init = "run `lethe --db URL init` to create one" if init_hint else "run `lethe init` to create one"
    if "://" not in url:
        raise InputError(f"not a database URL: {url!r}; lethe's ledger runs on {SUPPORTED_DATABASES}")
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    shown = display_url(url)
    connect_args: dict = {}
    if scheme == "sqlite":
        path = url.split(":///", 1)[-1]
        if path in ("", ":memory:"):
            raise InputError(f"{url!r} is an in-memory database, which holds no ledger between commands")
        if not Path(path).is_file():
            if need_ledger:
                raise InputError(f"no lethe ledger at {path}; {run_init}")
            return  # `lethe init` creates it
    elif scheme in ("postgresql", "postgres"):
        connect_args = {"connect_timeout": 5}
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
    else:
        raise InputError(f"unsupported database URL {shown}: lethe's ledger runs on {SUPPORTED_DATABASES}")
    try:
        engine = sqlalchemy.create_engine(url, connect_args=connect_args)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise InputError(f"cannot use database URL {shown}: {_first_line(error)}") from None
    try:
        with engine.connect() as connection:
            has_ledger = sqlalchemy.inspect(connection).has_table("alembic_version")
    except (exc.DBAPIError, exc.ArgumentError, ImportError) as error:
        raise InputError(f"cannot reach the ledger database {shown}: {_first_line(error)}") from None
    finally:
        engine.dispose()
    if need_ledger and not has_ledger:
        raise InputError(f"no lethe ledger in the database {shown}; {run_init}")


def _first_line(error: BaseException) -> str:
    origin = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(origin).splitlines() if line.strip()]
    return lines[0] if lines else type(origin).__name__


def portable_path(path: str | Path, *, home: str | Path | None = None) -> str:
    """`path` as a results file should record it: as given when relative; under the shared
    data as `$LETHE_SHARED_DATA/...` (when that variable located it, else relative to the
    working directory); under the workspace `home` as `$LETHE_HOME/...`; else under the working
    directory relative to it; any other absolute path as it is."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    resolved = path.resolve()
    shared = shared_data_dir()
    if resolved.is_relative_to(shared):
        if os.environ.get(SHARED_DATA_ENV):
            return f"${SHARED_DATA_ENV}/{resolved.relative_to(shared)}".rstrip("/.")
        return os.path.relpath(resolved, Path.cwd().resolve())  # beside the checkout: ../shared/data/...
    if home is not None and resolved.is_relative_to(Path(home).resolve()):
        return f"$LETHE_HOME/{resolved.relative_to(Path(home).resolve())}".rstrip("/.")
    if resolved.is_relative_to(Path.cwd().resolve()):
        return os.path.relpath(resolved, Path.cwd().resolve())
    return str(path)


def portable_paths(value: Any, *, home: str | Path | None = None) -> Any:
    """`value` (a result: dicts, lists, strings) with every absolute path in it, keys included,
    recorded by `portable_path`: a results file names no machine's directories."""
    if isinstance(value, dict):
        return {portable_paths(k, home=home): portable_paths(v, home=home) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable_paths(v, home=home) for v in value]
    if isinstance(value, str) and value.startswith(os.sep) and "\n" not in value:
        return portable_path(value, home=home)
    return value


def local_path(recorded: str, *, home: str | Path) -> Path:
    """A path `portable_path` recorded, on this machine: `$LETHE_HOME` is `home`."""
    if recorded.startswith("$LETHE_HOME/"):
        return Path(home).expanduser().resolve() / recorded.removeprefix("$LETHE_HOME/")
    if recorded.startswith(f"${SHARED_DATA_ENV}/"):
        return shared_data_dir() / recorded.removeprefix(f"${SHARED_DATA_ENV}/")
    return Path(recorded)


def local_paths(value: Any, *, home: str | Path) -> Any:
    """`portable_paths` undone: every `$LETHE_HOME/...` in `value` (keys included) on this machine."""
    if isinstance(value, dict):
        return {local_paths(k, home=home): local_paths(v, home=home) for k, v in value.items()}
    if isinstance(value, list):
        return [local_paths(v, home=home) for v in value]
    if isinstance(value, str) and value.startswith("$LETHE_HOME/"):
        return str(local_path(value, home=home))
    return value


def shared_data_dir() -> Path:
    """Where the shared data sets live: LETHE_SHARED_DATA, else `shared/data` beside the checkout.

    The checkout's parent holds `shared/` (so `../shared/data` from the project root); the search
    walks up from the working directory, so it also works from a subdirectory.
    """
    if env := os.environ.get(SHARED_DATA_ENV):
        return Path(env).expanduser().resolve()
    for parent in (Path.cwd(), *Path.cwd().parents):
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate.resolve()
    return (Path.cwd().parent / "shared" / "data").resolve()
