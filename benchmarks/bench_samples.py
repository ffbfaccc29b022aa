"""Accuracy on the project's rendered samples: MediaPipe detection -> fit -> 3D error against the truth.

    python benchmarks/bench_samples.py [--method smplify|lgd|regressor] [--init auto|mean|regressor]
                                       [--prior gmm|simple]

Prints, per person, PA-MPJPE over the 12 limb joints (each true person matched to the closest fit)
and the fit's reprojection error, then the mean.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.fitting.losses import reprojection_error_px
from bodyfit_cli.fitting.registry import make_backend
from bodyfit_cli.geometry.procrustes import mpjpe, similarity_align
from bodyfit_cli.io.images import read_image
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.options import Options
from bodyfit_cli.pipeline import ImagePipeline
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, LIMB_KEYPOINTS

LIMB = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="smplify")
    ap.add_argument("--init", default="auto")
    ap.add_argument("--prior", default="gmm", help="SMPLify's pose prior")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        pipe = ImagePipeline(Options(out=Path(out), render=False, method=args.method, init=args.init))
    if args.method == "smplify":
        pipe.backend = make_backend("smplify", pipe.model, args.prior)
    errors = []
    for truth_file in sorted(Path("samples").glob("*.json")):
        truth = json.loads(truth_file.read_text())
        image_path = truth_file.with_suffix(".jpg")
        image = read_image(image_path)
        people = pipe.detect(image, InputItem(image_path, Path(image_path.name)))
        fitted = pipe.fit(people, image.shape[1], image.shape[0])
        pred = fitted.body.keypoints[:, LIMB].double()
        reproj = reprojection_error_px(fitted.body.keypoints, fitted.obs)
        for person in truth["people"]:
            true = torch.tensor([[person["keypoints3d"][n] for n in LIMB_KEYPOINTS]], dtype=torch.float64)
            err, best = min((float(mpjpe(similarity_align(p[None], true), true)) * 1000, i) for i, p in enumerate(pred))
            errors.append(err)
            print(f"{truth_file.stem:16s} PA-MPJPE {err:6.1f} mm, reprojection {float(reproj[best]):5.1f} px")
    prior = f", prior {args.prior}" if args.method == "smplify" else ""
    print(
        f"mean over {len(errors)} people: {np.mean(errors):.1f} mm ({args.method}, init {pipe.initialiser.name}{prior})"
    )


if __name__ == "__main__":
    main()
