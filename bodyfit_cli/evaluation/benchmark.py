"""`bodyfit bench`: every method on the same synthetic 2D views of known 3D poses.

3D poses (a CONTRACT.md keypoints3d file, or motion capture retargeted to the body model) are seen
through random cameras with detector-like noise (`bodyfit_cli.synthetic`); each method fits the 2D
keypoints from the same initialisation and is scored against the true 3D points in the camera frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.errors import InputError
from bodyfit_cli.fitting.fit3d import fit_joints3d
from bodyfit_cli.fitting.losses import reprojection_error_px
from bodyfit_cli.fitting.registry import Backend, Initialiser
from bodyfit_cli.geometry.procrustes import mpjpe, similarity_align
from bodyfit_cli.mocap import AmassClip, read_mocap
from bodyfit_cli.synthetic import ProjectionConfig, random_views
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, LIMB_KEYPOINTS, SMPL_JOINT_INDEX


@dataclass
class Poses3D:
    """points (N, K, 3) metres in any right-handed world frame, named by `names` (K,)."""

    points: torch.Tensor
    names: list[str]
    source: str


def read_keypoints3d(path: Path) -> Poses3D:
    """CONTRACT.md's benchmark input: `joints` (N, K, 3) metres and `names` (K,)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            joints, names = np.asarray(data["joints"], dtype=np.float32), [str(n) for n in data["names"]]
    except FileNotFoundError:
        raise InputError(f"cannot read keypoints3d file: {path} (no such file)") from None
    except KeyError as exc:
        raise InputError(
            f"{path}: keypoints3d files need arrays 'joints' (N, K, 3) and 'names' (K,); missing {exc}"
        ) from None
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read keypoints3d file: {path} ({exc})") from None
    if joints.ndim != 3 or joints.shape[1:] != (len(names), 3) or len(joints) == 0:
        raise InputError(f"{path}: 'joints' must be (N, {len(names)}, 3) to match 'names', got {joints.shape}")
    return Poses3D(torch.from_numpy(joints), names, str(path))


def mocap_poses(paths: list[Path], model: BodyModel, fps: float = 30.0) -> tuple[Poses3D, float]:
    """Motion capture retargeted to the body model, as the model's own keypoints.

    The mocap gives joint centres only; the fitted body gives every vocabulary point (nose, heels...)
    where a 2D detector would put it. Returns the poses and the retargeting's mean joint error (m).
    """
    points, errors = [], []
    for path in paths:
        params, error = mocap_params(path, model, fps)
        with torch.no_grad():
            points.append(params.pose(model).keypoints)
        errors.append(error)
    return Poses3D(torch.cat(points), list(KEYPOINT_NAMES), ", ".join(map(str, paths))), float(torch.cat(errors).mean())


def mocap_params(path: Path, model: BodyModel, fps: float = 30.0) -> tuple[BodyParams, torch.Tensor]:
    """One motion-capture trial at about `fps`, retargeted to the body model (one shape for the subject), in
    the mocap's own y-up world frame; with each frame's mean joint error (m)."""
    clip = read_mocap(path)
    if isinstance(clip, AmassClip):
        raise InputError(f"{path}: AMASS files hold SMPL parameters, not joints; use a keypoints3d file")
    clip = clip.subsample(max(1, round(clip.fps / fps)))
    return fit_joints3d(
        model, torch.from_numpy(clip.positions), [SMPL_JOINT_INDEX[n] for n in clip.joint_names], fit_betas=True
    )


def pick_poses(poses: Poses3D, n: int, seed: int) -> torch.Tensor:
    """n poses: all of them in a random order, repeated (each time seen by another camera) when n > N."""
    gen = torch.Generator().manual_seed(seed)
    count = len(poses.points)
    order = torch.cat([torch.randperm(count, generator=gen) for _ in range(-(-n // count))])[:n]
    return poses.points[order]


def score(pred: torch.Tensor, truth: torch.Tensor, obs: Observations) -> dict[str, torch.Tensor]:
    """Per-person errors over the 12 limb joints (those the input has). pred/truth (B, K, 3) camera frame."""
    limb = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS if bool(torch.isfinite(truth[:, KEYPOINT_INDEX[n]]).all())]
    hips = [KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"]]
    p, t = pred.double(), truth.double()
    p_hip, t_hip = p[:, hips].mean(1, keepdim=True), t[:, hips].mean(1, keepdim=True)
    p, t = p[:, limb], t[:, limb]
    return {
        "pa_mpjpe_mm": mpjpe(similarity_align(p, t), t) * 1000,
        "mpjpe_mm": mpjpe(p - p_hip, t - t_hip) * 1000,
        "reproj_px": reprojection_error_px(pred, obs).double(),
    }


def fit_views(
    methods: dict[str, tuple[Backend, Initialiser]],
    model: BodyModel,
    obs: Observations,
    truth: torch.Tensor,
    batch: int,
    progress: Callable[[str, int], None] = lambda name, k: None,
) -> dict[str, dict[str, np.ndarray]]:
    """Fit all views `batch` at a time with every method, taking turns chunk by chunk, so that a machine
    whose speed drifts during the run (a shared VM, a laptop warming up) slows every method alike.
    Returns per method and view the errors of `score` and the fit time (`ms`): the chunk's wall time / its
    size, initialisation included (a regressor's pass is part of what a fit costs)."""
    errors: dict[str, dict[str, list[torch.Tensor]]] = {name: {} for name in methods}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for s in range(0, obs.batch_size, batch):
        part = obs.map(lambda t: t[s : s + batch])
        for name, (backend, init) in methods.items():
            start = time.perf_counter()
            params = backend.fit(part, init(part))
            if part.keypoints.is_cuda:
                torch.cuda.synchronize()
            times[name] += [(time.perf_counter() - start) / part.batch_size] * part.batch_size
            with torch.no_grad():
                pred = params.pose(model).keypoints
            for key, value in score(pred, truth[s : s + batch], part).items():
                errors[name].setdefault(key, []).append(value.cpu())
            progress(name, part.batch_size)
    return {
        name: {**{key: torch.cat(v).numpy() for key, v in errors[name].items()}, "ms": np.array(times[name]) * 1000}
        for name in methods
    }


def summarise(per_view: dict[str, np.ndarray], keep: np.ndarray | slice = slice(None)) -> dict[str, float]:
    """Mean errors and median / 95th-percentile time per person over the views `keep` of `fit_views`' arrays."""
    ms = per_view["ms"][keep]
    out = {key: float(np.mean(v[keep])) for key, v in per_view.items() if key != "ms"}
    return {**out, "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95))}


def run_methods(
    methods: dict[str, tuple[Backend, Initialiser]],
    model: BodyModel,
    obs: Observations,
    truth: torch.Tensor,
    batch: int,
    progress: Callable[[str, int], None] = lambda name, k: None,
) -> dict[str, dict[str, float]]:
    """`fit_views`, summarised per method over all views."""
    return {name: summarise(v) for name, v in fit_views(methods, model, obs, truth, batch, progress).items()}


def make_views(poses: Poses3D, n: int, seed: int, device: torch.device) -> tuple[Observations, torch.Tensor]:
    """The same n views for every method: observations and the camera-frame truth (B, K, 3)."""
    views = random_views(pick_poses(poses, n, seed), poses.names, ProjectionConfig(), seed=seed)
    return views.observations.map(lambda t: t.to(device)), views.keypoints3d.to(device)
