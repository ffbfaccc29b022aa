"""Person masks in the frame the learned backends read: a square window around the person's keypoints.

The window is centred on the box of the detected keypoints and as wide as `Observations.scale` (the box
diagonal), so the whole person fits whatever their pose, and it is resampled to `MASK_SIZE` pixels a
side: small enough to embed and compare cheaply, large enough to show the limbs.
"""

from __future__ import annotations

import cv2
import numpy as np

MASK_SIZE = 32


def crop_mask(mask: np.ndarray, center: tuple[float, float], side: float, size: int = MASK_SIZE) -> np.ndarray:
    """(size, size) float32 in [0, 1]: `mask` (H, W) sampled over the square of `side` pixels centred at
    `center`; outside the image counts as background."""
    scale = size / max(side, 1e-6)
    # Pixel centres: output pixel i covers input x in [x0 + i/scale, x0 + (i+1)/scale).
    x0, y0 = center[0] - side / 2, center[1] - side / 2
    affine = np.array([[scale, 0.0, -x0 * scale - 0.5 + 0.5 * scale], [0.0, scale, -y0 * scale - 0.5 + 0.5 * scale]])
    # Shrinking by a large factor with bilinear sampling would alias: blur to the output's resolution first.
    src = np.asarray(mask, dtype=np.float32)
    if scale < 0.5:
        k = int(1 / scale) | 1
        src = cv2.blur(src, (k, k))
    out = cv2.warpAffine(src, affine, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return np.clip(out, 0.0, 1.0)
