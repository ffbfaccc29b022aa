"""Finding the people of each video frame fast enough for video.

The full multi-person search of a photo (several MediaPipe calls, people painted out one by one)
costs ~170 ms on a 720p frame; following one person in MediaPipe's tracking mode ~30 ms. So the
most prominent person is followed by tracking mode in every frame, the others (with --max-people
above 1) are looked for near where they were in the last frame, and the full search runs again
every `search_every` frames to find people who came in.
"""

from __future__ import annotations

import numpy as np

from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector
from bodyfit_cli.detection.types import PersonKeypoints

# Two detections overlapping by this fraction of the smaller box are the same person.
_SAME_PERSON_OVERLAP = 0.5
# Someone is looked for in their last box grown by this fraction of its size on each side.
_SEARCH_MARGIN = 0.25


class VideoPeopleFinder:
    def __init__(self, detector: MediaPipeDetector, max_people: int, search_every: int = 30) -> None:
        self.detector = detector
        self.max_people = max_people
        self.search_every = search_every
        self._others: list[tuple[float, float, float, float]] = []
        self._step = 0

    def reset(self) -> None:
        """A new clip starts."""
        self.detector.reset()
        self._others = []
        self._step = 0

    def find(self, rgb: np.ndarray) -> list[PersonKeypoints]:
        """The people of the next frame, at most `max_people`, the tracked one first."""
        if not self.detector.can_track:  # a user's PoseLandmarker model: the photo search in every frame
            return self.detector.detect(rgb)[: self.max_people]
        main = self.detector.track(rgb)
        people = [main] if main is not None else []
        if self.max_people > 1:
            if self._step % self.search_every == 0:
                candidates = self.detector.detect(rgb)
            else:
                candidates = [p for box in self._others for p in self.detector.find_in(rgb, _grow(box))[:1]]
            for person in candidates:
                if len(people) < self.max_people and not _same_as_any(person, people):
                    people.append(person)
            self._others = [p.bbox for p in people if p is not main]
        self._step += 1
        return people


def _grow(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
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
