"""The One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), on arrays of values filtered independently.

A low-pass filter whose cutoff frequency rises with the signal's speed: slow movement gets a low
cutoff (detector jitter is smoothed away), fast movement a high one (no lag where it matters).
Timestamps are given, so strided or variable-rate frames are handled.
"""

from __future__ import annotations

import math

import numpy as np


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
