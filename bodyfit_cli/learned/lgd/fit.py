"""Learned Gradient Descent (Song, Chen, Hilliges, ECCV 2020): a few steps, each predicted by a network.

Each step computes the gradient of the confidence-weighted 2D reprojection loss with respect to the state
(through the body model's keypoints only) and lets the update network turn it, with the state and the
keypoints, into the step to take. No pose or shape prior is used: the network has learned what bodies
look like from motion capture.
"""

from __future__ import annotations

import torch

from bodyfit_cli.body.gradient import keypoints_with_gradient
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import PersonBox, person_box
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.fitting import losses
from bodyfit_cli.learned.lgd.network import UpdateNetwork
from bodyfit_cli.learned.lgd.recipe import FILE
from bodyfit_cli.networks import state
from bodyfit_cli.networks.weights import load_network


def reprojection_gradient(
    model: BodyModel, x: torch.Tensor, obs: Observations, box: PersonBox, closed_form: bool = True
) -> torch.Tensor:
    """d(reprojection loss)/d(state) at `x`, as a constant (no graph back to `x`). In closed form
    (body/gradient.py) by default; `closed_form=False` takes it by autograd instead, the reference the
    closed form is tested and timed against (benchmarks/bench_lgd_gradient.py)."""
    x = x.detach()
    if not closed_form:
        with torch.enable_grad():
            x.requires_grad_(True)
            keypoints = state.pose(model, state.decode(x, box)).keypoints
            return torch.autograd.grad(losses.reprojection(keypoints, obs).sum(), x)[0]
    d = state.decode(x, box)
    keypoints, pullback = keypoints_with_gradient(model, d.rotations, d.betas)
    grad = losses.reprojection_gradient(keypoints + d.pelvis[:, None], obs)
    turns, betas = pullback(grad)
    return state.gradient(x, box, d, turns, betas, grad.sum(1))


def descend(net: UpdateNetwork, model: BodyModel, obs: Observations, x: torch.Tensor) -> list[torch.Tensor]:
    """The states after each of the network's steps, starting from `x`. Differentiable in the network's
    weights (training backpropagates through all steps), not through the gradients it reads."""
    box = person_box(obs)
    features = state.keypoint_features(obs, box, net.world)
    states = []
    for step in range(net.steps):
        x = x + net(x, reprojection_gradient(model, x, obs, box), features, step)
        states.append(x)
    return states


class LearnedGradientDescent:
    name = "lgd"

    def __init__(self, model: BodyModel) -> None:
        self.model = model
        self.net = load_network(UpdateNetwork, "lgd", model.name, model.num_betas, model.v_template.device, FILE)

    @torch.no_grad()
    def fit(self, obs: Observations, init: BodyParams) -> BodyParams:
        box = person_box(obs)
        x = descend(self.net, self.model, obs, state.encode(self.model, init, box))[-1]
        return state.to_params(self.model, state.decode(x, box))
