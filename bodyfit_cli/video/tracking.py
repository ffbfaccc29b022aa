"""Stable track ids for the people of consecutive frames: boxes matched to the tracks' last boxes by
overlap (IoU), one-to-one with the Hungarian algorithm; a track unseen for a while ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

Box = Sequence[float]  # x0, y0, x1, y1


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of boxes a (N, 4) and b (M, 4)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    last_seen: int  # step of the last match


class Tracker:
    """Assigns track ids to boxes, frame after frame.

    min_iou: least overlap with a track's last box to continue it (people move between strided frames).
    max_missed: steps a track may go unmatched before it ends and its id is retired.
    """

    def __init__(self, min_iou: float = 0.2, max_missed: int = 15) -> None:
        self.min_iou, self.max_missed = min_iou, max_missed
        self.tracks: list[Track] = []
        self._next_id = 0
        self._step = -1

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """Track ids for this step's boxes, in the same order; unmatched boxes start new tracks."""
        self._step += 1
        self.tracks = [t for t in self.tracks if self._step - t.last_seen <= self.max_missed]
        new = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = [-1] * len(new)
        if self.tracks and len(new):
            iou = iou_matrix(new, np.stack([t.box for t in self.tracks]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.min_iou:
                    track = self.tracks[c]
                    ids[r] = track.track_id
                    track.box, track.last_seen = new[r], self._step
        for r, box in enumerate(new):
            if ids[r] < 0:
                ids[r] = self._next_id
                self.tracks.append(Track(self._next_id, box, self._step))
                self._next_id += 1
        return ids
