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
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

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
        for sub in SUBDIRS:
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        _ = self.ledger  # creates and migrates the database
        return self

    @property
    def exists(self) -> bool:
        return (self.home / "models").is_dir()

    @cached_property
    def ledger(self):
        from lethe.ledger import Ledger

        for sub in SUBDIRS:
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        return Ledger.open(self.ledger_url)

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
