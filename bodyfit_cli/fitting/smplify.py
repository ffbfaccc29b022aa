"""SMPLify (Bogo et al., ECCV 2016, as used in SPIN): optimisation-based fitting to 2D keypoints.

Stage 1 fits global orientation and translation to the torso, trying the body turned around as
well, since a torso seen from the front or the back projects alike. Stage 2 fits everything with
the robust reprojection term, the pose prior, the bending prior and the shape prior.
Where the detector also gives its own 3D keypoints (MediaPipe's world landmarks), both stages add a robust
term on them: it tells front from back and how far a limb reaches towards the camera, which 2D alone cannot.
All people are optimised together as one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.fitting import losses
from bodyfit_cli.fitting.priors import PosePrior, load_prior
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, NUM_KEYPOINTS, TORSO_KEYPOINTS


@dataclass
class SMPLifyConfig:
    torso_iters: int = 20
    full_iters: int = 60
    lr: float = 0.04
    sigma: float = losses.REPROJECTION_SIGMA  # robust scale, in units of the person's size
    pose_weight: float | None = None  # None: the prior's own `smplify_weight`
    bending_weight: float = 1e-3
    shape_weight: float = 5e-4
    prior_decay: float = 0.3  # priors end at this fraction of their starting weight
    points3d_weight: float = 0.003  # the detector's own 3D keypoints (where it gives them) against the 2D term
    points3d_sigma: float = 0.3  # robust scale of that term (distance of unit segment directions)


class SMPLify:
    """Fits `BodyParams` to `Observations`, starting from a given initialisation."""

    name = "smplify"
    uses_prior = True  # `registry.make_backend` hands it the pose prior `--prior` names

    def __init__(self, model: BodyModel, prior: PosePrior | None = None, config: SMPLifyConfig | None = None) -> None:
        self.model = model
        self.prior = prior if prior is not None else load_prior("gmm", model.v_template.device)
        self.cfg = config or SMPLifyConfig()
        self.pose_weight = self.cfg.pose_weight if self.cfg.pose_weight is not None else self.prior.smplify_weight
        mask = torch.zeros(NUM_KEYPOINTS)
        mask[[KEYPOINT_INDEX[n] for n in TORSO_KEYPOINTS]] = 1.0
        self.torso_mask = mask

    def keypoints(self, p: BodyParams) -> torch.Tensor:
        return p.pose(self.model).keypoints

    def data_term(self, keypoints: torch.Tensor, obs: Observations, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The 2D reprojection term, plus the detector's 3D keypoints where it gives them. (B,)"""
        data = losses.reprojection(keypoints, obs, self.cfg.sigma, mask)
        if obs.points3d is not None and self.cfg.points3d_weight > 0:
            data = data + self.cfg.points3d_weight * losses.detector_points3d(
                keypoints, obs, self.cfg.points3d_sigma, mask
            )
        return data

    def fit(self, obs: Observations, init: BodyParams) -> BodyParams:
        with torch.enable_grad():
            p = self.fit_torso(obs, init)
            return self.fit_full(obs, p)

    def fit_torso(self, obs: Observations, init: BodyParams) -> BodyParams:
        """Orientation and translation from the torso, for the body as initialised and turned around.

        Both candidates are optimised in one batch of 2B; the better one per person is kept.
        """
        b = obs.batch_size
        turn = axis_angle_to_matrix(torch.tensor([0.0, math.pi, 0.0]).to(init.global_orient))
        turned = matrix_to_axis_angle(axis_angle_to_matrix(init.global_orient) @ turn)
        both = init.map(lambda t: torch.cat([t, t])).detach()
        both.global_orient = torch.cat([init.global_orient, turned]).detach()
        obs2 = obs.map(lambda t: torch.cat([t, t]))
        mask = self.torso_mask.to(obs.keypoints)
        fitted = self._torso_stage(obs2, both, mask)
        # Where the torso alone cannot tell front from back, the full keypoint set usually can.
        kp = self.keypoints(fitted)
        score = self.data_term(kp, obs2) + 0.1 * self.data_term(kp, obs2, mask)
        pick = score[b:] < score[:b]
        index = torch.arange(b, device=pick.device) + b * pick.long()
        return fitted.select(index)

    def _torso_stage(self, obs: Observations, init: BodyParams, mask: torch.Tensor) -> BodyParams:
        fixed = init.detach()
        x = torch.cat([fixed.global_orient, fixed.transl], 1).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=self.cfg.lr, fused=True)

        def current() -> BodyParams:
            return BodyParams(x[:, :3], fixed.body_pose, fixed.betas, x[:, 3:])

        for _ in range(self.cfg.torso_iters):
            opt.zero_grad()
            self.data_term(self.keypoints(current()), obs, mask).sum().backward()
            opt.step()
        return current().detach()

    def fit_full(self, obs: Observations, init: BodyParams) -> BodyParams:
        # One flat tensor for all parameters: one optimiser update per step instead of one per tensor.
        x = init.flatten().detach().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=self.cfg.lr, fused=True)
        cfg = self.cfg
        for it in range(cfg.full_iters):
            decay = cfg.prior_decay ** (it / max(cfg.full_iters - 1, 1))
            opt.zero_grad()
            p = BodyParams.unflatten(x)
            data = self.data_term(self.keypoints(p), obs)
            prior = (
                self.pose_weight * self.prior(p.body_pose)
                + cfg.bending_weight * losses.bending(p.body_pose)
                + cfg.shape_weight * losses.shape_prior(p.betas)
            )
            (data + decay * prior).sum().backward()
            opt.step()
        return BodyParams.unflatten(x).detach()
