"""The one progress bar every long command shows on stderr (only on a terminal, so logs stay clean)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, for tasks added with a `unit` field (e.g. frames of a video)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit")
        return Text(f"{task.speed:.1f} {unit}/s" if unit and task.speed else "")


def progress_bar(console: Console, disable: bool = False, transient: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        RateColumn(),
        console=console,
        disable=disable or not console.is_terminal,
        transient=transient,
    )
