"""Training batches for the learned backends: poses from the pose dataset, seen by random cameras.

Each batch draws poses, gives them random body shapes, poses the body model (keypoints and joints
only), and looks at them through `synthetic.random_views` with detector-like noise, dropout and
truncation. The truth comes back in each view's camera frame, as the networks must predict it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bodyfit_cli.body.model import BodyModel, PointSet
from bodyfit_cli.core.box import PersonBox, person_box
from bodyfit_cli.core.types import Observations
from bodyfit_cli.detection.masks import MASK_SIZE
from bodyfit_cli.fitting.silhouette import TARGET_POINTS, surface_ids
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.networks import state
from bodyfit_cli.synthetic import ProjectionConfig, random_views
from bodyfit_cli.training.pose_data import PoseDataset
from bodyfit_cli.vocabulary import KEYPOINT_NAMES, SMPL_JOINT_INDEX, indices

Y_UP = torch.tensor([0.0, 1.0, 0.0])  # the pose dataset's world is the mocap's y-up world
TILT_DEG = 100.0  # `tilt`: largest turn off upright, a little past lying flat
# `landmarks`: how MediaPipe's world landmarks err, measured against the truth on renders of training-trial
# poses (`scripts/make_renders.py --dev`): the whole body turned by about 10 degrees (median), and each
# point off by about 7 cm across the view and 14 cm in depth (RMS), more for some people than others.
LANDMARK_TURN = 0.11  # radians, per axis
LANDMARK_NOISE = (0.06, 0.06, 0.12)  # metres along the camera's x, y, z, before the per-person factor
LANDMARK_FACTOR = (0.5, 1.5)
# Body parts whose joint rotations (relative to their parents) `mix_parts` may take from another pose.
PARTS: tuple[tuple[str, ...], ...] = tuple(
    tuple(f"{side}_{joint}" for joint in joints)
    for side in ("left", "right")
    for joints in (("hip", "knee", "ankle", "foot"), ("collar", "shoulder", "elbow", "wrist", "hand"))
) + (("spine1", "spine2", "spine3"), ("neck", "head"))


@dataclass
class Batch:
    """B synthetic people: what a detector reports, and the camera-frame truth."""

    obs: Observations
    box: PersonBox
    features: torch.Tensor  # (B, NUM_FEATURES)
    rotations: torch.Tensor  # (B, 24, 3, 3), global orientation in the camera frame
    betas: torch.Tensor  # (B, S)
    keypoints: torch.Tensor  # (B, K, 3) camera frame
    joints: torch.Tensor  # (B, 24, 3) camera frame
    state: torch.Tensor  # (B, state_size) the truth as a state


class ViewSampler:
    """Deterministic batches: the same seed gives the same batch. With `masks` > 0, that share of the
    views also gets a person mask (the rest none, as with keypoints from a file), made from dense points
    of the true body's surface: a stand-in for the detector's segmentation. With `mix_parts` > 0, that
    share of the poses takes each body part (`PARTS`) with even odds from another pose of the dataset:
    three CMU subjects walk, run and jump, while people in photos sit, reach and crouch, and a fitter that
    has only seen the first learns to stop short of the keypoints of the others. With `landmarks` (a share),
    that share of the views also gets the detector's 3D world landmarks (`simulated_landmarks`) and the
    features hold them (`state.world_features`; the rest get none, as with keypoint files). With `tilt` > 0, that
    share of the poses is turned about a random horizontal axis by up to `TILT_DEG`: the mocap's people
    stand, while people in photos also lie, crawl and bend over, and a network that never saw a body
    far from upright turns every body upright."""

    def __init__(
        self,
        model: BodyModel,
        data: PoseDataset,
        config: ProjectionConfig | None = None,
        shape_sigma: float = 1.0,
        masks: float = 0.0,
        mix_parts: float = 0.0,
        tilt: float = 0.0,
        landmarks: float | None = None,
    ) -> None:
        self.model = model
        self.device = model.v_template.device
        pose = torch.cat(
            [torch.from_numpy(data.global_orient)[:, None], torch.from_numpy(data.body_pose).view(-1, 23, 3)], 1
        )
        self.rotations = axis_angle_to_matrix(pose.float()).to(self.device)
        self.config = config or ProjectionConfig()
        self.shape_sigma = shape_sigma
        self.masks = masks
        self.mix_parts = mix_parts
        self.tilt = tilt
        self.landmarks = landmarks
        self.parts = [torch.tensor(indices(part, SMPL_JOINT_INDEX), device=self.device) for part in PARTS]
        self.dense = model.point_set(surface_ids(model, TARGET_POINTS)) if masks > 0 else None

    def __len__(self) -> int:
        return len(self.rotations)

    @torch.no_grad()
    def sample(self, size: int, seed: int) -> Batch:
        gen = torch.Generator().manual_seed(seed)
        index = torch.randint(len(self.rotations), (size,), generator=gen)
        betas = (torch.randn(size, self.model.num_betas, generator=gen) * self.shape_sigma).clamp(-3, 3)
        rots, betas = self.rotations[index.to(self.device)], betas.to(self.device)
        if self.mix_parts > 0:
            rots = self._mixed(rots, gen)
        if self.tilt > 0:
            rots = self._tilted(rots, gen)
        world = self.model.pose_rotations(rots, betas)
        views = random_views(world.keypoints, KEYPOINT_NAMES, self.config, seed=seed, up=Y_UP.to(self.device))
        r, t = views.rotation, views.translation
        rotations = rots.clone()
        rotations[:, 0] = r @ rots[:, 0]
        joints = world.joints @ r.transpose(1, 2) + t[:, None]
        obs = views.observations
        if self.landmarks is not None:
            obs.points3d = simulated_landmarks(views.keypoints3d, self.landmarks, gen)
        box = person_box(obs)
        truth = state.encode_parts(rotations, betas, joints[:, 0], box)
        if self.dense is not None:
            keep = torch.rand(size, generator=gen) < self.masks
            obs.masks = target_masks(self.dense, self.model, truth, obs, box) * keep.to(self.device)[:, None, None]
        return Batch(
            obs=obs,
            box=box,
            features=state.keypoint_features(obs, box, world=self.landmarks is not None),
            rotations=rotations,
            betas=betas,
            keypoints=views.keypoints3d,
            joints=joints,
            state=truth,
        )

    def _mixed(self, rots: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """`rots` with parts of a `mix_parts` share of them taken from random other poses (global orientation kept)."""
        size = len(rots)
        mixed = torch.rand(size, generator=gen) < self.mix_parts
        rots = rots.clone()
        for part in self.parts:
            take = (mixed & (torch.rand(size, generator=gen) < 0.5)).to(self.device)
            donors = torch.randint(len(self.rotations), (size,), generator=gen).to(self.device)
            rots[:, part] = torch.where(take[:, None, None, None], self.rotations[donors[:, None], part], rots[:, part])
        return rots

    def _tilted(self, rots: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """`rots` with a `tilt` share of the global orientations turned about a random horizontal axis by an
        angle uniform in [0, TILT_DEG]."""
        size = len(rots)
        heading = torch.rand(size, generator=gen) * 2 * math.pi
        angle = torch.rand(size, generator=gen) * math.radians(TILT_DEG)
        angle = angle * (torch.rand(size, generator=gen) < self.tilt)
        axis = torch.stack([heading.cos(), torch.zeros(size), heading.sin()], -1)  # horizontal in the y-up world
        turn = axis_angle_to_matrix((axis * angle[:, None]).to(self.device))
        rots = rots.clone()
        rots[:, 0] = turn @ rots[:, 0]
        return rots


def simulated_landmarks(keypoints3d: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """(B, K, 3) MediaPipe-like world landmarks of true camera-frame keypoints: centred between the hips,
    turned and jittered as `LANDMARK_TURN` and `LANDMARK_NOISE` say; NaN for all but a `share` of the people."""
    b, k, device = keypoints3d.shape[0], keypoints3d.shape[1], keypoints3d.device
    centred = keypoints3d - keypoints3d[:, state.HIPS].mean(1, keepdim=True)
    turn = axis_angle_to_matrix((torch.randn(b, 3, generator=gen) * LANDMARK_TURN).to(device))
    lo, hi = LANDMARK_FACTOR
    factor = (lo + (hi - lo) * torch.rand(b, 1, 1, generator=gen)).to(device)
    noise = torch.randn(b, k, 3, generator=gen).to(device) * torch.tensor(LANDMARK_NOISE, device=device) * factor
    points = centred @ turn.transpose(1, 2) + noise
    keep = (torch.rand(b, generator=gen) < share).to(device)
    return torch.where(keep[:, None, None], points, torch.full_like(points, float("nan")))


def target_masks(dense: PointSet, model: BodyModel, x: torch.Tensor, obs: Observations, box: PersonBox) -> torch.Tensor:
    """(B, M, M) masks of the bodies of states `x`: the mask pixels that dense surface points fall in (at
    this resolution several per pixel, so no gaps), cut at the image's edges as a detector's mask is, and
    softened by a [1, 2, 1] blur as a detector's mask is by resampling."""
    size = MASK_SIZE
    body = state.pose(model, state.decode(x, box), points=dense)
    uv = project(body.points, obs.focal, obs.center)
    # The image spans [0, 2 * principal point]: nothing is seen beyond its edges.
    in_image = ((uv >= 0) & (uv <= 2 * obs.center[:, None])).all(-1)
    cell = ((uv - (box.center - box.size[:, None] / 2)[:, None]) / box.size[:, None, None] * size).floor().long()
    ok = (cell >= 0).all(-1) & (cell < size).all(-1) & in_image
    flat = (cell[..., 1] * size + cell[..., 0]).clamp(0, size * size - 1)
    hits = x.new_zeros(x.shape[0], size * size).scatter_add_(1, flat, ok.to(x.dtype))
    hard = (hits > 0).to(x.dtype).view(-1, 1, size, size)
    kernel = torch.tensor([0.25, 0.5, 0.25], dtype=x.dtype, device=x.device)
    soft = F.conv2d(F.pad(hard, (1, 1, 0, 0)), kernel.view(1, 1, 1, 3))
    soft = F.conv2d(F.pad(soft, (0, 0, 1, 1)), kernel.view(1, 1, 3, 1))
    return soft[:, 0]
