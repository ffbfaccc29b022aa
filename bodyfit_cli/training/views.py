"""Training batches for the learned backends: poses from the pose dataset, seen by random cameras.

Each batch draws poses, gives them random body shapes, poses the body model (keypoints and joints
only), and looks at them through `synthetic.random_views` with detector-like noise, dropout and
truncation. The truth comes back in each view's camera frame, as the networks must predict it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.fitting.types import Observations
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.networks import state
from bodyfit_cli.synthetic import ProjectionConfig, random_views
from bodyfit_cli.training.pose_data import PoseDataset
from bodyfit_cli.vocabulary import KEYPOINT_NAMES

Y_UP = torch.tensor([0.0, 1.0, 0.0])  # the pose dataset's world is the mocap's y-up world


@dataclass
class Batch:
    """B synthetic people: what a detector reports, and the camera-frame truth."""

    obs: Observations
    box: state.PersonBox
    features: torch.Tensor  # (B, NUM_FEATURES)
    rotations: torch.Tensor  # (B, 24, 3, 3), global orientation in the camera frame
    betas: torch.Tensor  # (B, S)
    keypoints: torch.Tensor  # (B, K, 3) camera frame
    joints: torch.Tensor  # (B, 24, 3) camera frame
    state: torch.Tensor  # (B, state_size) the truth as a state


class ViewSampler:
    """Deterministic batches: the same seed gives the same batch."""

    def __init__(
        self, model: BodyModel, data: PoseDataset, config: ProjectionConfig | None = None, shape_sigma: float = 1.0
    ) -> None:
        self.model = model
        self.device = model.v_template.device
        pose = torch.cat([torch.from_numpy(data.global_orient)[:, None], torch.from_numpy(data.body_pose).view(-1, 23, 3)], 1)
        self.rotations = axis_angle_to_matrix(pose.float()).to(self.device)
        self.config = config or ProjectionConfig()
        self.shape_sigma = shape_sigma

    def __len__(self) -> int:
        return len(self.rotations)

    @torch.no_grad()
    def sample(self, size: int, seed: int) -> Batch:
        gen = torch.Generator().manual_seed(seed)
        index = torch.randint(len(self.rotations), (size,), generator=gen)
        betas = (torch.randn(size, self.model.num_betas, generator=gen) * self.shape_sigma).clamp(-3, 3)
        rots, betas = self.rotations[index.to(self.device)], betas.to(self.device)
        world = self.model.pose_rotations(rots, betas)
        views = random_views(world.keypoints, KEYPOINT_NAMES, self.config, seed=seed, up=Y_UP.to(self.device))
        r, t = views.rotation, views.translation
        rotations = rots.clone()
        rotations[:, 0] = r @ rots[:, 0]
        joints = world.joints @ r.transpose(1, 2) + t[:, None]
        obs = views.observations
        box = state.person_box(obs)
        return Batch(
            obs=obs, box=box, features=state.keypoint_features(obs, box), rotations=rotations, betas=betas,
            keypoints=views.keypoints3d, joints=joints, state=state.encode_parts(rotations, betas, joints[:, 0], box),
        )  # fmt: skip
