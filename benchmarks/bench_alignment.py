"""How closely each backend's overlay sits on the people in real photos, judged against keypoints from
another source than the detector the fit used: human annotations (COCO) or another detector (OpenPose).

    python benchmarks/bench_alignment.py [--pair IMAGE=KEYPOINTS.json ...] [--method smplify,lgd,hund]
                                         [--init auto] [--json OUT]

Every method fits the same MediaPipe detections (as `bodyfit image` does), so the reference keypoints
never entered any fit: a backend that only chases the detector's own errors gains nothing here. Each fitted
person is matched to the reference person whose keypoints lie nearest to the detection. The error of a
person is the mean distance, over the keypoints the reference has, between them and the fitted body's
projected keypoints, in pixels and in percent of the reference person's height. The detector's own
keypoints are scored the same way, as the floor a fit to them can reach. The keypoint definitions differ a
little between sources (COCO's hips sit lower than ours), which adds the same offset to every method.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.detection.keypoint_files import read_keypoint_file
from bodyfit_cli.detection.types import PersonKeypoints
from bodyfit_cli.errors import InputError
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.io.atomic import write_json_atomic
from bodyfit_cli.io.images import read_image
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.options import Options
from bodyfit_cli.pipeline import ImagePipeline

MEDIA = Path("../shared/media")
DEFAULT_PAIRS = [
    ("coco_000000000785.jpg", "coco_keypoints.json"),
    ("coco_000000040083.jpg", "coco_keypoints.json"),
    ("lsp_im1010.jpg", "lsp_im1010_openpose.json"),
]
MATCH = (
    0.15  # a detection matches a reference person when their median keypoint distance is below this share of its height
)


def height(points: np.ndarray) -> float:
    seen = points[points[:, 2] > 0]
    return float(seen[:, 1].max() - seen[:, 1].min())


def match(detected: PersonKeypoints, references: list[PersonKeypoints]) -> PersonKeypoints | None:
    """The reference person nearest to a detection, if near enough to be the same person."""
    best, best_d = None, np.inf
    for ref in references:
        both = (detected.keypoints[:, 2] > 0) & (ref.keypoints[:, 2] > 0)
        if both.sum() < 4:
            continue
        d = float(np.median(np.linalg.norm(detected.keypoints[both, :2] - ref.keypoints[both, :2], axis=1)))
        if d < MATCH * height(ref.keypoints) and d < best_d:
            best, best_d = ref, d
    return best


def errors(points: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Mean distance (px, % of height) from (K, 2) points to the reference's marked keypoints."""
    marked = ref[:, 2] > 0
    px = float(np.linalg.norm(points[marked] - ref[marked, :2], axis=1).mean())
    return px, 100 * px / height(ref)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--pair", action="append", default=None, help="IMAGE=KEYPOINTS.json (repeat); default: the shared media"
    )
    ap.add_argument("--method", default="smplify,lgd,hund")
    ap.add_argument("--init", default="auto")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pairs = (
        [tuple(map(Path, p.split("=", 1))) for p in args.pair]
        if args.pair
        else [(MEDIA / a, MEDIA / b) for a, b in DEFAULT_PAIRS]
    )
    methods = args.method.split(",")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        pipes = {m: ImagePipeline(Options(method=m, init=args.init, out=Path(tmp), device="cpu")) for m in methods}
        first = pipes[methods[0]]
        for image_path, ref_path in pairs:
            image = read_image(image_path)
            h, w = image.shape[:2]
            people = first.detect(image, InputItem(path=image_path, rel=Path(image_path.name)))
            refs = read_keypoint_file(ref_path, image_name=image_path.name, image_size=(w, h))
            fits = {m: pipes[m].fit(people, w, h) for m in methods}
            for i, person in enumerate(people):
                ref = match(person, refs)
                if ref is None:
                    print(f"{image_path.name} person {i}: no reference person there, skipped")
                    continue
                row = {
                    "image": image_path.name,
                    "person": i,
                    "reference": ref_path.name,
                    "detector": errors(person.keypoints[:, :2], ref.keypoints),
                }
                for m, fitted in fits.items():
                    assert fitted is not None
                    uv = project(
                        fitted.body.keypoints[i : i + 1], fitted.obs.focal[i : i + 1], fitted.obs.center[i : i + 1]
                    )
                    row[m] = errors(uv[0].numpy(), ref.keypoints)
                rows.append(row)
    if not rows:
        raise InputError("no detected person matched a reference person")
    names = ["detector", *methods]
    print(f"{'image':24s} {'person':>6s} " + " ".join(f"{n:>14s}" for n in names) + "   (px, % of height)")
    for r in rows:
        print(f"{r['image']:24s} {r['person']:6d} " + " ".join(f"{r[n][0]:6.1f} {r[n][1]:5.1f}% " for n in names))
    means = {n: (float(np.mean([r[n][0] for r in rows])), float(np.mean([r[n][1] for r in rows]))) for n in names}
    print(f"{'mean':31s} " + " ".join(f"{means[n][0]:6.1f} {means[n][1]:5.1f}% " for n in names))
    if args.json:
        write_json_atomic(args.json, {"init": args.init, "people": rows, "mean": means})


if __name__ == "__main__":
    main()
