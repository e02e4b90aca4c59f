"""Progress labels name the stage that runs; a log file hears from a long step at least every 30 s."""

from __future__ import annotations

import io
import time

from rich.console import Console

from lethe.cli.progress import progress_callback
from lethe.train.progress import ProgressEvent


def plain_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=200), buffer


def slice_event(kind: str, run_kind: str, step: int = 0, **extra) -> ProgressEvent:
    return ProgressEvent(
        kind=kind,
        slice_index=2,
        slice_position=0,
        slices_total=2,
        step=step,
        steps_total=10,
        run_kind=run_kind,
        **extra,
    )


def test_labels_name_the_stage_and_never_show_an_unknown_total():
    out, buffer = plain_console()
    with progress_callback(True, out=out, heartbeat=3600) as callback:
        callback(slice_event("slice_start", "train"))
        callback(slice_event("step", "train", step=10, losses={"loss": 1.5}))
        callback(slice_event("slice_end", "train", version="v3"))
        callback(slice_event("slice_start", "replay"))
        callback(slice_event("slice_end", "replay", version="v7"))
        for step in (1, 2):
            callback(ProgressEvent(kind="unlearn", step=step, steps_total=2, losses={"loss": -7.3}))
    text = buffer.getvalue()
    assert "train slice 2 (1/2): started" in text and "train slice 2 (1/2) → v3: done" in text
    assert "replay slice 2 (1/2): started" in text
    assert "unlearning: started" in text and "unlearning: done, 2 steps" in text
    assert "None" not in text
    # the unlearning run's loss never appears under a training label
    assert all("loss=-7.3" not in line for line in text.splitlines() if "slice" in line)


def test_a_log_file_gets_a_line_while_a_long_step_runs():
    out, buffer = plain_console()
    with progress_callback(True, out=out, heartbeat=0.3) as callback:
        callback(slice_event("slice_start", "update"))
        callback(slice_event("step", "update", step=3, losses={"loss": 2.0}))
        time.sleep(1.2)  # one long step: no event arrives, the heartbeat still speaks
        lines = [line for line in buffer.getvalue().splitlines() if "step 3/10" in line]
    assert len(lines) >= 2, buffer.getvalue()
    assert lines[0].startswith("update slice 2 (1/2): step 3/10 loss=2.000")


def test_the_heartbeat_stops_with_the_last_unlearning_step():
    out, buffer = plain_console()
    with progress_callback(True, out=out, heartbeat=0.3) as callback:
        for step in (1, 2, 2):  # the last step reported twice (its step, then its evaluation)
            callback(ProgressEvent(kind="unlearn", step=step, steps_total=2, losses={"loss": -0.1}))
        time.sleep(1.0)  # the audit and the next stages run: nothing is unlearning any more
    lines = buffer.getvalue().splitlines()
    assert lines.count("unlearning: started") == 1, lines
    done = next(i for i, line in enumerate(lines) if line.startswith("unlearning: done, 2 steps"))
    assert not any(line.startswith("unlearning") for line in lines[done + 1 :]), lines


def test_a_reader_that_leaves_silences_the_progress_and_never_stops_the_work():
    class Gone(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    out = Console(file=Gone(), force_terminal=False, width=200)
    with progress_callback(True, out=out, heartbeat=3600) as callback:
        callback(slice_event("slice_start", "train"))  # the first line breaks: no exception
        for step in (1, 2):
            callback(ProgressEvent(kind="unlearn", step=step, steps_total=2, losses={"loss": 0.1}))


def test_lethe_piped_into_a_reader_that_leaves_exits_without_a_traceback():
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before lethe writes
    result = subprocess.run(
        [sys.executable, "-m", "lethe", "--help"], check=False, stdout=write, stderr=subprocess.PIPE, timeout=120
    )
    os.close(write)
    assert result.returncode != 0 and b"Traceback" not in result.stderr, result.stderr.decode()[-500:]
