"""Keypoints another tool already found, read from OpenPose JSON or COCO keypoint annotations.

Users bring these files to skip detection or to fit ground-truth annotations, so every way a file
can be wrong becomes one `KeypointFileError` line that names the file, never a traceback.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from bodyfit_cli.detection.mappings import COCO_17, OPENPOSE_BODY_25, OPENPOSE_COCO_18
from bodyfit_cli.detection.types import PersonKeypoints, bbox_from_keypoints
from bodyfit_cli.errors import InputError, KeypointFileError

# OpenPose writes x, y, confidence per point; the layout shows only in the length.
_OPENPOSE_BY_LENGTH = {3 * len(lay.names): lay for lay in (OPENPOSE_BODY_25, OPENPOSE_COCO_18)}
_COCO_LENGTH = 3 * len(COCO_17.names)
# A keypoint further than this fraction of the image size outside it cannot belong to the image.
_OUTSIDE_MARGIN = 0.1


def read_keypoint_file(
    path: Path, image_name: str | None = None, image_size: tuple[int, int] | None = None
) -> list[PersonKeypoints]:
    """The people in an OpenPose or COCO keypoint JSON file, in full-image pixels.

    image_name: the photo the keypoints are for; picks its entry in a COCO file listing several.
    image_size: (W, H) of that photo; keypoints far outside it mean the file is for another
        image, which is reported instead of fitting nonsense.
    """
    path = Path(path)
    data = _load_json(path)
    if isinstance(data, dict) and "people" in data:
        people = _read_openpose(data["people"], path)
    elif isinstance(data, dict) and "annotations" in data:
        image_id = _image_id(data.get("images"), path, image_name)
        people = _read_coco_annotations(data["annotations"], path, image_id)
    elif isinstance(data, list):
        people = _read_coco_annotations(data, path, None)
    else:
        raise _bad(path, "neither OpenPose ('people') nor COCO ('annotations') keypoints")
    if image_size is not None:
        _check_inside(people, image_size, path)
    return people


def _bad(path: Path, why: str) -> KeypointFileError:
    """The one-line error for a file that is there but not usable."""
    return KeypointFileError(f"bad keypoint file: {path} ({why})")


def _load_json(path: Path) -> Any:
    """Parsed JSON; a file that is absent or unreadable is an input error, not a layout error."""
    if not path.exists():
        raise InputError(f"cannot read keypoint file: {path} (no such file)")
    if path.is_dir():
        raise InputError(f"cannot read keypoint file: {path} (is a directory)")
    try:
        stat = path.stat()
        return _parse(path, stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise InputError(f"cannot read keypoint file: {path} ({exc.strerror or exc})") from exc


@functools.lru_cache(maxsize=1)
def _parse(path: Path, mtime_ns: int, size: int) -> Any:
    """The JSON of the last file read, kept: one COCO file serves every photo of a run, and
    parsing a large one again per photo costs seconds. mtime_ns and size only key the cache, so
    that a file changed in between is read again. Callers must not modify the result."""
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise _bad(path, "not JSON") from exc


def _numbers(value: Any, sizes: tuple[int, ...], path: Path, what: str) -> np.ndarray:
    """A JSON list of finite numbers with one of the allowed lengths, as a float array."""
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise _bad(path, f"{what} is not a list of numbers")
    if len(value) not in sizes:
        expected = " or ".join(str(s) for s in sizes)
        raise _bad(path, f"{what} has {len(value)} numbers, expected {expected}")
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise _bad(path, f"{what} has non-finite numbers")
    return array


def _person(keypoints: np.ndarray, bbox: tuple[float, float, float, float] | None = None) -> PersonKeypoints | None:
    """A person from keypoints in our order, or None when not one keypoint is given."""
    given = keypoints[:, 2] > 0
    if not given.any():
        return None
    score = float(keypoints[given, 2].mean())
    return PersonKeypoints(keypoints, bbox or bbox_from_keypoints(keypoints), score)


def _read_openpose(people: Any, path: Path) -> list[PersonKeypoints]:
    """OpenPose's `people` list; BODY_25 and COCO-18 people are told apart by their length.

    OpenPose before 1.2 named the points `pose_keypoints`, later versions `pose_keypoints_2d`.
    """
    if not isinstance(people, list):
        raise _bad(path, "'people' is not a list")
    found = []
    for i, entry in enumerate(people):
        values = None
        if isinstance(entry, dict):
            values = entry.get("pose_keypoints_2d", entry.get("pose_keypoints"))
        if values is None:
            raise _bad(path, f"people[{i}] has no pose_keypoints_2d")
        what = f"people[{i}].pose_keypoints_2d"
        flat = _numbers(values, tuple(_OPENPOSE_BY_LENGTH), path, what)
        keypoints = _OPENPOSE_BY_LENGTH[flat.size].convert(flat.reshape(-1, 3))
        keypoints[:, 2] = np.clip(keypoints[:, 2], 0.0, 1.0)  # heatmap peaks can pass 1 a little
        person = _person(keypoints)
        if person is not None:
            found.append(person)
    return found


def _image_id(images: Any, path: Path, image_name: str | None) -> object:
    """The id of the photo's COCO `images` entry: the one with the same file name or, so that
    renamed copies like `coco_000000000785.jpg` still work, the one it is a prefixed copy of."""
    if not isinstance(images, list) or not all(isinstance(im, dict) for im in images):
        raise _bad(path, "'images' is not a list of image entries")
    if image_name is None:
        if len(images) != 1:
            raise _bad(path, f"lists {len(images)} images and no image name was given to pick one")
        entry = images[0]
    else:
        name = Path(image_name).name
        listed = [(im, Path(str(im.get("file_name", ""))).name) for im in images]
        matches = [im for im, file_name in listed if file_name == name] or [
            im for im, file_name in listed if _is_prefixed(name, file_name)
        ]
        if not matches:
            raise _bad(path, f"image {name} is not listed")
        if len(matches) > 1:
            raise _bad(path, f"image {name} is listed {len(matches)} times")
        entry = matches[0]
    if entry.get("id") is None:
        raise _bad(path, "an image entry has no id")
    return entry["id"]


def _is_prefixed(name: str, file_name: str) -> bool:
    """Whether `name` is `file_name` behind a prefix that ends in a separator (`coco_`, `val-`)."""
    cut = len(name) - len(file_name)
    return bool(file_name) and cut > 0 and name.endswith(file_name) and not name[cut - 1].isalnum()


def _read_coco_annotations(annotations: Any, path: Path, image_id: object | None) -> list[PersonKeypoints]:
    """COCO keypoint annotations of one image (all of them when image_id is None).

    Visibility 0 (not labelled) becomes confidence 0; 1 (occluded) and 2 (visible) are both
    labelled positions, so confidence 1. Annotations with no labelled keypoint are skipped.
    """
    if not isinstance(annotations, list):
        raise _bad(path, "'annotations' is not a list")
    found = []
    seen_images: set[str] = set()
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict) or "keypoints" not in ann:
            raise _bad(path, f"annotation {i} has no keypoints")
        if image_id is not None and ann.get("image_id") != image_id:
            continue
        seen_images.add(repr(ann.get("image_id")))
        flat = _numbers(ann["keypoints"], (_COCO_LENGTH,), path, f"annotation {i} keypoints")
        points = flat.reshape(-1, 3)
        if not np.isin(points[:, 2], (0, 1, 2)).all():
            raise _bad(path, f"annotation {i} has visibility flags other than 0, 1, 2")
        points[:, 2] = points[:, 2] > 0
        bbox = None
        if ann.get("bbox") is not None:
            x, y, w, h = _numbers(ann["bbox"], (4,), path, f"annotation {i} bbox")
            bbox = (float(x), float(y), float(x + w), float(y + h))
        person = _person(COCO_17.convert(points), bbox)
        if person is not None:
            found.append(person)
    if len(seen_images) > 1:
        raise _bad(path, "annotations of several images without an 'images' list to pick one")
    return found


def _check_inside(people: list[PersonKeypoints], image_size: tuple[int, int], path: Path) -> None:
    """Reject keypoints that lie well outside the photo: the file was made for another image."""
    w, h = image_size
    margin = _OUTSIDE_MARGIN * max(w, h)
    for person in people:
        uv = person.keypoints[person.keypoints[:, 2] > 0, :2]
        if (uv < -margin).any() or (uv > np.array([w, h]) + margin).any():
            raise _bad(path, f"keypoints lie outside the {w}x{h} image; is it for another image?")
