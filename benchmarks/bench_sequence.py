"""Video-like sequences: how `bodyfit video` should start and smooth each frame's fit.

    python benchmarks/bench_sequence.py [--trials 01_01,02_01,03_01] [--frames 80] [--cameras 8]
                                        [--method lgd,hund,smplify] [--seed 0] [--smooth-keypoints] [--clean]

The held-out CMU trials at 30 fps, each seen by --cameras cameras at evenly spaced headings around it (one
camera per sequence, following the person: fixed field of view, height and distance), with the benchmark's
detector noise, outliers and dropout drawn anew every frame. Every method fits every frame of every sequence:

* `fresh`: from its `--init auto` start, each frame on its own, as `bodyfit image` would fit it;
* `warm`: from its own fit of the frame before, the first frame fresh: how `bodyfit video` once started frames;
* `track`: from its `--init auto` start with the track's shape, reported with the track's shape
  (`video.pipeline.track_start` and `track_settled` without smoothing);
* `video`: `track` with the rotations filtered over time, as `bodyfit video` does by default.

`--smooth-keypoints` filters the detections first, as `bodyfit video` once did (One-Euro,
0.5 Hz, beta 10, in image diagonals). `--clean`: no noise, outliers or dropout. Reports PA-MPJPE (mm, limb
keypoints) and the acceleration error (mm per frame squared, hip-centred limb keypoints, against the
truth's): how much the fits jitter.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import Observations
from bodyfit_cli.evaluation.benchmark import mocap_poses, score
from bodyfit_cli.fitting.registry import Backend, Initialiser, make_backend, make_init
from bodyfit_cli.synthetic import ProjectionConfig, random_views
from bodyfit_cli.video.pipeline import TrackFit, track_settled, track_start
from bodyfit_cli.video.smoothing import OneEuroFilter
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, LIMB_KEYPOINTS

MOCAP = Path(__file__).resolve().parents[2] / "shared" / "mocap" / "cmu"


def sequences(
    model: BodyModel, trials: list[str], frames: int, cameras: int, seed: int, clean: bool = False
) -> tuple[list[Observations], torch.Tensor]:
    """Per frame the observations of every sequence (trial x camera), and the truth (T, S, K, 3)."""
    obs_per_seq, truth_per_seq = [], []
    for trial in trials:
        poses, _ = mocap_poses([MOCAP / trial[:2] / f"{trial}.amc"], model)
        points = poses.points[:frames]
        if len(points) < frames:
            raise SystemExit(f"{trial} has {len(points)} frames at 30 fps, fewer than --frames {frames}")
        for c in range(cameras):
            azimuth = 360.0 * c / cameras
            config = ProjectionConfig(
                azimuth_deg=(azimuth, azimuth),
                elevation_deg=(15.0, 15.0),
                fov_deg=(45.0, 45.0),
                fill=(0.7, 0.7),
                offset=0.0,
                truncation=0.0,
                **(dict(noise_px=0.0, outlier_rate=0.0, dropout=0.0) if clean else {}),
            )
            views = random_views(points, poses.names, config, seed=seed + 1000 * c + len(obs_per_seq))
            obs_per_seq.append(views.observations)
            truth_per_seq.append(views.keypoints3d)
    frames_obs = [
        Observations(
            *(torch.stack([getattr(o, f)[t] for o in obs_per_seq]) for f in ("keypoints", "focal", "center", "scale"))
        )
        for t in range(frames)
    ]
    return frames_obs, torch.stack(truth_per_seq, 1)


def smooth_keypoints(frames: list[Observations], fps: float = 30.0) -> list[Observations]:
    """The keypoints One-Euro filtered per sequence as `bodyfit video` once filtered them."""
    kp_filter = OneEuroFilter(0.5, 10.0)
    out = []
    for t, obs in enumerate(frames):
        kp = obs.keypoints.clone()
        diag = float(obs.center[0].norm() * 2)  # the image's diagonal: the camera's centre is the image's
        valid = (kp[..., 2] > 0)[..., None].numpy()
        kp[..., :2] = torch.from_numpy(kp_filter(kp[..., :2].numpy() / diag, t / fps, valid) * diag).to(kp.dtype)
        out.append(Observations(kp, obs.focal, obs.center, obs.scale))
    return out


def acceleration_error_mm(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean |second difference of pred - that of truth| over limb keypoints, hip-centred; (T, S, K, 3)."""
    limb = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]
    hips = [KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"]]

    def accel(x: torch.Tensor) -> torch.Tensor:
        x = (x - x[:, :, hips].mean(2, keepdim=True))[:, :, limb].double()
        return x[2:] - 2 * x[1:-1] + x[:-2]

    return float((accel(pred) - accel(truth)).norm(dim=-1).mean() * 1000)


def run(
    mode: str, backend: Backend, init: Initialiser, model: BodyModel, frames: list[Observations], fps: float = 30.0
) -> torch.Tensor:
    """Every sequence fitted frame by frame in one of the module docstring's modes; (T, S, K, 3) keypoints."""
    fits = [TrackFit() for _ in range(frames[0].batch_size)]
    preds, last = [], None
    for t, obs in enumerate(frames):
        if mode == "warm" and last is not None:
            start = last
        else:
            start = init(obs)
            if mode in ("track", "video"):
                start = track_start(model, start, fits)
        fit = backend.fit(obs, start).detach()
        if mode != "fresh":
            scores = obs.keypoints[..., 2].mean(-1).tolist()  # how well the frame saw them: the video's detection score
            fit = track_settled(model, fit, scores, fits, t / fps, smooth=mode == "video")
        last = fit
        with torch.no_grad():
            preds.append(fit.pose(model).keypoints)
    return torch.stack(preds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", default="01_01,02_01,03_01")
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--method", default="lgd,hund,smplify")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smooth-keypoints", action="store_true")
    ap.add_argument("--clean", action="store_true", help="no detector noise, outliers or dropout")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = BodyModel(load_body_model("default"))
    frames, truth = sequences(model, args.trials.split(","), args.frames, args.cameras, args.seed, args.clean)
    if args.smooth_keypoints:
        frames = smooth_keypoints(frames)
    print(
        f"machine: {platform.machine()}, CPU, 1 torch thread; {args.trials}, {args.frames} frames at 30 fps, "
        f"{args.cameras} cameras each ({truth.shape[1]} sequences), keypoints {'smoothed' if args.smooth_keypoints else 'as detected'}{', clean' if args.clean else ''}"
    )
    print(f"{'method':8s} {'start':6s} {'PA-MPJPE':>9s} {'accel':>7s}")
    for name in args.method.split(","):
        backend = make_backend(name, model)
        init = make_init("auto", model, backend)
        for mode in ("fresh", "warm", "track", "video"):
            pred = run(mode, backend, init, model, frames)
            pa = float(torch.cat([score(pred[t], truth[t], obs)["pa_mpjpe_mm"] for t, obs in enumerate(frames)]).mean())
            print(f"{name:8s} {mode:6s} {pa:9.1f} {acceleration_error_mm(pred, truth):7.1f}", flush=True)


if __name__ == "__main__":
    main()
