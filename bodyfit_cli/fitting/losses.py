"""Loss terms shared by the fitting backends. Each returns one value per person, shape (B,)."""

from __future__ import annotations

import torch

from bodyfit_cli.core.types import Observations
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, SMPL_JOINT_INDEX

# Elbows bend about y and knees about x; these signs mark the direction that hyper-extends them.
BENDING = {"left_elbow": (1, 1.0), "right_elbow": (1, -1.0), "left_knee": (0, -1.0), "right_knee": (0, -1.0)}
_BENDING_COLUMNS = torch.tensor([(SMPL_JOINT_INDEX[j] - 1) * 3 + axis for j, (axis, _) in BENDING.items()])
_BENDING_SIGNS = torch.tensor([sign for _, sign in BENDING.values()])


# Robust scale of the reprojection loss (residuals in units of the person's size), as in SMPLify; the learned
# backends read the same loss and its gradient.
REPROJECTION_SIGMA = 0.1


def geman_mcclure(residual_sq: torch.Tensor, sigma: float) -> torch.Tensor:
    """Robust penalty rho(r) = sigma^2 r^2 / (sigma^2 + r^2) on squared residuals: outliers saturate."""
    return sigma**2 * residual_sq / (sigma**2 + residual_sq)


def reprojection(
    keypoints3d: torch.Tensor, obs: Observations, sigma: float = REPROJECTION_SIGMA, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Confidence-weighted robust 2D error, residuals in units of the person's size.

    keypoints3d (B, K, 3) camera frame; mask (K,) optionally restricts the keypoints used.
    """
    uv = project(keypoints3d, obs.focal, obs.center)
    res = ((uv - obs.keypoints[..., :2]) / obs.scale[:, None, None]).pow(2).sum(-1)
    w = obs.keypoints[..., 2] ** 2
    if mask is not None:
        w = w * mask
    return (w * geman_mcclure(res, sigma)).sum(-1)


# Segments whose direction the detector's 3D keypoints tell: limbs, feet, and the torso's sides and breadth.
POINTS3D_BONES = (
    ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
    ("left_ankle", "left_big_toe"),
    ("right_ankle", "right_big_toe"),
    ("left_hip", "left_shoulder"),
    ("right_hip", "right_shoulder"),
    ("right_hip", "left_hip"),
    ("right_shoulder", "left_shoulder"),
)
_BONE_ENDS = torch.tensor([[KEYPOINT_INDEX[a], KEYPOINT_INDEX[b]] for a, b in POINTS3D_BONES])


def detector_points3d(
    keypoints3d: torch.Tensor, obs: Observations, sigma: float = 0.3, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Robust error of the body's segment directions against those of the detector's own 3D keypoints
    (`obs.points3d`, camera axes), weighted by the less confident end of each segment.

    Directions, not positions: a detector's 3D points come with its own idea of a person's proportions, so
    they tell the pose (which way each limb points, towards the camera or away), not the shape. Residuals
    are squared distances of unit vectors (0-4). keypoints3d (B, K, 3) camera frame; mask (K,) optionally
    restricts the keypoints (a segment counts where both its ends do).
    """
    assert obs.points3d is not None
    ends = _BONE_ENDS.to(keypoints3d.device)
    conf = obs.keypoints[..., 2] if mask is None else obs.keypoints[..., 2] * mask
    w = torch.minimum(conf[:, ends[:, 0]], conf[:, ends[:, 1]]) ** 2

    def directions(points: torch.Tensor) -> torch.Tensor:
        bone = points[:, ends[:, 1]] - points[:, ends[:, 0]]
        return bone / bone.norm(dim=-1, keepdim=True).clamp(min=1e-6)

    res = (directions(keypoints3d) - directions(obs.points3d)).pow(2).sum(-1)
    return (w * geman_mcclure(res, sigma)).sum(-1)


def reprojection_gradient(
    keypoints3d: torch.Tensor, obs: Observations, sigma: float = REPROJECTION_SIGMA
) -> torch.Tensor:
    """d(`reprojection`(keypoints3d, obs, sigma).sum()) / d(keypoints3d), in closed form (B, K, 3)."""
    z = keypoints3d[..., 2:3].clamp(min=1e-3)
    focal = obs.focal[:, None]
    diff = keypoints3d[..., :2] / z * focal + obs.center[:, None] - obs.keypoints[..., :2]
    size_sq = obs.scale[:, None] ** 2
    res = diff.pow(2).sum(-1) / size_sq
    slope = obs.keypoints[..., 2] ** 2 * sigma**4 / (sigma**2 + res) ** 2  # d rho / d res, confidence-weighted
    g_uv = (2 * slope / size_sq)[..., None] * diff * focal
    g_z = -(g_uv * keypoints3d[..., :2]).sum(-1, keepdim=True) / z**2 * (keypoints3d[..., 2:3] > 1e-3)
    return torch.cat([g_uv / z, g_z], -1)


def reprojection_error_px(keypoints3d: torch.Tensor, obs: Observations, min_conf: float = 0.3) -> torch.Tensor:
    """Mean pixel distance between projected and observed keypoints with confidence >= min_conf."""
    uv = project(keypoints3d, obs.focal, obs.center)
    dist = (uv - obs.keypoints[..., :2]).norm(dim=-1)
    ok = (obs.keypoints[..., 2] >= min_conf).float()
    return (dist * ok).sum(-1) / ok.sum(-1).clamp(min=1)


def bending(body_pose: torch.Tensor) -> torch.Tensor:
    """SMPLify's bending prior: exp-penalty on elbows and knees bending the unnatural way. body_pose (B, 23, 3)."""
    angles = body_pose.reshape(body_pose.shape[0], -1)[:, _BENDING_COLUMNS.to(body_pose.device)]
    return torch.exp(angles * _BENDING_SIGNS.to(body_pose)).pow(2).sum(-1)


def shape_prior(betas: torch.Tensor) -> torch.Tensor:
    """Betas are unit-variance: a standard normal prior."""
    return betas.pow(2).sum(-1)
