"""Reading photos into RGB arrays and writing images, the same way for every input format."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bodyfit_cli.errors import InputError
from bodyfit_cli.io.atomic import write_bytes_atomic


def read_image(path: Path) -> np.ndarray:
    """Read an image file as an (H, W, 3) uint8 RGB array, upright as viewers show it.

    IMREAD_COLOR applies the EXIF orientation of JPEGs and turns grayscale, RGBA (alpha dropped)
    and 16-bit images into 8-bit 3-channel ones; the bytes are read by numpy and decoded from
    memory so that paths OpenCV cannot open (non-ASCII on Windows) work too.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"cannot read image: {path} (no such file)")
    if path.is_dir():
        raise InputError(f"cannot read image: {path} (is a directory)")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read image: {path} ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise InputError(f"cannot read image: {path} (empty file)")
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:  # e.g. a header claiming more pixels than OpenCV's safety limit
        bgr = None
    if bgr is None:
        raise InputError(f"cannot read image: {path} (not an image or corrupt)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_image_atomic(path: Path, rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an (H, W, 3) RGB or (H, W) gray uint8 image; the format follows the suffix.

    Encoding in memory first means an unsupported suffix fails before any file is created.
    """
    path = Path(path)
    if rgb.dtype != np.uint8 or not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)):
        raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 image, got {rgb.shape} {rgb.dtype}")
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    try:
        ok, encoded = cv2.imencode(path.suffix, image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    except cv2.error as exc:
        raise ValueError(f"cannot encode an image as '{path.suffix}': {path}") from exc
    if not ok:
        raise ValueError(f"cannot encode an image as '{path.suffix}': {path}")
    write_bytes_atomic(path, encoded.tobytes())
