"""Pose priors: anything with `__call__(body_pose (B, 23, 3) axis-angle) -> (B,)` plugs into SMPLify."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from bodyfit_cli.errors import BodyModelError
from bodyfit_cli.fitting.registry import POSE_PRIORS
from bodyfit_cli.shipped import shipped_file
from bodyfit_cli.vocabulary import SMPL_JOINT_NAMES


class PosePrior(Protocol):
    smplify_weight: float  # how strongly SMPLify weighs this prior's energy against the 2D evidence

    def __call__(self, body_pose: torch.Tensor) -> torch.Tensor: ...


# Joints that move a lot in everyday poses get a looser prior than the spine, neck and feet.
LOOSE_JOINTS = {
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_collar",
    "right_collar",
}


class SimplePosePrior(torch.nn.Module):
    """A zero-mean Gaussian on axis-angle joint rotations, looser on the limbs.

    The hand-set prior the learned one replaced; kept for comparison (`bodyfit bench --prior simple`).
    """

    smplify_weight = 1e-3  # SMPLify's weight on this prior, tuned with `bodyfit bench` on CMU 03_01

    def __init__(self, loose: float = 0.15, stiff: float = 1.0) -> None:
        super().__init__()
        w = [loose if n in LOOSE_JOINTS else stiff for n in SMPL_JOINT_NAMES[1:]]
        self.register_buffer("weights", torch.tensor(w))

    def forward(self, body_pose: torch.Tensor) -> torch.Tensor:
        return (self.weights.to(body_pose) * body_pose.pow(2).sum(-1)).sum(-1)


class GMMPosePrior(torch.nn.Module):
    """A Gaussian mixture over the 69 body-pose numbers, learned from motion capture
    (`bodyfit train prior`), used as SMPLify uses its prior: the energy of the best-fitting component,
    -log(w_k N(x; mu_k, S_k)) minimised over k, shifted so that the most likely component's mean costs 0.
    """

    smplify_weight = 5e-4  # SMPLify's weight on this prior, tuned with `bodyfit bench` on CMU 03_01

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> None:
        super().__init__()
        chol = torch.linalg.cholesky(covariances.double())
        precision_chol = torch.linalg.inv(chol).transpose(-2, -1)  # x^T P x = |L^-1 x|^2, P = L^-T L^-1
        half_log_det = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        offset = half_log_det - torch.log(weights.double())
        self.register_buffer("means", means.float())
        self.register_buffer("precision_chol", precision_chol.float())
        self.register_buffer("offset", (offset - offset.min()).float())

    @staticmethod
    def load(path: Path) -> GMMPosePrior:
        try:
            with np.load(path) as data:
                arrays = {k: torch.as_tensor(data[k]) for k in ("weights", "means", "covariances")}
        except FileNotFoundError:
            raise BodyModelError(f"pose prior not found: {path} (make it with 'bodyfit train prior')") from None
        except (KeyError, ValueError, OSError) as exc:
            raise BodyModelError(f"cannot read pose prior {path}: {exc}") from None
        return GMMPosePrior(**arrays)

    def forward(self, body_pose: torch.Tensor) -> torch.Tensor:
        diff = (body_pose.reshape(body_pose.shape[0], 1, -1) - self.means).transpose(0, 1)  # (K, B, 69)
        white = torch.bmm(diff, self.precision_chol)  # whitened per component: one batched product
        energy = 0.5 * white.pow(2).sum(-1).T + self.offset  # (B, K)
        return energy.min(-1).values


# The learned prior shipped with bodyfit (`bodyfit train prior`); pose vectors mean the same motion on
# every SMPL-family model, so it serves the default model, SMPL and SMPL-X alike.
SHIPPED_PRIOR = shipped_file("pose_prior.npz")


def load_prior(name: str = "gmm", device: torch.device | str = "cpu") -> torch.nn.Module:
    """`gmm`: the learned mixture (the default); `simple`: the hand-set Gaussian it replaced."""
    if name == "gmm":
        return GMMPosePrior.load(SHIPPED_PRIOR).to(device)
    if name == "simple":
        return SimplePosePrior().to(device)
    raise BodyModelError(f"unknown pose prior '{name}' (choose from {', '.join(POSE_PRIORS)})")
