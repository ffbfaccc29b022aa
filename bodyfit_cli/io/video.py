"""Reading video frame by frame and writing the overlay video, with OpenCV (FFmpeg backend).

Frames are decoded one at a time and handed on, so memory does not grow with the clip's length.
Phone videos store their rotation as metadata; OpenCV applies it when asked (CAP_PROP_ORIENTATION_AUTO),
so frames come out upright, and the frame size is taken from the decoded frames, not the header.
OpenCV is imported by the reader and the writer, not with the module: `FrameRange` is part of every job.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bodyfit_cli.errors import InputError, OutputError

# Containers estimate their frame count from the duration; a clip that stops this many frames
# short of it (or more) was cut off, fewer is rounding.
_SHORT_FRAMES = 2

if TYPE_CHECKING:
    import cv2
    import numpy as np


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based position in the clip
    time_s: float  # index / fps
    rgb: np.ndarray  # (H, W, 3) uint8, upright


@dataclass(frozen=True)
class FrameRange:
    """Which frames to process: from `start` to `end` seconds (None: the end), every `stride`-th."""

    start: float = 0.0
    end: float | None = None
    stride: int = 1

    def first_last(self, fps: float, frame_count: int) -> tuple[int, int]:
        """First frame index and one past the last one wanted (by the header's frame count)."""
        first = math.ceil(self.start * fps - 1e-6)
        last = frame_count if self.end is None else min(frame_count, math.floor(self.end * fps - 1e-6) + 1)
        return first, last

    def count(self, fps: float, frame_count: int) -> int:
        first, last = self.first_last(fps, frame_count)
        return max(0, -(-(last - first) // self.stride))


class VideoReader:
    """An open video file. `frames()` yields the wanted frames; afterwards `error` says whether
    decoding stopped before the end the container announced (a truncated or corrupt file)."""

    def __init__(self, path: Path) -> None:
        import cv2

        path = Path(path)
        if not path.is_file():
            raise InputError(f"cannot read video: {path} ({'is a directory' if path.is_dir() else 'no such file'})")
        if path.stat().st_size == 0:
            raise InputError(f"cannot read video: {path} (empty file)")
        self.path = path
        self._cap = self._open()
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if not (0 < self.fps < 1000) or self.frame_count <= 0:
            self.close()
            raise InputError(f"cannot read video: {path} (no frames or no frame rate)")
        ok, first = self._cap.read()
        if not ok:
            self.close()
            raise InputError(f"cannot read video: {path} (no frame decodes)")
        self._pending: np.ndarray | None = first  # frame 0, read to learn the upright frame size
        self.height, self.width = first.shape[:2]
        self.error: str | None = None

    def _open(self) -> cv2.VideoCapture:
        import cv2

        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise InputError(f"cannot read video: {self.path} (not a video or corrupt)")
        # Off by default in OpenCV 4.11's FFmpeg backend (and refused as an open() parameter).
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return cap

    def _seek(self, frame: int) -> int:
        """Go to `frame` (FFmpeg seeks to the keyframe before it and decodes forward to it, so the frame is
        exact); returns the index the next read gives: `frame`, or 0 where the container cannot seek, and
        then the reader starts over from the first frame."""
        import cv2

        self._pending = None
        if self._cap.set(cv2.CAP_PROP_POS_FRAMES, frame) and round(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) == frame:
            return frame
        self._cap.release()
        self._cap = self._open()
        return 0

    def frames(self, wanted: FrameRange) -> Iterator[Frame]:
        """The wanted frames in order: from a seek to the first wanted one, then the ones between strides
        only grabbed, not converted."""
        import cv2
        import numpy as np

        first, last = wanted.first_last(self.fps, self.frame_count)
        index = self._seek(first) if first > 0 else 0
        while index < last:
            take = index >= first and (index - first) % wanted.stride == 0
            if self._pending is not None:
                bgr, self._pending = self._pending, None
            elif take:
                ok, bgr = self._cap.read()
                bgr = bgr if ok else None
            else:
                bgr = np.empty(0) if self._cap.grab() else None
            if bgr is None:
                if index < last - _SHORT_FRAMES + 1:
                    self.error = (
                        f"decoding stopped at frame {index} of {self.frame_count} (truncated or corrupt video); "
                        f"kept the frames before it"
                    )
                return
            if take:
                yield Frame(index, index / self.fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoWriter:
    """An MP4 (MPEG-4 part 2, 'mp4v': in every OpenCV build) written frame by frame from RGB frames."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        import cv2

        self.path = Path(path)
        self.size = (width, height)
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self._writer.isOpened():
            raise OutputError(f"cannot write video: {path} (OpenCV could not open an mp4v writer)")

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape != (self.size[1], self.size[0], 3):
            raise ValueError(f"frame is {rgb.shape}, the video is {self.size[0]}x{self.size[1]}")
        import cv2

        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
