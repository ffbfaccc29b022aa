"""Detected people kept for training: each person's keypoints, camera and mask, from photos, video frames or
renders, with optional 3D truth for evaluation.

Detection is the slow part of learning from pictures (~150 ms a person on a CPU), and every epoch of every
trainer that learns from pictures (the in-the-loop regressor, neural descent) reads the same detections, so
they are made once, here, and saved as one `.npz`:

    keypoints (N, K, 3) float32   full-image pixels and confidence, vocabulary order
    focal (N,) float32            pixels
    image_size (N, 2) int32       W, H
    masks (N, 32, 32) uint8       0-255, the person's `detection.masks.crop_mask` window (zeros when none)
    has_mask (N,) bool
    source (N,) str               image or video file
    frame (N,) int32              video frame (0 for images)
    has_truth (N,) bool           optional, with true_keypoints3d (N, K, 3) float32 camera frame, metres:
    true_keypoints3d              for evaluation only; training never reads them
    points3d (N, K, 3) float32    optional: the detector's own 3D keypoints (`PersonKeypoints.points3d`), NaN
                                  for people detected without them
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from bodyfit_cli.core.types import Observations
from bodyfit_cli.detection.masks import MASK_SIZE
from bodyfit_cli.detection.types import PersonKeypoints, bbox_from_keypoints
from bodyfit_cli.errors import BodyfitError, InputError
from bodyfit_cli.geometry.camera import default_focal
from bodyfit_cli.io.atomic import atomic_path
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS, mirror_name

Index = int | slice | Sequence[int] | np.ndarray | torch.Tensor
_OPTIONAL = ("true_keypoints3d", "has_truth", "points3d")  # arrays a saved set may lack


def observations_from(
    keypoints: np.ndarray, focal: np.ndarray, image_size: np.ndarray, device: torch.device
) -> Observations:
    """`Observations` for B people as `ImagePipeline.observations` builds them: the box around the confident
    keypoints (`bbox_from_keypoints`), scale its diagonal (at least 10 px), principal point the image centre.

    keypoints (B, K, 3), focal (B,), image_size (B, 2) W, H.
    """
    boxes = torch.tensor(
        np.array([bbox_from_keypoints(k) for k in keypoints], np.float64).reshape(-1, 4), dtype=torch.float32
    )
    scale = (boxes[:, 2:] - boxes[:, :2]).norm(dim=-1).clamp(min=10.0)
    f = torch.as_tensor(np.asarray(focal, np.float32))
    return Observations(
        keypoints=torch.as_tensor(np.asarray(keypoints, np.float32)).to(device),
        focal=torch.stack([f, f], -1).to(device),
        center=(torch.as_tensor(np.asarray(image_size, np.float32)) / 2.0).to(device),
        scale=scale.to(device),
    )


@dataclass
class DetectionSet:
    """N detected people; see the module docstring for the arrays."""

    keypoints: np.ndarray
    focal: np.ndarray
    image_size: np.ndarray
    masks: np.ndarray
    has_mask: np.ndarray
    source: np.ndarray
    frame: np.ndarray
    true_keypoints3d: np.ndarray | None = None
    has_truth: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    points3d: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.keypoints)
        if len(self.has_truth) == 0 and n:
            self.has_truth = np.zeros(n, bool)
        if self.true_keypoints3d is None and self.has_truth.any():
            raise ValueError("has_truth without true_keypoints3d")
        expected = {
            "keypoints": (n, NUM_KEYPOINTS, 3),
            "focal": (n,),
            "image_size": (n, 2),
            "masks": (n, MASK_SIZE, MASK_SIZE),
            "has_mask": (n,),
            "source": (n,),
            "frame": (n,),
            "has_truth": (n,),
        }
        for name in ("true_keypoints3d", "points3d"):
            if getattr(self, name) is not None:
                expected[name] = (n, NUM_KEYPOINTS, 3)
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must be {shape}, got {getattr(self, name).shape}")

    def __len__(self) -> int:
        return len(self.keypoints)

    def save(self, path: Path) -> None:
        """One `.npz`, written atomically; `true_keypoints3d` and `points3d` only when the set has them."""
        arrays = {
            "keypoints": self.keypoints.astype(np.float32),
            "focal": self.focal.astype(np.float32),
            "image_size": self.image_size.astype(np.int32),
            "masks": self.masks.astype(np.uint8),
            "has_mask": self.has_mask.astype(bool),
            "source": self.source.astype(str),
            "frame": self.frame.astype(np.int32),
            "has_truth": self.has_truth.astype(bool),
        }
        for name in ("true_keypoints3d", "points3d"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name).astype(np.float32)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    @staticmethod
    def load(path: Path) -> DetectionSet:
        how = "make it with 'bodyfit train detect' or scripts/make_renders.py, or train with --unlabelled none"
        try:
            with np.load(path, allow_pickle=False) as data:
                names = [f.name for f in fields(DetectionSet) if f.name not in _OPTIONAL]
                arrays = {name: data[name] for name in names}
                arrays.update({name: data[name] for name in _OPTIONAL if name in data})
            return DetectionSet(**arrays)
        except FileNotFoundError:
            raise InputError(f"cannot read detection set: {path} (no such file; {how})") from None
        except IsADirectoryError:
            raise InputError(f"cannot read detection set: {path} (is a directory)") from None
        except KeyError as exc:
            raise InputError(
                f"cannot read detection set: {path} (not a bodyfit detection set: no array {exc}; {how})"
            ) from None
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"cannot read detection set: {path} (not a bodyfit detection set: {exc})") from None

    @staticmethod
    def concatenate(parts: Sequence[DetectionSet]) -> DetectionSet:
        """One set of all rows; truth and the detector's 3D points are kept where every part has them (else
        dropped)."""
        arrays = {
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in fields(DetectionSet)
            if f.name not in _OPTIONAL
        }
        if all(p.true_keypoints3d is not None for p in parts):
            arrays["true_keypoints3d"] = np.concatenate([p.true_keypoints3d for p in parts])  # type: ignore[misc]
            arrays["has_truth"] = np.concatenate([p.has_truth for p in parts])
        if all(p.points3d is not None for p in parts):
            arrays["points3d"] = np.concatenate([p.points3d for p in parts])  # type: ignore[misc]
        return DetectionSet(**arrays)

    def mirrored(self) -> DetectionSet:
        """The same people seen in a left-right mirror about the principal point (the image centre): x -> W - x,
        left and right keypoints swapped, masks flipped. A mirrored person is another plausible person, so a
        trainer learning from detections gets twice as many."""
        swap = [KEYPOINT_INDEX[mirror_name(n)] for n in KEYPOINT_NAMES]
        keypoints = self.keypoints[:, swap].copy()
        keypoints[..., 0] = self.image_size[:, None, 0] - keypoints[..., 0]
        flip = np.array([-1.0, 1.0, 1.0], np.float32)
        truth, points3d = (None if a is None else a[:, swap] * flip for a in (self.true_keypoints3d, self.points3d))
        return replace(
            self, keypoints=keypoints, masks=self.masks[:, :, ::-1].copy(), true_keypoints3d=truth, points3d=points3d
        )

    def rows(self, index: Index) -> np.ndarray:
        """Row numbers (R,) of an int, slice, list, array or tensor index."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        return np.atleast_1d(np.arange(len(self))[index])

    def observations(self, index: Index, device: torch.device | str = "cpu") -> Observations:
        """The rows' `Observations`, as the image pipeline builds them for the same people; masks (float in
        [0, 1]) and the detector's 3D points attached when every row has them, as the pipeline attaches them
        when every person has them."""
        rows = self.rows(index)
        obs = observations_from(self.keypoints[rows], self.focal[rows], self.image_size[rows], torch.device(device))
        if len(rows) and self.has_mask[rows].all():
            obs.masks = torch.from_numpy(self.masks[rows].astype(np.float32) / 255.0).to(obs.keypoints.device)
        if len(rows) and self.points3d is not None and np.isfinite(self.points3d[rows]).all():
            obs.points3d = torch.from_numpy(self.points3d[rows]).to(obs.keypoints.device)
        return obs


class DetectionRows:
    """Collects people image by image and makes the `DetectionSet` of them (shared by `detect_inputs` and
    scripts that render their own pictures)."""

    def __init__(self) -> None:
        self._rows: list[dict[str, np.ndarray | str | int | float | bool]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        people: Sequence[PersonKeypoints],
        width: int,
        height: int,
        source: str,
        frame: int = 0,
        focal: float | None = None,
        truth: Sequence[np.ndarray] | None = None,
    ) -> None:
        """The people of one picture; `truth` (K, 3) per person, camera frame, for evaluation sets."""
        from bodyfit_cli.pipeline import person_masks

        f = focal or default_focal(width, height)
        for i, person in enumerate(people):
            mask = np.zeros((MASK_SIZE, MASK_SIZE), np.uint8)
            if person.mask is not None:
                obs = observations_from(
                    person.keypoints[None], np.array([f]), np.array([[width, height]]), torch.device("cpu")
                )
                mask = np.round(person_masks([person], obs)[0].numpy() * 255).astype(np.uint8)
            self._rows.append(
                {
                    "keypoints": person.keypoints.astype(np.float32),
                    "focal": float(f),
                    "image_size": np.array([width, height]),
                    "masks": mask,
                    "has_mask": person.mask is not None,
                    "source": source,
                    "frame": frame,
                    "true_keypoints3d": np.full((NUM_KEYPOINTS, 3), np.nan, np.float32) if truth is None else truth[i],
                    "has_truth": truth is not None,
                    "points3d": np.full((NUM_KEYPOINTS, 3), np.nan, np.float32)
                    if person.points3d is None
                    else person.points3d,
                }
            )

    def build(self, with_truth: bool = False) -> DetectionSet:
        def stack(name: str, dtype: type | str) -> np.ndarray:
            return np.array([r[name] for r in self._rows], dtype=dtype)

        n = len(self._rows)
        return DetectionSet(
            keypoints=stack("keypoints", np.float32).reshape(n, NUM_KEYPOINTS, 3),
            focal=stack("focal", np.float32),
            image_size=stack("image_size", np.int32).reshape(n, 2),
            masks=stack("masks", np.uint8).reshape(n, MASK_SIZE, MASK_SIZE),
            has_mask=stack("has_mask", bool),
            source=stack("source", str),
            frame=stack("frame", np.int32),
            true_keypoints3d=stack("true_keypoints3d", np.float32).reshape(n, NUM_KEYPOINTS, 3) if with_truth else None,
            has_truth=stack("has_truth", bool) if with_truth else np.zeros(n, bool),
            points3d=stack("points3d", np.float32).reshape(n, NUM_KEYPOINTS, 3),
        )


def detect_inputs(
    paths: list[str], out: Path, stride: int, max_people: int, console: Console, focal: float | None = None
) -> DetectionSet:
    """MediaPipe over images and every `stride`-th frame of videos: everyone found, saved to `out`.

    An input that cannot be read is reported and skipped (one bad file should not cost an hour of detection);
    finding nobody at all is an error.
    """
    from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector
    from bodyfit_cli.io.images import read_image
    from bodyfit_cli.io.inputs import VIDEO_EXTENSIONS, expand_inputs
    from bodyfit_cli.io.video import FrameRange, VideoReader
    from bodyfit_cli.progress import progress_bar

    bad: list[tuple[str, InputError]] = []
    items = expand_inputs(paths, {"image", "video"}, errors=bad)
    for _, e in bad:
        console.print(f"bodyfit: warning: skipped {e}", markup=False, soft_wrap=True)
    rows = DetectionRows()
    failed = 0
    with MediaPipeDetector(max_people=max_people) as detector, progress_bar(console) as progress:
        task = progress.add_task("detecting", total=len(items))

        def add(rgb: np.ndarray, source: Path, frame: int) -> None:
            people = sorted(detector.detect(rgb), key=lambda p: p.bbox[0])
            rows.add(people, rgb.shape[1], rgb.shape[0], str(source), frame, focal)
            progress.update(task, description=f"detecting: {len(rows)} people")

        for item in items:
            try:
                if item.path.suffix.lower() in VIDEO_EXTENSIONS:
                    with VideoReader(item.path) as reader:
                        for frame in reader.frames(FrameRange(stride=stride)):
                            add(frame.rgb, item.path, frame.index)
                else:
                    add(read_image(item.path), item.path, 0)
            except BodyfitError as e:
                failed += 1
                console.print(f"bodyfit: warning: skipped {e}", markup=False, soft_wrap=True)
            progress.advance(task)
    if not len(rows):
        raise InputError(
            f"nobody detected in {len(items)} inputs ({failed} unreadable, {len(bad)} arguments without inputs)"
        )
    data = rows.build()
    data.save(out)
    console.print(
        f"{len(data)} people ({int(data.has_mask.sum())} with masks) from {len(items) - failed} inputs -> {out}"
    )
    return data
