"""Neural descent (after HUND, Zanfir et al., CVPR 2021): `--method hund`.

A few recurrent stages refine the state (see `networks.state`). Each stage measures how the current body
aligns with the evidence, by forward passes only: the keypoints' reprojection residuals and, where the
detector gave a mask, the difference between it and the body's soft silhouette; optionally also the turn
of each limb's joint that would lay its projection onto the detected segment, in closed form from the
posed body (`limb_turns`). The network turns that, its memory and a context code of the keypoints and
mask into the next state. Unlike LGD, no gradient of any loss is computed at test time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bodyfit_cli.body.model import BodyModel, Skeleton
from bodyfit_cli.core.box import SEEN, PersonBox, person_box
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.detection.masks import MASK_SIZE
from bodyfit_cli.fitting import losses
from bodyfit_cli.fitting.silhouette import Silhouettes, has_mask, silhouette_loss
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.learned.hund.network import POOL, NeuralDescent
from bodyfit_cli.learned.hund.recipe import FILE
from bodyfit_cli.networks import state
from bodyfit_cli.networks.weights import load_network
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, SEGMENTS, SMPL_JOINT_INDEX

RESIDUAL_CLIP = 1.0  # residuals beyond one box size say only "far off"
RESIDUAL_GAIN = 10.0  # misses are a few hundredths of the box: read them at the scale of the state's numbers
BODY3D_GAIN = 2.0  # pelvis-relative points in metres, read as about -2..2


_SEGMENT_ENDS = torch.tensor([[KEYPOINT_INDEX[a], KEYPOINT_INDEX[b]] for a, b in SEGMENTS])
# The SMPL joint whose rotation turns each segment most directly: a limb's own joint (named as its first
# end); for the torso, the lower spine (its sides), the upper spine (the shoulders) and the pelvis (the hips).
_TORSO_JOINTS = {("left_shoulder", "right_shoulder"): "spine3", ("left_hip", "right_hip"): "pelvis"}
TURNING_JOINTS = tuple(
    SMPL_JOINT_INDEX[_TORSO_JOINTS.get((a, b), "spine1" if b.endswith("_hip") else a)] for a, b in SEGMENTS
)


@dataclass
class Segments:
    """The detected segments between keypoints (`vocabulary.SEGMENTS`), per person."""

    vectors: torch.Tensor  # (B, S, 2) from the first end to the second, pixels
    lengths: torch.Tensor  # (B, S), at least 1e-6
    seen: torch.Tensor  # (B, S) 1 where both ends were detected, else 0


def _vectors(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ends = _SEGMENT_ENDS.to(points.device)
    vectors = points[:, ends[:, 1]] - points[:, ends[:, 0]]
    return vectors, vectors.norm(dim=-1).clamp(min=1e-6)


def segments(points: torch.Tensor, seen: torch.Tensor) -> Segments:
    """Segments of (B, K, 2) keypoints, `seen` (B, K, 1) saying which were detected."""
    return Segments(*_vectors(points), seen[:, _SEGMENT_ENDS.to(points.device), 0].prod(-1))


def segment_turns(uv: torch.Tensor, detected: Segments) -> torch.Tensor:
    """(B, S*3) per segment between keypoints: the sine and 1 - cosine of the angle from the body's projected
    segment to the detected one, and the log of their length ratio; 0 where an end is not detected. These
    say directly which way each limb must turn, which a network would otherwise have to work out from the
    keypoints' residuals."""
    p, pn = _vectors(uv)
    d, dn = detected.vectors, detected.lengths
    lengths = pn * dn
    sin = (p[..., 0] * d[..., 1] - p[..., 1] * d[..., 0]) / lengths
    cos = (p * d).sum(-1) / lengths
    stretch = (dn / pn).log().clamp(-1.0, 1.0)
    return (torch.stack([sin, 1 - cos, stretch], -1) * detected.seen[..., None]).flatten(1)


@dataclass
class TurnFrames:
    """Where each segment's turning joint (`TURNING_JOINTS`) is in a model's own joint layout."""

    parent: torch.Tensor  # (S,) its parent's index into the world rotations with the identity appended
    present: torch.Tensor  # (S,) 1 where the model has the joint, else 0


def turn_frames(model: BodyModel) -> TurnFrames:
    rotated = torch.cat([model.pose_joints.new_zeros(1), model.pose_joints])[list(TURNING_JOINTS)]  # root: joint 0
    device = model.v_template.device
    parent = model.parent_index[rotated.clamp(min=0).to(device)]
    return TurnFrames(parent, (rotated >= 0).to(device, model.v_template.dtype))


def limb_turns(
    keypoints: torch.Tensor, turns2d: torch.Tensor, sk: Skeleton, frames: TurnFrames, seen: torch.Tensor
) -> torch.Tensor:
    """(B, S*3) per segment: the small turn e of its turning joint (R -> exp([e]x) R, in its parent's frame,
    as LGD's gradient is read) that lays the body's projected segment onto the detected one. It turns the
    segment about the camera ray through its first end by their angle in the image, and towards or away
    from that ray until its projected length matches, keeping the side of the image plane it is on.
    Closed-form geometry of the posed body (camera-frame `keypoints`) and of `segment_turns`' output
    `turns2d`, not a gradient: which joint to turn, and which way in 3D, is what a network reading only 2D
    misalignments must otherwise work out from the rotations."""
    ends = _SEGMENT_ENDS.to(keypoints.device)
    start = keypoints[:, ends[:, 0]]
    v = keypoints[:, ends[:, 1]] - start
    ray = F.normalize(start, dim=-1)
    sin, one_minus_cos, stretch = turns2d.unflatten(1, (-1, 3)).unbind(-1)
    in_image = torch.atan2(sin, 1 - one_minus_cos)
    tilt = torch.acos(((v * ray).sum(-1) / v.norm(dim=-1).clamp(min=1e-6)).clamp(-1, 1))  # from the ray
    target = torch.asin((tilt.sin() * stretch.exp()).clamp(max=1))
    target = torch.where(tilt > math.pi / 2, math.pi - target, target)
    axis = F.normalize(torch.cross(v, ray, dim=-1), dim=-1)  # turning v about it moves v towards the ray
    turn = in_image[..., None] * ray + (tilt - target)[..., None] * axis
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand(v.shape[0], 1, 3, 3)
    parent = torch.cat([sk.transforms[..., :3, :3], eye], 1)[:, frames.parent]
    local = (parent.transpose(-1, -2) @ turn[..., None])[..., 0]
    return (local * (seen * frames.present)[..., None]).flatten(1)


@dataclass
class Evidence:
    """What the stages compare the body with. It is the same at every stage, so it is prepared once per fit."""

    obs: Observations
    box: PersonBox
    masks: torch.Tensor  # (B, M, M), zeros for people without a mask
    with_mask: torch.Tensor  # (B,) bool
    any_mask: bool
    seen: torch.Tensor  # (B, K, 1) 1 where the keypoint was detected
    segments: Segments
    frames: TurnFrames


def evidence(model: BodyModel, obs: Observations, dtype: torch.dtype = torch.float32) -> Evidence:
    masks = obs.masks if obs.masks is not None else obs.keypoints.new_zeros(obs.batch_size, MASK_SIZE, MASK_SIZE)
    with_mask = has_mask(masks)
    seen = (obs.keypoints[..., 2:] > SEEN).to(dtype)
    return Evidence(
        obs,
        person_box(obs),
        masks,
        with_mask,
        bool(with_mask.any()),
        seen,
        segments(obs.keypoints[..., :2], seen),
        turn_frames(model),
    )


@dataclass
class Alignment:
    """How a state aligns with the evidence, per person: the network's input and the 2D losses."""

    inputs: torch.Tensor  # (B, NUM_ALIGNMENT), then more with `body3d` and `turns`
    reprojection: torch.Tensor  # (B,)
    silhouette: torch.Tensor  # (B,), 0 without a mask


def alignment(
    model: BodyModel,
    silhouettes: Silhouettes,
    x: torch.Tensor,
    ev: Evidence,
    body3d: bool = False,
    turns: bool = False,
) -> Alignment:
    """Residuals and losses of state `x`; the silhouette is rendered only for people with a mask. With
    `body3d`, the inputs then hold the body's keypoints and joints, pelvis-relative, in the camera frame;
    with `turns`, they end with the `limb_turns`."""
    obs, box = ev.obs, ev.box
    d = state.decode(x, box)
    sk = model.skeleton(d.rotations, d.betas)
    body = state.pose(model, d, points=silhouettes.points if ev.any_mask else None, skeleton=sk)
    uv = project(body.keypoints, obs.focal, obs.center)
    residuals = ((uv - obs.keypoints[..., :2]) / box.size[:, None, None]).clamp(-RESIDUAL_CLIP, RESIDUAL_CLIP) * ev.seen
    projected = ((uv - box.center[:, None]) / box.size[:, None, None]).clamp(
        -2, 2
    )  # where the body's keypoints are now
    reprojection = losses.reprojection(body.keypoints, obs)
    if body.points is None:
        pooled = x.new_zeros(x.shape[0], (MASK_SIZE // POOL) ** 2)
        sil = torch.zeros_like(reprojection)
    else:
        rendered = silhouettes.render(body.points, obs, box)
        diff = (rendered - ev.masks) * ev.with_mask[:, None, None]
        pooled = F.avg_pool2d(diff[:, None], POOL).flatten(1)
        sil = silhouette_loss(rendered, ev.masks)
    turns2d = segment_turns(uv, ev.segments)
    parts = [
        RESIDUAL_GAIN * residuals.flatten(1),
        projected.flatten(1),
        turns2d,
        pooled,
        10 * reprojection[:, None],
        10 * sil[:, None],
    ]
    if body3d:
        parts.append(BODY3D_GAIN * (torch.cat([body.keypoints, body.joints], 1) - body.joints[:, :1]).flatten(1))
    if turns:
        parts.append(limb_turns(body.keypoints, turns2d, sk, ev.frames, ev.segments.seen))
    return Alignment(torch.cat(parts, -1), reprojection, sil)


def descend(
    net: NeuralDescent,
    model: BodyModel,
    silhouettes: Silhouettes,
    obs: Observations,
    x: torch.Tensor,
) -> list[torch.Tensor]:
    """The states after each stage, starting from `x`. Differentiable in the network's weights through
    the states it adds up; the alignment it reads is measured without a graph, as at test time."""
    ev = evidence(model, obs, x.dtype)
    context = net.context_code(state.keypoint_features(obs, ev.box, net.world), ev.masks, ev.with_mask)
    memory, states = None, []
    for _ in range(net.stages):
        with torch.no_grad():
            a = alignment(model, silhouettes, x.detach(), ev, net.body3d, net.turns)
        delta, memory = net(x, a.inputs, context, memory)
        x = x + delta
        states.append(x)
    return states


class NeuralDescentFitter:
    name = "hund"

    def __init__(self, model: BodyModel, net: NeuralDescent | None = None) -> None:
        self.model = model
        self.net = net or load_network(
            NeuralDescent, "hund", model.name, model.num_betas, model.v_template.device, FILE
        )
        self.silhouettes = Silhouettes(model)

    @torch.inference_mode()  # lighter than no_grad, and shows that nothing here needs a gradient
    def fit(self, obs: Observations, init: BodyParams) -> BodyParams:
        box = person_box(obs)
        x = descend(self.net, self.model, self.silhouettes, obs, state.encode(self.model, init, box))[-1]
        return state.to_params(self.model, state.decode(x, box))
