"""The One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), on arrays of values filtered independently,
and on a person's joint rotations over a clip.

A low-pass filter whose cutoff frequency rises with the signal's speed: slow movement gets a low
cutoff (jitter is smoothed away), fast movement a high one (no lag where it matters).
Timestamps are given, so strided or variable-rate frames are handled.

`bodyfit video` filters the fitted rotations, not the detected keypoints: every frame is fitted on its own
(a start from the last frame's fit carries its errors on, `benchmarks/bench_sequence.py`), and filtering the
result removes the jitter of fitting frame by frame as well as the detector's, while keypoints filtered
before fitting lag behind fast limbs and cost accuracy on every backend.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bodyfit_cli.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, nearest_rotation

# For joint rotations (as matrix entries, which change by about the angle turned, in radians): 2 Hz at rest,
# +3 Hz per radian per second. Chosen on held-out motion capture (bench_sequence.py): with them every backend is
# more accurate than unfiltered and jitters about half as much; smoother settings start to lag.
POSE_MIN_CUTOFF_HZ = 2.0
POSE_BETA = 3.0
# For the pelvis's distance from the camera (metres), which frame-by-frame fits get least well (the 2D keypoints
# tell it only through the body's size), so that it jumps by centimetres between frames and feet on the floor
# slide: a low cutoff at rest, raised with speed. Chosen on a walk of a training subject (CMU 02_02,
# benchmarks/bench_floor.py).
DEPTH_MIN_CUTOFF_HZ = 1.0
DEPTH_BETA = 1.0


def smoothing_factor(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exponential smoothing weight of the new sample for a first-order low pass at `cutoff_hz`."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters a stream of same-shape arrays; entries where `valid` is False are passed through and
    restart there, so a keypoint that reappears is not dragged from where it was last seen.

    min_cutoff (Hz): cutoff at rest (lower: smoother when still). beta: cutoff added per unit of
    speed (value units per second; higher: less lag when moving). d_cutoff (Hz): for the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None  # last filtered value
        self._dx: np.ndarray | None = None  # last filtered speed
        self._t: float | None = None
        self._valid: np.ndarray | None = None  # entries whose state follows a valid value

    def __call__(self, x: np.ndarray, t: float, valid: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        valid = np.ones(x.shape, bool) if valid is None else np.broadcast_to(valid, x.shape)
        if self._x is None or self._valid is None or self._t is None or t <= self._t or self._x.shape != x.shape:
            self._x, self._dx, self._t, self._valid = x.copy(), np.zeros_like(x), t, valid.copy()
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        dx_hat = self._dx + smoothing_factor(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        x_hat = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        carry = valid & self._valid  # filtered now and last time; the others restart from x
        self._x = np.where(carry, x_hat, x)
        self._dx = np.where(carry, dx_hat, 0.0)
        self._t, self._valid = t, valid.copy()
        return self._x.copy()


class RotationFilter:
    """One-Euro filtering of a stream of (J, 3) axis-angle rotations: filtered as rotation matrices, each
    result taken back to the nearest rotation (SVD)."""

    def __init__(self, min_cutoff: float = POSE_MIN_CUTOFF_HZ, beta: float = POSE_BETA) -> None:
        self._filter = OneEuroFilter(min_cutoff, beta)

    def __call__(self, axis_angle: torch.Tensor, t: float) -> torch.Tensor:
        mats = axis_angle_to_matrix(axis_angle.detach().double().cpu())
        rot, _ = nearest_rotation(torch.from_numpy(self._filter(mats.numpy(), t)))
        return matrix_to_axis_angle(rot).to(axis_angle)
