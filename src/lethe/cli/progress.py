"""One progress bar for long library work: unlearning steps and (replayed) training steps."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lethe.cli.app import console


@contextmanager
def progress_callback(enabled: bool):
    """A callback drawing a progress bar for unlearning steps and replayed training steps."""
    if not enabled:
        yield None
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("unlearning", total=None, info="")

        def callback(event) -> None:
            total = event.steps_total or None
            if event.kind == "unlearn":  # an unlearning step
                info = " ".join(f"{k}={v:.3f}" for k, v in event.losses.items())
                if event.metrics is not None:
                    m = event.metrics
                    info += f" | forget acc {m.forget_accuracy:.2f} retain acc {m.retain_accuracy:.2f}"
                progress.update(task, completed=event.step, total=total, info=info)
            elif event.kind == "step":  # a replayed training step
                desc = f"replay slice {event.slice_index} ({event.slice_position + 1}/{event.slices_total})"
                loss = f"loss={event.loss:.3f}" if event.loss is not None else ""
                progress.update(task, description=desc, completed=event.step, total=total, info=loss)

        yield callback
