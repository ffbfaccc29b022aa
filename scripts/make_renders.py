"""Rendered people for learning from detections, and a held-out set to measure it on.

The default body model is posed in motion-capture poses from the pose dataset, given a random shape, turned
to a random heading and placed at a random distance in `make_samples`' room, seen by a camera at a random
height and pitch; MediaPipe then finds the person as it would in a photo. Poses of the training trials make
the unlabelled training set (detections only, as photos would give); poses of the validation trials make
the held-out set, with the true 3D keypoints kept for evaluation; `--dev N` makes another set of training-trial
poses with truth, other renders than the training set's, for choosing settings without looking at the
held-out set; `--heldout N` renders the poses of a pose dataset of the held-out subjects (built with
`bodyfit train data --hold-out none` from their trials alone), with truth, to measure on people no weight saw.
Images go to `<images>/<split>/`, the detections (with MediaPipe's 3D world landmarks) to a `DetectionSet` per split.

    python scripts/make_renders.py --train 1500 --val 300      # data/renders_{train,val}.npz
    python scripts/make_renders.py --train 0 --val 0 --dev 150  # data/renders_dev.npz
    python scripts/make_renders.py --train 0 --val 0 --heldout 300 --heldout-data data/poses_heldout.npz

Deterministic: render i of a split is drawn from seed (seed, split, i) alone, whatever the counts.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from make_samples import (  # noqa: E402  (scripts/ is on the path when run as a script)
    JPEG_QUALITY,
    SKIN_DARK,
    SKIN_LIGHT,
    SKIN_MEDIUM,
    SceneSpec,
    camera_tilt,
    limb_error,
    render_people,
    scene_camera,
    stand,
    turns_matrix,
)
from rich.console import Console  # noqa: E402

from bodyfit_cli.body.loaders import load_body_model  # noqa: E402
from bodyfit_cli.body.model import BodyModel  # noqa: E402
from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector  # noqa: E402
from bodyfit_cli.fitting.init import FACING_CAMERA  # noqa: E402
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle  # noqa: E402
from bodyfit_cli.io.images import read_image, write_image_atomic  # noqa: E402
from bodyfit_cli.progress import progress_bar  # noqa: E402
from bodyfit_cli.training.detections import DetectionRows  # noqa: E402
from bodyfit_cli.training.pose_data import PoseDataset  # noqa: E402

SPLITS = {"train": 0, "val": 1, "dev": 2, "heldout": 3}
SKINS = (SKIN_LIGHT, SKIN_MEDIUM, SKIN_DARK)


@dataclass(frozen=True)
class ViewRanges:
    """Where people stand and how the camera looks at them (uniform ranges), around `make_samples`' scenes."""

    distance: tuple[float, float] = (2.8, 4.6)  # pelvis depth, metres
    sideways: tuple[float, float] = (-0.4, 0.4)  # pelvis left/right of the optical axis, metres
    camera_height: tuple[float, float] = (0.9, 1.6)  # metres above the floor
    pitch: tuple[float, float] = (0.0, 12.0)  # degrees down
    main_betas: float = 1.5  # the first two betas (stature, build) uniform in +-this
    other_betas: float = 0.3  # the others normal with this sigma, as in make_samples


def render_one(
    model: BodyModel,
    faces: np.ndarray,
    poses: PoseDataset,
    split: str,
    i: int,
    seed: int,
    size: int,
    ranges: ViewRanges,
) -> tuple[np.ndarray, np.ndarray]:
    """Render i of a split: (H, W, 3) uint8 RGB and the true keypoints (K, 3) in the camera frame."""
    rng = np.random.default_rng([seed, SPLITS[split], i])
    pose_index = int(rng.integers(len(poses)))
    betas = np.round(rng.normal(0.0, ranges.other_betas, model.num_betas), 3)
    betas[:2] = np.round(rng.uniform(-ranges.main_betas, ranges.main_betas, 2), 3)
    scene = SceneSpec(
        name=f"{split}_{i:05d}",
        description="",
        size=(size, size),
        camera_height=float(rng.uniform(*ranges.camera_height)),
        pitch=float(rng.uniform(*ranges.pitch)),
        people=(),
    )
    # The pose dataset's world is y-up like the body's rest frame; FACING_CAMERA takes it into the level
    # camera frame (y down), a random turn about the vertical sets the heading.
    world = axis_angle_to_matrix(torch.from_numpy(poses.global_orient[pose_index]).double())
    facing = axis_angle_to_matrix(torch.tensor(FACING_CAMERA, dtype=torch.float64))
    yaw = turns_matrix((("y", float(rng.uniform(0.0, 360.0))),))
    orient = matrix_to_axis_angle(camera_tilt(scene.pitch) @ yaw @ facing @ world)
    body_pose = torch.from_numpy(poses.body_pose[pose_index]).double().view(23, 3)
    spot = (float(rng.uniform(*ranges.sideways)), float(rng.uniform(*ranges.distance)))
    person = stand(model, orient, body_pose, betas, spot, scene)
    color = SKINS[int(rng.integers(len(SKINS)))]
    image = render_people(scene, scene_camera(scene), [person], [color], faces, rng)
    return image, person.keypoints3d.astype(np.float32)


def make_split(
    split: str,
    count: int,
    poses: PoseDataset,
    model: BodyModel,
    faces: np.ndarray,
    detector: MediaPipeDetector,
    args: argparse.Namespace,
    console: Console,
) -> dict[str, float]:
    """Render, save and detect `count` pictures; writes the split's DetectionSet and returns its statistics."""
    rows = DetectionRows()
    folder = args.images / split
    errors: list[float] = []
    start = time.perf_counter()
    with progress_bar(console) as progress:
        task = progress.add_task(f"{split}: rendering and detecting", total=count)
        for i in range(count):
            image, truth = render_one(model, faces, poses, split, i, args.seed, args.size, ViewRanges())
            path = folder / f"{i:05d}.jpg"
            write_image_atomic(path, image, jpeg_quality=JPEG_QUALITY)
            image = read_image(path)  # detect what a photo of it would give, compression included
            people = detector.detect(image)
            if people:
                f = scene_camera(SceneSpec("", "", (args.size, args.size), 0.0, 0.0, ())).focal[0]
                truth_uv = truth[:, :2] / truth[:, 2:] * f + args.size / 2.0
                errors.append(limb_error(people[0].keypoints, truth_uv)[1])
                rows.add(people, args.size, args.size, str(path), truth=None if split == "train" else [truth])
            progress.update(task, advance=1, description=f"{split}: {len(rows)} of {i + 1} detected")
    data = rows.build(with_truth=split != "train")
    out = getattr(args, f"{split}_out")
    data.save(out)
    seconds = time.perf_counter() - start
    stats = {
        "renders": count,
        "detected": len(data),
        "seconds": seconds,
        "median_limb_error_share": float(np.median(errors)) if errors else math.nan,
        "off_over_8pct": int(np.sum(np.array(errors) > 0.08)),
    }
    console.print(
        f"{split}: {len(data)} of {count} renders detected in {seconds:.0f} s ({seconds / max(count, 1):.2f} s each); "
        f"median limb detection error {100 * stats['median_limb_error_share']:.1f}% of the person's height, "
        f"{stats['off_over_8pct']} over 8% -> {out}"
    )
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/poses.npz"), help="pose dataset (bodyfit train data)")
    ap.add_argument("--train", type=int, default=1500, help="training renders (poses of the training trials)")
    ap.add_argument("--val", type=int, default=300, help="held-out renders (poses of the validation trials)")
    ap.add_argument("--dev", type=int, default=0, help="renders of training-trial poses with truth, for tuning")
    ap.add_argument("--heldout", type=int, default=0, help="renders of --heldout-data's poses, with truth")
    ap.add_argument(
        "--heldout-data", type=Path, default=Path("data/poses_heldout.npz"), help="held-out subjects' poses"
    )
    ap.add_argument("--size", type=int, default=512, help="image side, pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=Path, default=Path("data/renders"), help="where the pictures go")
    ap.add_argument("--train-out", type=Path, default=Path("data/renders_train.npz"))
    ap.add_argument("--val-out", type=Path, default=Path("data/renders_val.npz"))
    ap.add_argument("--dev-out", type=Path, default=Path("data/renders_dev.npz"))
    ap.add_argument("--heldout-out", type=Path, default=Path("data/renders_heldout.npz"))
    args = ap.parse_args()
    console = Console(stderr=True, highlight=False)
    torch.set_num_threads(1)
    train, val = PoseDataset.load(args.data).split()
    data = load_body_model("default")
    model = BodyModel(data)
    splits = [("val", args.val, val), ("train", args.train, train), ("dev", args.dev, train)]
    if args.heldout:
        splits.append(("heldout", args.heldout, PoseDataset.load(args.heldout_data)))
    with torch.no_grad(), MediaPipeDetector(max_people=1) as detector:
        for split, count, poses in splits:
            if count:
                make_split(split, count, poses, model, data.faces, detector, args, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
