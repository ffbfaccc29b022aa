"""Accuracy on people that no shipped weight, prior or tuned constant saw: whole held-out CMU subjects,
and two actors from another lab (HDM05), per subject and per motion, every method side by side.

    python benchmarks/bench_heldout.py [--cmu DIR]... [--hdm05 DIR] [--method smplify,lgd,hund,regressor]
        [--n 100] [--seed 0] [--init auto] [--json docs/bench/heldout.json]

Each subject's or motion's clips are retargeted to the body model at --fps (cached under --cache), --n of
their poses are drawn and seen through `bodyfit bench`'s random cameras (detector-like noise, outliers,
dropout, truncation), and every method fits the same views from its default start, one person per fit.
A group's row (all held-out CMU subjects; all of HDM05) pools its rows' views, so each subject or motion
counts the same. PA-MPJPE and MPJPE (mm) over the 12 limb joints, reprojection error (px), time per person.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.evaluation.benchmark import Poses3D, fit_views, mocap_poses, pick_poses, summarise
from bodyfit_cli.fitting.registry import make_backend, make_init
from bodyfit_cli.mocap import SUFFIXES
from bodyfit_cli.synthetic import ProjectionConfig, random_views
from bodyfit_cli.training.pose_data import HELD_OUT_SUBJECTS, cmu_subject
from bodyfit_cli.vocabulary import KEYPOINT_NAMES

COLUMNS = ("pa_mpjpe_mm", "mpjpe_mm", "reproj_px", "median_ms")


def held_out_rows(cmu: list[Path], hdm05: Path | None) -> dict[str, dict[str, list[Path]]]:
    """{group: {row: clips}}: CMU trials by held-out subject, HDM05 clips by motion (the third field of
    HDM_<actor>_<motion>_<nnn>_120.amc)."""
    groups: dict[str, dict[str, list[Path]]] = {}
    for root in cmu:
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES):
            if cmu_subject(path) in HELD_OUT_SUBJECTS:
                groups.setdefault("CMU held-out subjects", {}).setdefault(f"subject {cmu_subject(path)}", []).append(
                    path
                )
    if hdm05 is not None:
        for path in sorted(hdm05.rglob("*.amc")):
            groups.setdefault("HDM05 (bd, bk)", {}).setdefault(path.stem.split("_")[2], []).append(path)
    return {g: dict(sorted(rows.items())) for g, rows in groups.items()}


def retargeted(name: str, clips: list[Path], model: BodyModel, fps: float, cache: Path) -> Poses3D:
    """The clips as the body model's keypoints, retargeted once and cached by row, model, fps and the clips' sizes."""
    size = sum(p.stat().st_size for p in clips)
    path = cache / f"{name}_{model.name}_{fps:g}fps_{len(clips)}clips_{size}.npz".replace(" ", "_")
    if path.is_file():
        with np.load(path) as data:
            return Poses3D(torch.from_numpy(data["joints"]), list(KEYPOINT_NAMES), name)
    poses, _ = mocap_poses(clips, model, fps)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, joints=poses.points.numpy(), names=np.array(KEYPOINT_NAMES))
    return Poses3D(poses.points, list(KEYPOINT_NAMES), name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cmu", type=Path, action="append", help="CMU mocap folders (ASF/AMC or BVH; repeat)")
    ap.add_argument("--hdm05", type=Path, default=Path("../shared/mocap/hdm05"))
    ap.add_argument("--method", default="smplify,lgd,hund,regressor")
    ap.add_argument("--init", default="auto", help="start of every method (auto: each method's default)")
    ap.add_argument("--n", type=int, default=100, help="views per subject or motion")
    ap.add_argument("--fps", type=float, default=7.5, help="frame rate the clips are thinned to before the draw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("data/heldout"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    cmu = args.cmu or [Path("../shared/mocap/cmu"), Path("../shared/mocap/cmu_bvh")]
    torch.set_num_threads(1)
    model = BodyModel(load_body_model("default"))
    methods = args.method.split(",")
    runs = {}
    for name in methods:
        backend = make_backend(name, model)
        runs[name] = (backend, make_init(args.init, model, backend))
    report: dict = {
        "n_per_row": args.n,
        "seed": args.seed,
        "init": args.init,
        "fps": args.fps,
        "device": "cpu",
        "machine": platform.machine(),
        "torch_threads": 1,
        "groups": {},
    }
    for group, rows in held_out_rows(cmu, args.hdm05).items():
        poses = {row: retargeted(f"{group} {row}", clips, model, args.fps, args.cache) for row, clips in rows.items()}
        points = torch.cat([pick_poses(p, args.n, args.seed) for p in poses.values()])
        labels = np.repeat(list(poses), args.n)
        views = random_views(points, list(KEYPOINT_NAMES), ProjectionConfig(), seed=args.seed)
        per_view = fit_views(runs, model, views.observations, views.keypoints3d, batch=1)
        table = {"all": {m: summarise(v) for m, v in per_view.items()}}
        table.update({row: {m: summarise(v, labels == row) for m, v in per_view.items()} for row in poses})
        report["groups"][group] = {"rows": table, "poses": {row: len(p.points) for row, p in poses.items()}}
        print_group(group, table, methods)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")


def print_group(group: str, table: dict[str, dict[str, dict[str, float]]], methods: list[str]) -> None:
    print(f"\n{group}: PA-MPJPE mm (MPJPE mm), median ms per person")
    print(f"{'':28s}" + "".join(f"{m:>22s}" for m in methods))
    for row, results in table.items():
        cells = (
            f"{r['pa_mpjpe_mm']:6.1f} ({r['mpjpe_mm']:5.1f}) {r['median_ms']:6.1f}" for r in map(results.get, methods)
        )
        print(f"{row:28s}" + "".join(f"{c:>22s}" for c in cells))


if __name__ == "__main__":
    main()
