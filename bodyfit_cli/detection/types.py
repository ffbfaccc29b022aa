"""What every detector returns: one `PersonKeypoints` per person, in full-image pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bodyfit_cli.vocabulary import KEYPOINT_NAMES, NUM_KEYPOINTS


@dataclass
class PersonKeypoints:
    """2D keypoints of one person.

    keypoints: (K, 3) float array in `KEYPOINT_NAMES` order: u, v in pixels of the full image,
        confidence in [0, 1]; a keypoint the detector did not give has confidence 0.
    bbox: [x0, y0, x1, y1] in pixels.
    score: detection confidence in [0, 1].
    mask: optional float32 person segmentation in [0, 1] over the whole image, at the resolution detection
        ran at: (H, W) for most photos, smaller for large ones (MediaPipe runs on a copy whose longer side
        is at most `mediapipe_pose.DETECT_MAX_SIDE` pixels, and a full-size mask of a 12000x8000 photo
        would take 384 MB per person). Mask pixel (i, j) covers the image's pixels from (j, i) * mask_scale
        to (j + 1, i + 1) * mask_scale; `detection.masks.crop_mask(mask, center / mask_scale, side /
        mask_scale)` samples it over a window given in image pixels.
    points3d: optional (K, 3) float array, the detector's own 3D keypoints (MediaPipe's world landmarks):
        metres, centred between the hips, axes as the image's (x right, y down, z away from the camera);
        their confidence is the 2D keypoints'. Scale-free: they do not change with the image's size.
    mask_scale: the image's pixels per mask pixel (1: the mask is full-image size).
    """

    keypoints: np.ndarray
    bbox: tuple[float, float, float, float]
    score: float
    mask: np.ndarray | None = None
    points3d: np.ndarray | None = None
    mask_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.mask_scale > 0:
            raise ValueError(f"mask_scale must be positive, got {self.mask_scale}")
        if self.keypoints.shape != (NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints must be ({NUM_KEYPOINTS}, 3), got {self.keypoints.shape}")
        if self.points3d is not None and self.points3d.shape != (NUM_KEYPOINTS, 3):
            raise ValueError(f"points3d must be ({NUM_KEYPOINTS}, 3), got {self.points3d.shape}")

    def as_dict(self) -> dict[str, list[float]]:
        """Named keypoints as written to result files: name -> [u, v, confidence]."""
        return {n: [float(x) for x in self.keypoints[i]] for i, n in enumerate(KEYPOINT_NAMES)}


def bbox_from_keypoints(keypoints: np.ndarray, min_conf: float = 0.05) -> tuple[float, float, float, float]:
    """Tight box around the confident keypoints, grown by 10% on each side."""
    ok = keypoints[:, 2] > min_conf
    if not ok.any():
        return (0.0, 0.0, 0.0, 0.0)
    uv = keypoints[ok, :2]
    lo, hi = uv.min(0), uv.max(0)
    pad = 0.1 * (hi - lo).max()
    return (float(lo[0] - pad), float(lo[1] - pad), float(hi[0] + pad), float(hi[1] + pad))


def most_confident(people: list[PersonKeypoints], n: int) -> list[PersonKeypoints]:
    """The `n` people with the highest scores, the most confident first: who `--max-people` keeps."""
    return sorted(people, key=lambda p: -p.score)[:n]
