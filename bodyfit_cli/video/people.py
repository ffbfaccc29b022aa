"""Finding the people of each video frame fast enough for video.

The full multi-person search of a photo (several MediaPipe calls, people painted out one by one)
costs ~170 ms on a 720p frame. In a video people are close to where they were a frame ago, so the
search runs on the first frame and then every `search_every` frames, for people who come in, and each
person found is followed: looked for in their last box grown by a quarter on each side (one MediaPipe
call on that crop, ~45 ms at 720p).

One person, the most prominent, is followed faster (~30 ms) by MediaPipe's tracking mode, which runs the
landmark model on the region the last frame's landmarks give and skips the person detector. But to find
its person in the first place it runs that detector on the whole frame shrunk to 224 pixels, where
someone half as tall as a wide frame has a face (what the detector looks for) a few pixels across: on
the sports2d demo it found nobody in the first 3 frames at 1768x994, and in the first 45 at 1280x720;
and its first landmarks after finding someone can be far off (at 1768x994, frame 3's box reached below
the feet and the person was lost again in frame 4). Followed by tracking mode alone, people were then
missing from the first frames and jumped when tracking mode took over. So tracking mode is trusted only
once it agrees with our own estimate of someone (boxes overlapping by `_LOCK_IOU`), and until then, or
when it loses its person, that person is followed like the others. It is tried in every frame even while
it finds nobody: its detector succeeds in odd frames only (frames 3 and 7 of the demo), and trying every
5th frame instead let it miss the person on the demo's box, lock on to one who came in later, and so
leave the first to the box search, which lost them in their back flip.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector
from bodyfit_cli.detection.types import PersonKeypoints
from bodyfit_cli.io.video import Frame
from bodyfit_cli.video.tracking import iou_matrix

Box = tuple[float, float, float, float]

# Two detections overlapping by this fraction of the smaller box are the same person.
_SAME_PERSON_OVERLAP = 0.5
# Someone is looked for in their last box grown by this fraction of its size on each side.
_SEARCH_MARGIN = 0.25
# Tracking mode takes over following someone once its box and ours overlap this much (intersection over
# union). Once it has settled on a person the two agree to 0.9 or more; its first frames often do not.
_LOCK_IOU = 0.8


class PeopleFinder(Protocol):
    """Where the video pipeline gets a frame's people, which it then tracks: MediaPipe (`VideoPeopleFinder`)
    or the clip's keypoint files (`video.keypoint_frames.KeypointFrames`)."""

    def find(self, frame: Frame) -> list[PersonKeypoints]: ...


class VideoPeopleFinder:
    def __init__(self, detector: MediaPipeDetector, max_people: int, search_every: int = 30) -> None:
        self.detector = detector
        self.max_people = max_people
        self.search_every = search_every
        self._boxes: list[Box] = []  # the last frame's people, the one tracking mode follows first
        self._locked = False  # whether tracking mode follows the first of them
        self._step = 0

    def reset(self) -> None:
        """A new clip starts."""
        self.detector.reset()
        self._boxes = []
        self._locked = False
        self._step = 0

    def find(self, frame: Frame) -> list[PersonKeypoints]:
        """The people of the next frame, at most `max_people`, the one tracking mode follows first."""
        rgb = frame.rgb
        if not self.detector.can_track:  # a user's PoseLandmarker model: the photo search in every frame
            return self.detector.detect(rgb)[: self.max_people]
        tracked = self.detector.track(rgb)
        people = [tracked] if self._locked and tracked is not None else []
        self._locked = bool(people)
        for box in self._boxes[len(people) :]:
            for person in self.detector.find_in(rgb, _grow(box))[:1]:
                self._add(people, person)
        if self._step % self.search_every == 0 and len(people) < self.max_people:
            for person in self.detector.detect(rgb):
                self._add(people, person)
        if tracked is not None and not self._locked:
            self._lock_on(tracked, people)
        self._boxes = [p.bbox for p in people]
        self._step += 1
        return people

    def _add(self, people: list[PersonKeypoints], person: PersonKeypoints) -> None:
        """Count `person` in, unless there is no room or they are someone already found."""
        if len(people) < self.max_people and not _same_as_any(person, people):
            people.append(person)

    def _lock_on(self, tracked: PersonKeypoints, people: list[PersonKeypoints]) -> None:
        """Let tracking mode follow the person it agrees with from the next frame on (they move first); if it
        found someone nobody else did, count them in, to be checked against the next frame."""
        if people:
            overlap = iou_matrix(np.array([tracked.bbox]), np.array([p.bbox for p in people]))[0]
            best = int(overlap.argmax())
            if overlap[best] >= _LOCK_IOU:
                people.insert(0, people.pop(best))
                self._locked = True
                return
        self._add(people, tracked)


def _grow(box: Box) -> Box:
    x0, y0, x1, y1 = box
    dx, dy = _SEARCH_MARGIN * (x1 - x0), _SEARCH_MARGIN * (y1 - y0)
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def _same_as_any(person: PersonKeypoints, people: list[PersonKeypoints]) -> bool:
    """Whether `person` overlaps someone already found by more than half of the smaller box: two
    estimates of one body (the tracked one and a search's) differ more in extent than in place."""
    if not people:
        return False
    a, b = np.array([person.bbox]), np.array([p.bbox for p in people])
    lo, hi = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    smaller = np.minimum((a[:, 2:] - a[:, :2]).prod(-1), (b[:, 2:] - b[:, :2]).prod(-1))
    return bool((inter > _SAME_PERSON_OVERLAP * np.maximum(smaller, 1e-9)).any())
