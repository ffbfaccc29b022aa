"""The mean-pose initialisation: a body facing the camera, placed where its torso is in the image.

The learned alternative, `--init regressor`, is `learned.regressor.fit.Regressor`.
"""

from __future__ import annotations

import math

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, SMPL_JOINT_INDEX, TORSO_KEYPOINTS

# Segments whose 3D length on the mean body and 2D length in the image give the depth.
DEPTH_SEGMENTS = (
    ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"),
    ("left_shoulder", "right_shoulder"),
    ("left_hip", "left_knee"),
    ("right_hip", "right_knee"),
    ("left_knee", "left_ankle"),
    ("right_knee", "right_ankle"),
)

# Upright and facing the camera: the body's y-up becomes the camera's -y, its +z faces the camera.
FACING_CAMERA = (math.pi, 0.0, 0.0)
# Arms lowered 70 degrees from the T-pose (about the forward axis): closer to how people stand.
ARMS_DOWN = {"left_shoulder": (0.0, 0.0, -1.2), "right_shoulder": (0.0, 0.0, 1.2)}


def relaxed_pose(batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(B, 23, 3) axis-angle body pose with the arms lowered."""
    pose = torch.zeros(batch, 23, 3, device=device, dtype=dtype)
    for name, aa in ARMS_DOWN.items():
        pose[:, SMPL_JOINT_INDEX[name] - 1] = torch.tensor(aa, device=device, dtype=dtype)
    return pose


def mean_init(model: BodyModel, obs: Observations, min_conf: float = 0.2) -> BodyParams:
    """Mean shape, rest pose with arms lowered, facing the camera; depth from body size in the image."""
    b = obs.batch_size
    device, dtype = obs.keypoints.device, obs.keypoints.dtype
    orient = torch.tensor(FACING_CAMERA, device=device, dtype=dtype).expand(b, 3).clone()
    body_pose = relaxed_pose(b, device, dtype)
    betas = torch.zeros(b, model.num_betas, device=device, dtype=dtype)
    params = BodyParams(global_orient=orient, body_pose=body_pose, betas=betas, transl=torch.zeros_like(orient))
    return place(model, params, obs, min_conf)


def place(model: BodyModel, params: BodyParams, obs: Observations, min_conf: float = 0.2) -> BodyParams:
    """`params` (pose and shape kept) moved to where the keypoints say: depth from the body's size in the
    image, then sideways so the seen torso lands on its image position."""
    params = BodyParams(params.global_orient, params.body_pose, params.betas, torch.zeros_like(params.transl))
    kp3d, kp2d = params.pose(model).keypoints, obs.keypoints
    # Depth: focal * 3D length / 2D length, over the segments both ends of which are seen, median.
    ratios = []
    for a, c in DEPTH_SEGMENTS:
        ia, ic = KEYPOINT_INDEX[a], KEYPOINT_INDEX[c]
        l3 = (kp3d[:, ia, :2] - kp3d[:, ic, :2]).norm(dim=-1)
        l2 = (kp2d[:, ia, :2] - kp2d[:, ic, :2]).norm(dim=-1)
        seen = (kp2d[:, ia, 2] > min_conf) & (kp2d[:, ic, 2] > min_conf) & (l2 > 1.0)
        ratios.append(torch.where(seen, l3 / l2.clamp(min=1.0), torch.full_like(l2, float("nan"))))
    ratio = torch.stack(ratios, 1).nanmedian(1).values
    fallback = 1.7 / obs.scale  # a 1.7 m person spanning the box diagonal
    ratio = torch.where(torch.isnan(ratio), fallback, ratio)
    depth = ratio * obs.focal.mean(-1)
    # x, y: put the centroid of the seen torso (else all seen) keypoints on its image position.
    seen = kp2d[..., 2] > min_conf
    torso = torch.zeros_like(seen)
    torso[:, [KEYPOINT_INDEX[n] for n in TORSO_KEYPOINTS]] = True
    use = torch.where((seen & torso).sum(1, keepdim=True) >= 2, seen & torso, seen).float()
    w = use / use.sum(1, keepdim=True).clamp(min=1)
    uv = (kp2d[..., :2] * w[..., None]).sum(1)
    xy3 = (kp3d[..., :2] * w[..., None]).sum(1)
    z3 = (kp3d[..., 2] * w).sum(1)
    z = depth - z3
    transl_xy = (uv - obs.center) / obs.focal * depth[:, None] - xy3
    params.transl = torch.cat([transl_xy, z[:, None]], -1)
    return params


class MeanInit:
    """`mean_init` as an initialiser (what `--init mean` gives the backends)."""

    name = "mean"

    def __init__(self, model: BodyModel) -> None:
        self.model = model

    def __call__(self, obs: Observations) -> BodyParams:
        return mean_init(self.model, obs)
