"""Neural descent (after HUND, Zanfir et al., CVPR 2021): `--method hund`.

A few recurrent stages refine the state (see `networks.state`). Each stage measures how the current body
aligns with the evidence, by forward passes only: the keypoints' reprojection residuals and, where the
detector gave a mask, the difference between it and the body's soft silhouette. The network turns that,
its memory and a context code of the keypoints and mask into the next state. Unlike LGD, no gradient of
any loss is computed at test time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.detection.masks import MASK_SIZE
from bodyfit_cli.fitting import losses
from bodyfit_cli.fitting.lgd import SIGMA
from bodyfit_cli.fitting.priors import PosePrior
from bodyfit_cli.fitting.silhouette import Silhouettes, has_mask, silhouette_loss
from bodyfit_cli.fitting.types import BodyParams, Observations
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.networks import state
from bodyfit_cli.networks.hund import POOL, NeuralDescent
from bodyfit_cli.networks.weights import load_network

RESIDUAL_CLIP = 1.0  # residuals beyond one box size say only "far off"


@dataclass
class Alignment:
    """How a state aligns with the evidence, per person: the network's input and the 2D losses."""

    inputs: torch.Tensor  # (B, NUM_ALIGNMENT)
    reprojection: torch.Tensor  # (B,)
    silhouette: torch.Tensor  # (B,), 0 without a mask


def alignment(
    model: BodyModel, silhouettes: Silhouettes, x: torch.Tensor, obs: Observations, box: state.PersonBox,
    masks: torch.Tensor,
) -> Alignment:  # fmt: skip
    """Residuals and losses of state `x`; the silhouette is rendered only for people with a mask."""
    with_mask = has_mask(masks)
    body = state.pose(model, state.decode(x, box), points=silhouettes.points if bool(with_mask.any()) else None)
    uv = project(body.keypoints, obs.focal, obs.center)
    seen = (obs.keypoints[..., 2:] > state.SEEN).to(x.dtype)
    residuals = ((uv - obs.keypoints[..., :2]) / box.size[:, None, None]).clamp(-RESIDUAL_CLIP, RESIDUAL_CLIP) * seen
    reprojection = losses.reprojection(body.keypoints, obs, SIGMA)
    if body.points is None:
        diff = torch.zeros_like(masks)
        sil = torch.zeros_like(reprojection)
    else:
        rendered = silhouettes.render(body.points, obs, box)
        diff = (rendered - masks) * with_mask[:, None, None]
        sil = silhouette_loss(rendered, masks)
    pooled = F.avg_pool2d(diff[:, None], POOL).flatten(1)
    inputs = torch.cat([residuals.flatten(1), pooled, 10 * reprojection[:, None], 10 * sil[:, None]], -1)
    return Alignment(inputs, reprojection, sil)


def descend(
    net: NeuralDescent, model: BodyModel, silhouettes: Silhouettes, obs: Observations, x: torch.Tensor,
) -> list[torch.Tensor]:  # fmt: skip
    """The states after each stage, starting from `x`. Differentiable in the network's weights through
    the states it adds up; the alignment it reads is measured without a graph, as at test time."""
    box = state.person_box(obs)
    masks = obs.masks if obs.masks is not None else x.new_zeros(x.shape[0], MASK_SIZE, MASK_SIZE)
    context = net.context_code(state.keypoint_features(obs, box), masks, has_mask(masks))
    memory, states = None, []
    for _ in range(net.stages):
        with torch.no_grad():
            a = alignment(model, silhouettes, x.detach(), obs, box, masks)
        delta, memory = net(x, a.inputs, context, memory)
        x = x + delta
        states.append(x)
    return states


class NeuralDescentFitter:
    name = "hund"

    def __init__(self, model: BodyModel, prior: PosePrior | None = None, net: NeuralDescent | None = None) -> None:
        self.model = model
        self.net = net or load_network("hund", model.name, model.num_betas, model.v_template.device)
        self.silhouettes = Silhouettes(model)

    @torch.no_grad()
    def fit(self, obs: Observations, init: BodyParams) -> BodyParams:
        box = state.person_box(obs)
        x = descend(self.net, self.model, self.silhouettes, obs, state.encode(self.model, init, box))[-1]
        return state.to_params(self.model, state.decode(x, box))
