"""People and their 2D keypoints from MediaPipe Pose, in full-image pixels.

MediaPipe's person detector is made for one prominent person: the pose solution shipped with
mediapipe returns one person per call, and PoseLandmarker (used for a user's `.task` model) also
misses people beside a first one. So each person found is painted out of a working copy of the
image with their segmentation mask and the image searched again; then the same is done in two
halves of the image, where people too small at full-image scale are found.

A large photo is searched in a copy shrunk to `DETECT_MAX_SIDE` pixels on its longer side: MediaPipe
finds people on a 224-pixel view of each window and places their landmarks on a 256-pixel crop, so more
pixels give it nothing, and full-size work (painting people out, full-size masks) would take minutes and
gigabytes on a 12000x8000 photo. People come back in the photo's own pixels; masks stay at the copy's
resolution (`PersonKeypoints.mask_scale`).

For video, `track` follows one person from frame to frame with the solution's tracking mode (the
landmark model on the region the last frame's landmarks give; the person detector runs only when
the person is lost), and `find_in` looks for someone inside a box.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import cv2
import numpy as np

from bodyfit_cli.detection.mappings import MEDIAPIPE_POSE
from bodyfit_cli.detection.types import PersonKeypoints, bbox_from_keypoints
from bodyfit_cli.errors import InputError

# MediaPipe's person-detector threshold. At its default of 0.5 the search of image halves finds
# "people" in foliage and lens flare; 0.7 dropped all of those in our checks and kept the people.
_DETECTOR_CONFIDENCE = 0.7
# Landmarks further outside the image than this fraction of its size are guesses, not detections.
_OUTSIDE_MARGIN = 0.1
# A found person is painted out this far beyond its mask (fraction of its bbox size) so that
# no edge of it is found again as a person of its own.
_MASK_GROW = 0.08
# A detection whose bbox lies this much inside an earlier one is the same person again.
_SAME_PERSON_OVERLAP = 0.6
# The longest side, in pixels, of the copy of a photo that people are searched in (see the module's
# docstring): larger photos are shrunk to it first. The search's windows (60% of the longer side) stay
# well above what MediaPipe's person detector (224 pixels) and landmark model (256) see.
DETECT_MAX_SIDE = 1920

_Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels


class _Landmark(Protocol):
    """What both MediaPipe APIs give per landmark (normalised to the image; world landmarks in metres)."""

    x: float
    y: float
    z: float
    visibility: float | None


class MediaPipeDetector:
    """One MediaPipe graph per instance, so models load once per process, not once per image."""

    def __init__(
        self, max_people: int = 4, pose_model: Path | None = None, min_score: float = 0.5, video: bool = False
    ) -> None:
        if max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {max_people}")
        self.max_people = max_people
        self.min_score = min_score
        self._landmarker: Any = None
        self._pose: Any = None
        self._tracker: Any = None
        mp = import_mediapipe()  # slow to import: only when a detector is wanted

        if pose_model is None:
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=1,
                enable_segmentation=True,
                min_detection_confidence=_DETECTOR_CONFIDENCE,
            )
        else:
            self._landmarker = _create_landmarker(mp, Path(pose_model), max_people)
        if video and pose_model is None:
            # Our One-Euro filter smooths (or not, with --no-smooth); MediaPipe's own would add lag.
            self._tracker = mp.solutions.pose.Pose(
                static_image_mode=False,
                model_complexity=1,
                smooth_landmarks=False,
                min_detection_confidence=_DETECTOR_CONFIDENCE,
            )
        self._mp = mp

    def detect(self, image_rgb: np.ndarray) -> list[PersonKeypoints]:
        """Everyone found in an (H, W, 3) uint8 RGB image, at most `max_people`, in its pixels (searched in a
        copy at most `DETECT_MAX_SIDE` pixels long)."""
        if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image_rgb.shape}")
        work, scale = _detection_copy(image_rgb, DETECT_MAX_SIDE)  # painted in: a copy either way
        height, width = work.shape[:2]
        people: list[PersonKeypoints] = []
        for window in _windows(width, height):
            while len(people) < self.max_people:
                added = False
                for person in self._find_in(work, window):
                    if person.score < self.min_score:
                        continue
                    _paint_out(work, person)
                    if len(people) < self.max_people and not _seen(person, people):
                        people.append(person)
                        added = True
                if not added:
                    break
        return [_scaled(person, scale) for person in people]

    @property
    def can_track(self) -> bool:
        return self._tracker is not None

    def track(self, image_rgb: np.ndarray) -> PersonKeypoints | None:
        """The person followed since the last `reset` (or the most prominent one, when lost)."""
        height, width = image_rgb.shape[:2]
        result = self._tracker.process(image_rgb)
        if result.pose_landmarks is None:
            return None
        world = result.pose_world_landmarks.landmark if result.pose_world_landmarks else None
        person = _to_person(result.pose_landmarks.landmark, None, (0, 0, width, height), (width, height), world)
        return person if person.score >= self.min_score else None

    def reset(self) -> None:
        """Forget the tracked person: the next frame is from another clip."""
        if self._tracker is not None:
            self._tracker.reset()

    def find_in(self, image_rgb: np.ndarray, box: tuple[float, float, float, float]) -> list[PersonKeypoints]:
        """People found inside `box` (clipped to the image), in full-image pixels."""
        height, width = image_rgb.shape[:2]
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(width, int(math.ceil(box[2]))), min(height, int(math.ceil(box[3])))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        found = self._find_in(image_rgb, (x0, y0, x1, y1))
        return [p for p in found if p.score >= self.min_score]

    def close(self) -> None:
        """Free the graph and its models; the detector cannot be used afterwards."""
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None
        if self._pose is not None:
            self._pose.close()
            self._pose = None
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _find_in(self, work: np.ndarray, window: _Box) -> list[PersonKeypoints]:
        """The people MediaPipe finds inside `window` of `work` in one call.

        The pose solution gives at most one person; PoseLandmarker up to `max_people`.
        """
        x0, y0, x1, y1 = window
        crop = np.ascontiguousarray(work[y0:y1, x0:x1])
        size = (work.shape[1], work.shape[0])
        if self._landmarker is not None:
            mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=crop)
            result = self._landmarker.detect(mp_image)
            masks = result.segmentation_masks or [None] * len(result.pose_landmarks)
            worlds = result.pose_world_landmarks or [None] * len(result.pose_landmarks)
            return [
                _to_person(landmarks, None if mask is None else mask.numpy_view(), window, size, world)
                for landmarks, mask, world in zip(result.pose_landmarks, masks, worlds)
            ]
        result = self._pose.process(crop)
        if result.pose_landmarks is None:
            return []
        world = result.pose_world_landmarks.landmark if result.pose_world_landmarks else None
        return [_to_person(result.pose_landmarks.landmark, result.segmentation_mask, window, size, world)]


def import_mediapipe() -> Any:
    """`import mediapipe`, without running the modules of its drawing helpers and its tasks API at import.

    mediapipe's package imports all of its solutions, their drawing helpers (which import matplotlib's
    pyplot) and the tasks API (audio, text, vision): most of a second before the first person is found, for
    code the pose solution does not use. Those modules are put in place first as deferred modules, whose
    code runs on first use of one of their attributes: `mp.tasks.vision` (a `.task` pose model) and
    `mp.solutions.drawing_utils` work as before. Where mediapipe is laid out otherwise, or already
    imported, this is a plain import.
    """
    if "mediapipe" not in sys.modules:
        spec = importlib.util.find_spec("mediapipe")  # finds the package without running it
        if spec is not None and spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations)))
            for name in _DEFERRED_MEDIAPIPE:
                file = root.joinpath(*name.split(".")[1:])
                _put_deferred_module(name, file / "__init__.py" if file.is_dir() else file.with_suffix(".py"))
    import mediapipe as mp

    for name in _DEFERRED_MEDIAPIPE:
        _bind_to_package(name)
    return mp


# What `import_mediapipe` defers: the solutions' drawing helpers (matplotlib) and the tasks API (its package
# too: a module found in sys.modules is returned without importing its package first).
_DEFERRED_MEDIAPIPE = (
    "mediapipe.python.solutions.drawing_utils",
    "mediapipe.python.solutions.drawing_styles",
    "mediapipe.tasks",
    "mediapipe.tasks.python",
)


def _bind_to_package(name: str) -> None:
    """Make module `name` an attribute of its package, as importing it does (finding it in sys.modules does not)."""
    package, _, attr = name.rpartition(".")
    if name in sys.modules and package in sys.modules and attr not in vars(sys.modules[package]):
        setattr(sys.modules[package], attr, sys.modules[name])


class _DeferredModule(types.ModuleType):
    """A module whose code runs on first use of an attribute it does not have yet. Unlike importlib's
    LazyLoader, being imported again (the import system reads `__spec__`) is not a use."""

    def __getattr__(self, attr: str) -> Any:  # only called for attributes the module lacks
        if attr == "__path__":  # the import system's question "is it a package?"; a package has one already
            raise AttributeError(attr)
        self.__class__ = types.ModuleType
        self.__spec__.loader.exec_module(self)
        return getattr(self, attr)


def _put_deferred_module(name: str, file: Path) -> None:
    """Put a `_DeferredModule` for the module (or package, for an `__init__.py`) at `file` in sys.modules."""
    if name in sys.modules or not file.is_file():
        return
    package_dir = [str(file.parent)] if file.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=package_dir)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _DeferredModule
    sys.modules[name] = module
    _bind_to_package(name)


def _detection_copy(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy of `image` to search, shrunk (area-averaged) to at most `max_side` pixels on its longer side,
    and the image's pixels per copy pixel (1.0: a full-size copy).

    The shrink is by one exact factor for both axes (OpenCV's `fx`, `fy`), so a point of the copy is at
    `scale` times its coordinates in the image, whatever the rounding of the copy's size.
    """
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image.copy(), 1.0
    factor = max_side / max(height, width)
    return cv2.resize(image, (0, 0), fx=factor, fy=factor, interpolation=cv2.INTER_AREA), 1.0 / factor


def _scaled(person: PersonKeypoints, scale: float) -> PersonKeypoints:
    """A person found in a copy shrunk by `scale`, in the image's pixels; the 3D points are scale-free, and
    the mask stays at the copy's resolution (its `mask_scale` grows by `scale`)."""
    if scale == 1.0:
        return person
    keypoints = person.keypoints.copy()
    keypoints[:, :2] *= scale
    bbox = (person.bbox[0] * scale, person.bbox[1] * scale, person.bbox[2] * scale, person.bbox[3] * scale)
    return replace(person, keypoints=keypoints, bbox=bbox, mask_scale=person.mask_scale * scale)


def _windows(width: int, height: int) -> list[_Box]:
    """Where to search, largest first: the whole image, then the first and the last 60% of its
    longer side (overlapping, so that someone in the middle is whole in one of them)."""
    if width >= height:
        cut = int(0.4 * width)
        return [(0, 0, width, height), (0, 0, width - cut, height), (cut, 0, width, height)]
    cut = int(0.4 * height)
    return [(0, 0, width, height), (0, 0, width, height - cut), (0, cut, width, height)]


def _create_landmarker(mp: Any, pose_model: Path, max_people: int) -> Any:
    """A PoseLandmarker for a `.task` file; a missing or broken file is the user's input error."""
    if not pose_model.is_file():
        raise InputError(f"cannot read pose model: {pose_model} (no such file)")
    vision = mp.tasks.vision
    options = vision.PoseLandmarkerOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=str(pose_model)),
        running_mode=vision.RunningMode.IMAGE,
        num_poses=max_people,
        min_pose_detection_confidence=_DETECTOR_CONFIDENCE,
        output_segmentation_masks=True,
    )
    try:
        return vision.PoseLandmarker.create_from_options(options)
    except (RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot load pose model: {pose_model} (not a MediaPipe pose .task file: {reason})") from exc


def _to_person(
    landmarks: Sequence[_Landmark],
    mask: np.ndarray | None,
    window: _Box,
    image_size: tuple[int, int],
    world: Sequence[_Landmark] | None = None,
) -> PersonKeypoints:
    """Landmarks, world landmarks and mask of one window -> a person in full-image pixels and our vocabulary.

    Visibility is the confidence. MediaPipe also places landmarks it cannot see, far outside the
    frame if need be; those get confidence 0. The score is the mean confidence of our keypoints.
    """
    x0, y0, x1, y1 = window
    width, height = image_size
    points = np.array(
        [(x0 + lm.x * (x1 - x0), y0 + lm.y * (y1 - y0), lm.visibility or 0.0) for lm in landmarks],
        dtype=np.float64,
    )
    keypoints = MEDIAPIPE_POSE.convert(points)
    keypoints[:, 2] = np.clip(keypoints[:, 2], 0.0, 1.0)
    margin = _OUTSIDE_MARGIN * max(width, height)
    uv = keypoints[:, :2]
    outside = ((uv < -margin) | (uv > np.array([width, height]) + margin)).any(axis=1)
    keypoints[outside, 2] = 0.0
    full_mask = None
    if mask is not None:
        full_mask = np.zeros((height, width), dtype=np.float32)
        window_mask = cv2.resize(np.asarray(mask, dtype=np.float32), (x1 - x0, y1 - y0))
        full_mask[y0:y1, x0:x1] = np.clip(window_mask, 0.0, 1.0)
    score = float(keypoints[:, 2].mean())
    points3d = None if world is None else MEDIAPIPE_POSE.convert(np.array([(lm.x, lm.y, lm.z) for lm in world]))
    return PersonKeypoints(keypoints, bbox_from_keypoints(keypoints), score, full_mask, points3d)


def _overlap(inner: tuple[float, ...], outer: tuple[float, ...]) -> float:
    """Fraction of box `inner`'s area that lies inside box `outer`."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return max(w, 0.0) * max(h, 0.0) / area if area > 0 else 1.0


def _seen(person: PersonKeypoints, people: list[PersonKeypoints]) -> bool:
    """Whether `person` is mostly inside someone already found: the same person again."""
    return any(_overlap(person.bbox, other.bbox) > _SAME_PERSON_OVERLAP for other in people)


def _paint_out(work: np.ndarray, person: PersonKeypoints) -> None:
    """Fill the person's grown mask (their bbox if it has none) in `work` with the mean colour
    just around it, in place: a flat fill in the surrounding colour hides the person from the
    next search without leaving an edge that looks like a body."""
    x0, y0, x1, y1 = person.bbox
    region = np.zeros(work.shape[:2], dtype=np.uint8)
    if person.mask is not None:
        grow = max(3, int(_MASK_GROW * max(x1 - x0, y1 - y0)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow))
        region = cv2.dilate((person.mask > 0.5).astype(np.uint8), kernel)
    if not region.any():
        cv2.rectangle(region, (int(x0), int(y0)), (int(x1), int(y1)), 1, thickness=-1)
    inside = region.astype(bool)
    ring = cv2.dilate(region, np.ones((9, 9), np.uint8)).astype(bool) & ~inside
    fill = work[ring].mean(axis=0) if ring.any() else work.mean(axis=(0, 1))
    work[inside] = fill.astype(np.uint8)
