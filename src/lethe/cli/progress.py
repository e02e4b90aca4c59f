"""Progress for long library work: one bar per stage, labelled with the stage that runs.

Training, update and replay slices and unlearning runs each get their own bar, named for what
they are (`train slice 0 (1/3)`, `replay slice 2 (1/2)`, `unlearning`), created when the stage
starts, so no bar shows a stale label or an unknown total. When the output is not a terminal (a
log file, CI), rich draws nothing until the end, so a plain line is printed when a stage starts
and at least every `HEARTBEAT_SECONDS` while it runs, even inside one long step.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lethe.cli.app import console

HEARTBEAT_SECONDS = 30.0
RUN_VERBS = {"train": "train", "update": "update", "replay": "replay"}


def slice_label(event) -> str:
    """`train slice 0 (1/3)`: the job's kind, the lineage's slice, and where it is in the job."""
    verb = RUN_VERBS.get(getattr(event, "run_kind", "train"), "train")
    return f"{verb} slice {event.slice_index} ({event.slice_position + 1}/{event.slices_total})"


class StageProgress:
    """Stages one after another, each with a step count and a short status text."""

    def __init__(self, out: Console, *, heartbeat: float = HEARTBEAT_SECONDS, extra_columns=()):
        self.out = out
        self.plain = not out.is_terminal
        self.heartbeat = heartbeat
        self.stage: str | None = None
        self.completed, self.total, self.info = 0, None, ""
        self.started = self.last_line = time.monotonic()
        self.silenced = False
        """Set when the output broke: progress is not worth failing a forget request for."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._task = None
        self._bars = None
        if not self.plain:
            self._bars = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                *extra_columns,
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=out,
                transient=False,
            )

    def __enter__(self) -> Self:
        if self._bars is not None:
            self._bars.__enter__()
        else:
            threading.Thread(target=self._beat, name="lethe-progress", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._bars is not None:
            self._bars.__exit__(*exc)

    def start(self, stage: str, total: int | None = None) -> None:
        with self._lock:
            self.stage, self.completed, self.total, self.info = stage, 0, total, ""
            self.started = time.monotonic()
            if self._bars is not None:
                self._task = self._bars.add_task(stage, total=total, info="")
            else:
                self._line(f"{stage}: started")

    def update(self, completed: int, total: int | None = None, info: str = "") -> None:
        with self._lock:
            self.completed, self.info = completed, info
            self.total = total if total is not None else self.total
            if self._bars is not None and self._task is not None:
                self._bars.update(self._task, completed=completed, total=self.total, info=info)
            elif self.plain and time.monotonic() - self.last_line >= self.heartbeat:
                self._status()

    def finish(self, description: str | None = None) -> None:
        with self._lock:
            if self._bars is not None and self._task is not None:
                if description:
                    self._bars.update(self._task, description=description)
            elif self.plain and self.stage is not None:
                self._line(f"{description or self.stage}: done, {self.completed} steps in {self._elapsed()}")
            self.stage = None

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f}s"

    def _status(self) -> None:
        total = "?" if self.total is None else self.total
        self._line(f"{self.stage}: step {self.completed}/{total} {self.info} ({self._elapsed()})".replace("  ", " "))

    def _line(self, text: str) -> None:
        self.last_line = time.monotonic()
        if self.silenced:
            return
        try:
            self.out.print(text, highlight=False, markup=False, soft_wrap=True)
        except (OSError, ValueError, SystemExit):
            # the reader went away (`| head`, a closed log; rich turns a broken pipe into
            # SystemExit): the work goes on without its progress lines
            self.silenced = True

    def _beat(self) -> None:
        """In a log file, say something at least every `heartbeat` seconds, even mid-step."""
        while not self._stop.wait(min(1.0, self.heartbeat / 4)):
            with self._lock:
                if self.stage is not None and time.monotonic() - self.last_line >= self.heartbeat:
                    self._status()


@contextmanager
def progress_callback(enabled: bool, *, out: Console | None = None, heartbeat: float = HEARTBEAT_SECONDS):
    """A callback drawing progress for training slices (train, update, replay) and unlearning runs."""
    if not enabled:
        yield None
        return
    with StageProgress(out or console, heartbeat=heartbeat) as stages:
        state: dict = {"unlearning": False, "ended": None}

        def callback(event) -> None:
            if event.kind == "unlearn":  # an unlearning step
                if not state["unlearning"] and state["ended"] == (event.step, event.steps_total):
                    return  # a second report of the last step of a run that has ended
                if not state["unlearning"] or event.step < stages.completed:  # a new unlearning run
                    stages.finish()
                    stages.start("unlearning", event.steps_total)
                    state["unlearning"] = True
                info = " ".join(f"{k}={v:.3f}" for k, v in event.losses.items())
                if event.metrics is not None:
                    m = event.metrics
                    info += f" | forget acc {m.forget_accuracy:.2f} retain acc {m.retain_accuracy:.2f}"
                stages.update(event.step, event.steps_total, info)
                if event.steps_total is not None and event.step >= event.steps_total:
                    # the run's last step: what follows (its audit, the next stage) is not unlearning
                    stages.finish()
                    state["unlearning"], state["ended"] = False, (event.step, event.steps_total)
                return
            state["unlearning"], state["ended"] = False, None
            kind = getattr(event, "kind", None)
            if kind == "slice_start":
                stages.finish()
                stages.start(slice_label(event))
            elif kind == "step":
                if stages.stage != slice_label(event):  # resumed mid-slice: no slice_start came
                    stages.finish()
                    stages.start(slice_label(event))
                loss = f"loss={event.loss:.3f}" if event.loss is not None else ""
                stages.update(event.step, event.steps_total or None, loss)
            elif kind == "slice_end":
                stages.finish(f"{slice_label(event)} → {event.version}")

        yield callback
        stages.finish()
