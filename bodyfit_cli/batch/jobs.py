"""What every input of a run shares, and how one input ends: the pieces the local and Ray engines have in common.

A `Job` is small and picklable: it is all a worker needs to build its own `Pipelines` (the models, loaded
once per worker). A `Job` alone tells finished inputs apart and reads them back: this module imports no
model code (torch, MediaPipe) until a `Pipelines` is built, so a run with nothing left to do loads none.
`attempt` contains one input's failure the same way in this process and in a worker, as text, since
exceptions and their tracebacks do not reliably survive the trip back from another process.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bodyfit_cli.errors import BodyfitError
from bodyfit_cli.io.inputs import VIDEO_EXTENSIONS, InputItem
from bodyfit_cli.io.video import FrameRange
from bodyfit_cli.options import (
    EXPORT_FORMATS,
    Options,
    clip_outputs,
    clip_result_path,
    image_result_path,
    read_summary,
)

if TYPE_CHECKING:
    from bodyfit_cli.video.pipeline import ProgressFn, VideoPipeline


@dataclass
class Job:
    """The options of a run, and which kinds of input it takes ({"image"}, {"video"} or both)."""

    opts: Options
    kinds: frozenset[str] = frozenset({"image"})
    frames: FrameRange = field(default_factory=FrameRange)
    smooth: bool = True
    mesh_every: int = 10
    exports: tuple[str, ...] = EXPORT_FORMATS

    def kind(self, item: InputItem) -> str:
        """A run of one kind takes every input as that kind (the reader decides if it is usable); a mixed
        run goes by the suffix."""
        if len(self.kinds) == 1:
            return next(iter(self.kinds))
        return "video" if item.path.suffix.lower() in VIDEO_EXTENSIONS else "image"

    def result_path(self, item: InputItem) -> Path:
        """The file whose presence marks `item` as done."""
        return clip_result_path(self.opts, item) if self.kind(item) == "video" else image_result_path(self.opts, item)

    def load_done(self, item: InputItem, done: Path) -> dict:
        """What `--json` prints for an input finished earlier."""
        if self.kind(item) == "video":
            return read_summary(item, clip_outputs(self.opts, self.mesh_every, self.exports, item))
        return json.loads(done.read_text(encoding="utf-8"))


class Pipelines:
    """The image and video pipelines of one process, on one set of models; each input goes to its kind's."""

    def __init__(self, job: Job) -> None:
        from bodyfit_cli.pipeline import ImagePipeline  # torch and the models: imported once there is work

        self.job = job
        self.image = ImagePipeline(job.opts)
        self.video: VideoPipeline | None = None
        if "video" in job.kinds:  # the video stages (tracking imports scipy) only for a run that takes videos
            from bodyfit_cli.video.pipeline import VideoPipeline

            # `bodyfit video --keypoints` is a folder of the clips' frames; `bodyfit batch --keypoints`, the images' file.
            keypoints = job.opts.keypoints if job.kinds == {"video"} else None
            self.video = VideoPipeline(
                self.image,
                job.frames,
                smooth=job.smooth,
                mesh_every=job.mesh_every,
                exports=job.exports,
                keypoints=keypoints,
            )

    def run(self, item: InputItem, frames_done: ProgressFn | None = None) -> dict:
        """Process one input and write its results; returns what `--json` prints for it."""
        if self.job.kind(item) == "video":
            assert self.video is not None, "a job of images only takes no video"
            return self.video.run(item, frames_done)
        return self.image.run(item)


@dataclass
class Outcome:
    """How one input ended: its result, or its error as `--json` prints it plus the one line shown on stderr."""

    item: InputItem
    result: dict | None = None
    error: str | None = None
    message: str = ""
    trace: str = ""  # the traceback, shown with --debug


def attempt(item: InputItem, work: Callable[[], dict]) -> Outcome:
    """Run one input's work; a failure ends that input alone and is described for the user, on one line."""
    try:
        return Outcome(item, result=work())
    except Exception as e:  # noqa: BLE001 - one input's boundary (here or in a worker): it fails alone
        return Outcome(item, error=str(e), message=failure_message(item.path, e), trace=traceback.format_exc())


def failure_message(path: Path, e: Exception) -> str:
    """An error users can cause as it is (naming the input); anything else as an internal error."""
    if isinstance(e, BodyfitError):
        return f"{path}: {e}" if str(path) not in str(e) else str(e)
    return f"{path}: internal error: {type(e).__name__}: {e} (run with --debug for details)"
