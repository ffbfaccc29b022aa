"""The loop every fitting command runs over its inputs, and the local engine.

`process_inputs` expands the arguments, skips finished inputs, hands the rest to an engine (`LocalRunner`
here, `ray_engine.RayEngine` on a cluster) and reports each input as it ends, one failure never stopping
the others. What stops every input (an unknown body model, no CUDA) is raised from `Runner.start` as a
`BodyfitError`, before any input is reported: the command line makes it the run's one usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bodyfit_cli.batch.jobs import Job, Outcome, Pipelines, attempt
from bodyfit_cli.errors import InputError
from bodyfit_cli.io.ctrl_c import stop_if_ctrl_c
from bodyfit_cli.io.inputs import InputItem, expand_inputs
from bodyfit_cli.progress import err, fail_line, progress_bar, warn_line

if TYPE_CHECKING:
    from rich.progress import Progress


class Runner(Protocol):
    """An engine: runs the inputs still to do and yields their outcomes as they finish (the progress bar is
    the caller's)."""

    def start(self) -> None:
        """Get ready to run inputs (load the models); called once, only when some input is left to do, and
        before any input is reported, so that what stops every input is the run's one usage error."""

    def __call__(self, items: list[InputItem], progress: Progress) -> Iterator[Outcome]: ...


class LocalRunner:
    """The local engine: one input after the other in this process, with a progress bar of a video's frames.
    The models load in `start`, so a run whose inputs are all finished imports neither torch nor MediaPipe."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.pipelines: Pipelines | None = None

    def start(self) -> None:
        self.pipelines = Pipelines(self.job)  # device, method, body model, --out: a BodyfitError stops the run

    def __call__(self, items: list[InputItem], progress: Progress) -> Iterator[Outcome]:
        pipelines = self.pipelines
        if not items:
            return
        assert pipelines is not None, "start() runs first"
        for item in items:
            stop_if_ctrl_c()
            task = progress.add_task(item.path.name, total=None, unit="frames")
            outcome = attempt(
                item,
                lambda: pipelines.run(item, lambda done, total: progress.update(task, completed=done, total=total)),
            )
            progress.remove_task(task)
            yield outcome


def process_inputs(
    paths: list[str], job: Job, runner: Runner, *, json_lines: bool, quiet: bool, overwrite: bool, debug: bool
) -> int:
    """The loop of `image`, `video` and `batch` over their inputs: expand the arguments, skip finished inputs
    (their result file exists) unless --overwrite, hand the others to `runner`, one failure never stopping
    the rest; one line per input on stderr, one JSON object per input on stdout with --json, in the order
    inputs finish. Returns the number of failed inputs.

    Which inputs are finished is told from their result paths alone, before `runner.start()` loads anything,
    and `start` runs only when some input is left to do: a re-run with nothing to do loads no model."""
    bad_args: list[tuple[str, InputError]] = []
    items = expand_inputs(paths, set(job.kinds), stdin=sys.stdin, errors=bad_args)  # a bad argument fails alone
    done_paths = {item: job.result_path(item) for item in items}
    todo = [item for item in items if overwrite or not done_paths[item].is_file()]
    if todo:
        runner.start()  # what stops every input (e.g. an unknown --method) is reported before anything else
    failed = len(bad_args)
    for arg, e in bad_args:
        fail_line(str(e))
        if json_lines:
            emit({"input": arg, "error": str(e)})

    def finish(outcome: Outcome, skip_line: str | None = None) -> None:
        nonlocal failed
        if outcome.result is None:
            failed += 1
            if debug:
                sys.stderr.write(outcome.trace)
            fail_line(outcome.message)
            if json_lines:
                emit({"input": str(outcome.item.path), "error": outcome.error})
            return
        if "decode_error" in outcome.result:
            warn_line(f"{outcome.item.path}: {outcome.result['decode_error']}")
        if not quiet:
            line = skip_line or describe(outcome.item, outcome.result, job.result_path(outcome.item))
            err.print(line, soft_wrap=True, markup=False)  # paths may hold [brackets]
        if json_lines:
            emit(outcome.result)

    with progress_bar(err, disable=quiet, transient=True) as progress:
        task = progress.add_task("inputs", total=len(items), visible=len(items) > 1)
        waiting = set(todo)
        for item in items:
            if item in waiting:
                continue
            done = done_paths[item]
            outcome = attempt(item, lambda: job.load_done(item, done))
            finish(outcome, skip_line=f"skip {item.path} (done: {done}; --overwrite to redo)")
            progress.advance(task)
        for outcome in runner(todo, progress):
            finish(outcome)
            progress.advance(task)
    return failed


def describe(item: InputItem, result: dict, done: Path) -> str:
    """The line a finished input gets on stderr."""
    if "frames" in result:
        tracks = len(result["tracks"])
        return (
            f"{item.path}: {result['frames']} frames, {tracks} {'track' if tracks == 1 else 'tracks'}, "
            f"{result['frames_per_s']} frames/s -> {done}"
        )
    n = len(result["people"])
    return f"{item.path}: {n} {'person' if n == 1 else 'people'} -> {done}"


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
