"""The mocap-only and the in-the-loop (SPIN) regressors on held-out rendered people with real MediaPipe
detections: each alone, and as the start of SMPLify and LGD, against the true 3D keypoints.

    python benchmarks/bench_in_the_loop.py [--detections data/renders_val.npz] [--init regressor,spin]
                                           [--method regressor,smplify,lgd] [--no-masks] [--no-points3d] [--focal-scale S]
                                           [--json OUT]

The held-out set is `scripts/make_renders.py`'s validation split (poses of the validation trials, which no
network trained on). PA-MPJPE and MPJPE (mm) over the 12 limb joints as `bodyfit bench` computes them; also
for the people whose detection is good (median limb keypoint within 8% of their height of the truth, as
`scripts/make_samples.py` requires of the samples), so detector failures do not hide the fit's own error.
Two 2D errors (px): against the detections the fits were given (`reproj_px`) and against the true body's
projected keypoints (`true_2d_px`), which says how well an overlay sits on the person, not on the detector.
And how well the body covers the person's area: the IoU of its soft silhouette (`fitting.silhouette`, the
one hund reads) with MediaPipe's mask over the mask's window (`mask_iou`, people with a mask). With
`--no-masks` the fits are not given the masks (only hund reads them), to measure what they add; likewise
`--no-points3d` for MediaPipe's 3D world landmarks (SMPLify reads them). `--focal-scale S` gives the fits a
focal length S times the true one, as a photo whose camera is not known does (`bodyfit image` assumes the
image diagonal; a phone's main camera is about 0.6 of it, a studio camera's about 0.8). The world landmarks themselves are
scored too, the same way (`mediapipe world landmarks`): what a user gets from the detector for free.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.core.types import Observations
from bodyfit_cli.errors import InputError
from bodyfit_cli.evaluation.benchmark import score
from bodyfit_cli.fitting.registry import make_backend, make_init
from bodyfit_cli.fitting.silhouette import Silhouettes, has_mask
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.io.atomic import write_json_atomic
from bodyfit_cli.training.detections import DetectionSet
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, LIMB_KEYPOINTS

LIMB = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]
GOOD_DETECTION = 0.08  # share of the person's height in the image


def good_detections(data: DetectionSet, rows: np.ndarray) -> torch.Tensor:
    """(R,) whether each person's median limb detection error is within GOOD_DETECTION of their height."""
    obs = data.observations(rows)
    truth = torch.from_numpy(data.true_keypoints3d[rows])
    uv = project(truth, obs.focal, obs.center)
    error = (obs.keypoints[:, LIMB, :2] - uv[:, LIMB]).norm(dim=-1).median(1).values
    height = uv[..., 1].amax(1) - uv[..., 1].amin(1)
    return error <= GOOD_DETECTION * height


def mask_iou(silhouettes: Silhouettes, points: torch.Tensor, obs: Observations, masks: torch.Tensor | None) -> float:
    """Mean IoU of the posed surface points' soft silhouette with the detected masks, over people with one."""
    with_mask = has_mask(masks) if masks is not None else None
    if with_mask is None or not with_mask.any():
        return float("nan")
    with torch.no_grad():
        rendered = silhouettes.render(points, obs, person_box(obs))
    inter = (rendered * masks).sum((1, 2))
    union = (rendered + masks - rendered * masks).sum((1, 2)).clamp(min=1e-6)
    return float((inter / union)[with_mask].mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--detections", type=Path, default=Path("data/renders_val.npz"))
    ap.add_argument("--init", default="regressor,spin", help="regressors to compare (--init names)")
    ap.add_argument("--method", default="regressor,smplify,lgd", help="regressor: the regressor alone")
    ap.add_argument("--batch", type=int, default=50, help="people fitted together (the fits do not depend on it)")
    ap.add_argument("--no-masks", action="store_true", help="fit without the detected masks")
    ap.add_argument("--no-points3d", action="store_true", help="fit without MediaPipe's 3D world landmarks")
    ap.add_argument(
        "--focal-scale",
        type=float,
        default=1.0,
        help="fit with the focal length times this (a camera whose focal the fit does not know)",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = DetectionSet.load(args.detections)
    if data.true_keypoints3d is None:
        raise InputError(f"{args.detections} has no true 3D keypoints (make it with scripts/make_renders.py)")
    rows = np.flatnonzero(data.has_truth)
    obs = data.observations(rows)
    truth = torch.from_numpy(data.true_keypoints3d[rows])
    good = good_detections(data, rows)
    true_uv = project(truth, obs.focal, obs.center)
    detected = obs.keypoints[..., 2] > 0
    detector_2d = float((obs.keypoints[..., :2] - true_uv).norm(dim=-1)[detected].mean())
    model = BodyModel(load_body_model("default"))
    silhouettes = Silhouettes(model)
    given = dataclasses.replace(
        obs,
        masks=None if args.no_masks else obs.masks,
        points3d=None if args.no_points3d else obs.points3d,
        focal=obs.focal * args.focal_scale,
    )
    print(
        f"{len(rows)} held-out people from {args.detections}, {int(good.sum())} with a good detection; "
        f"the detector's keypoints are {detector_2d:.1f} px from the true ones"
    )
    results: dict[str, dict] = {}
    if obs.points3d is not None:
        errors = score(obs.points3d, truth, obs)
        results["mediapipe world landmarks"] = {
            "pa_mpjpe_mm": float(errors["pa_mpjpe_mm"].mean()),
            "mpjpe_mm": float(errors["mpjpe_mm"].mean()),
            "pa_mpjpe_mm_good_detections": float(errors["pa_mpjpe_mm"][good].mean()),
        }
        r = results["mediapipe world landmarks"]
        print(
            f"{'mediapipe world landmarks':22s} PA-MPJPE {r['pa_mpjpe_mm']:6.1f} mm (good detections "
            f"{r['pa_mpjpe_mm_good_detections']:6.1f}), MPJPE {r['mpjpe_mm']:6.1f} mm"
        )
    for init_name in args.init.split(","):
        init = make_init(init_name, model)
        for method in args.method.split(","):
            backend = init if method == "regressor" else make_backend(method, model)
            start = time.perf_counter()
            fits = []
            for s in range(0, len(rows), args.batch):
                part = given.map(lambda t: t[s : s + args.batch])
                fits.append(init(part) if method == "regressor" else backend.fit(part, init(part)))
            seconds = time.perf_counter() - start  # the fits only, not the scoring below
            with torch.no_grad():
                bodies = [params.pose(model, points=silhouettes.points) for params in fits]
            keypoints = torch.cat([b.keypoints for b in bodies])
            iou = mask_iou(silhouettes, torch.cat([b.points for b in bodies]), given, obs.masks)
            errors = score(keypoints, truth, given)  # reprojected with the camera the fit was given
            true_2d = (project(keypoints, given.focal, given.center) - true_uv).norm(dim=-1).mean()
            key = f"{init_name}+{method}" if method != "regressor" else f"{init_name} alone"
            results[key] = {
                "pa_mpjpe_mm": float(errors["pa_mpjpe_mm"].mean()),
                "mpjpe_mm": float(errors["mpjpe_mm"].mean()),
                "reproj_px": float(errors["reproj_px"].mean()),
                "true_2d_px": float(true_2d),
                "pa_mpjpe_mm_good_detections": float(errors["pa_mpjpe_mm"][good].mean()),
                "mask_iou": iou,
                "ms_per_person": 1000 * seconds / len(rows),
            }
            r = results[key]
            print(
                f"{key:22s} PA-MPJPE {r['pa_mpjpe_mm']:6.1f} mm (good detections {r['pa_mpjpe_mm_good_detections']:6.1f}), "
                f"MPJPE {r['mpjpe_mm']:6.1f} mm, 2D {r['reproj_px']:4.1f} px to detections, {r['true_2d_px']:4.1f} to truth, "
                f"mask IoU {r['mask_iou']:.3f}, {r['ms_per_person']:6.1f} ms/person"
            )
    if args.json:
        write_json_atomic(
            args.json,
            {
                "detections": str(args.detections),
                "people": len(rows),
                "good_detections": int(good.sum()),
                "detector_true_2d_px": detector_2d,
                "results": results,
            },
        )


if __name__ == "__main__":
    main()
