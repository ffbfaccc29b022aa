"""What commands show on stderr: the one progress bar of every long command (only on a terminal, so logs stay
clean), and bodyfit's own error and warning lines."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

err = Console(stderr=True, highlight=False)


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


def fail_line(message: str) -> None:
    err.print(f"[bold red]bodyfit: error:[/] {escape(message)}", soft_wrap=True)


def warn_line(message: str) -> None:
    err.print(f"[bold yellow]bodyfit: warning:[/] {escape(message)}", soft_wrap=True)
