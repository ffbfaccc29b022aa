"""Random cameras around 3D poses, and what a keypoint detector would report through them.

Training and `bodyfit bench` both need 2D evidence with known truth; this makes it from any set of 3D
keypoints (motion capture, fitted bodies) so that it looks like the live pipeline's `Observations`:
full-image pixels, vocabulary order, confidence 0 for what was not seen, `scale` from the observed box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bodyfit_cli.core.types import Observations
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS, mirror_name

# Which way is up, per frame: the first (top group midpoint - bottom group midpoint) that the pose has.
_UP_PAIRS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")),
    (("nose",), ("left_ankle", "right_ankle")),
    (("left_ear", "right_ear"), ("left_ankle", "right_ankle")),
    (("left_shoulder", "right_shoulder"), ("left_ankle", "right_ankle")),
    (("nose",), ("left_hip", "right_hip")),
)
_MIRROR = torch.tensor([KEYPOINT_INDEX[mirror_name(n)] for n in KEYPOINT_NAMES])
_MIN_DEPTH = 0.3  # metres: every point stays at least this far in front of the camera


@dataclass
class ProjectionConfig:
    """Ranges the cameras and the detector imperfections are drawn from (uniformly).

    One landscape image size for all views: the fitter only ever sees full-image pixels and `scale`, so
    a portrait size would add nothing a different `fill` and `fov_deg` do not.
    """

    image_size: tuple[int, int] = (1280, 960)  # W, H in pixels
    fov_deg: tuple[float, float] = (30.0, 65.0)  # vertical field of view; 33 deg is the pipeline's default focal
    elevation_deg: tuple[float, float] = (-10.0, 40.0)  # camera above (+) / below (-) the person's centre
    azimuth_deg: tuple[float, float] = (0.0, 360.0)  # around the up axis, 0 = a fixed world direction
    roll_deg: float = 0.0  # camera roll drawn from [-roll_deg, roll_deg]; 0 keeps image-down = world-down
    fill: tuple[float, float] = (0.45, 0.9)  # max(box height / H, box width / W): lying people fit too
    offset: float = 0.15  # person centre moved off the image centre by up to this fraction of the image
    noise_px: float = 0.01  # Gaussian noise sigma as a fraction of the person's box diagonal
    outlier_rate: float = 0.03  # per visible keypoint: swapped with its mirror, or a 10-30% jump
    dropout: float = 0.1  # per keypoint: missed by the detector (confidence 0)
    truncation: float = 0.15  # per view: the person is pushed over an image edge, cutting 5-60% of it


@dataclass
class SyntheticViews:
    """N views, one per input pose. `visible` is exactly `observations.keypoints[..., 2] > 0`.

    Seen keypoints: noisy u, v clipped into the image, confidence in [0.5, 1] (lower for larger noise) or
    [0.2, 0.6] for outliers. Unseen ones: confidence 0 and the exact (unclipped) projection, or 0, 0 for
    names the input lacked, so nothing is NaN where losses multiply residuals by confidence.
    """

    observations: Observations  # what a detector would have given
    rotation: torch.Tensor  # (N, 3, 3) world -> camera
    translation: torch.Tensor  # (N, 3): camera point = rotation @ world point + translation
    keypoints3d: torch.Tensor  # (N, K, 3) true points in the camera frame, NaN for names the input lacked
    visible: torch.Tensor  # (N, K) bool: true point inside the image and not dropped


def to_vocabulary(points: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """(N, len(names), 3) -> (N, K, 3) in vocabulary order; NaN for missing names, unknown names ignored."""
    out = points.new_full((points.shape[0], NUM_KEYPOINTS, 3), math.nan)
    pairs = [(KEYPOINT_INDEX[n], i) for i, n in enumerate(names) if n in KEYPOINT_INDEX]
    if pairs:
        dst, src = zip(*pairs)
        out[:, list(dst)] = points[:, list(src)]
    return torch.where(out.isfinite().all(-1, keepdim=True), out, math.nan)


def _midpoint(x: torch.Tensor, group: tuple[str, ...]) -> torch.Tensor:
    return x[:, [KEYPOINT_INDEX[n] for n in group]].mean(1)  # NaN unless the whole group is there


def up_axis(points: torch.Tensor, names: Sequence[str], snap_deg: float = 30.0) -> torch.Tensor:
    """The world 'up' (3,) of poses (N, K, 3) given in any right-handed frame (files may be y-up or z-up).

    The mean over frames of the per-frame trunk direction (shoulders - hips, falling back to head - feet),
    which assumes people are mostly upright. Trunks lean, so a result within `snap_deg` of a world axis is
    snapped to it: real files are axis-aligned, and a camera with no roll needs the true vertical.
    """
    x = to_vocabulary(points, names)
    per_frame = x.new_full(x.shape[::2], math.nan)
    for top, bottom in reversed(_UP_PAIRS):  # the first pair a frame has wins
        d = _midpoint(x, top) - _midpoint(x, bottom)
        per_frame = torch.where(d.isfinite().all(-1, keepdim=True), d, per_frame)
    up = (per_frame / per_frame.norm(dim=-1, keepdim=True)).nanmean(0)
    if not bool(up.isfinite().all()) or float(up.norm()) < 1e-6:
        raise ValueError("cannot tell which way is up: no frame has shoulders and hips, or head and feet")
    up = up / up.norm()
    axis = int(up.abs().argmax())
    if float(up[axis].abs()) >= math.cos(math.radians(snap_deg)):
        up = torch.zeros_like(up).index_fill(0, torch.tensor([axis], device=up.device), float(up[axis].sign()))
    return up


def _extent(uv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, 2) width and height in pixels of the masked points."""
    hi = torch.where(mask[..., None], uv, -math.inf).amax(1)
    return hi - torch.where(mask[..., None], uv, math.inf).amin(1)


def box_diagonal(uv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Diagonal of `bbox_from_keypoints`'s box (tight around `mask`, 10% padding) for (N, K, 2): the
    live pipeline's `scale` before its clamp; 0 where nothing is masked."""
    ext = _extent(uv, mask)
    diag = (ext + 0.2 * ext.amax(-1, keepdim=True)).norm(dim=-1)
    return torch.where(mask.any(1), diag, torch.zeros_like(diag))


def _shift_range(
    uv: torch.Tensor, z: torch.Tensor, ok: torch.Tensor, size: float, f: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The camera-frame sideways shifts (N,) that keep every point of one image axis inside [0, size]:
    a shift s moves point i to uv_i + f s / z_i, so each point bounds s linearly. A pixel of margin keeps
    rounding from putting a point that should touch the border just outside it."""
    lo = torch.where(ok, (1 - uv) * z / f[:, None], -math.inf).amax(1)
    hi = torch.where(ok, (size - 1 - uv) * z / f[:, None], math.inf).amin(1)
    return lo, hi


def _look_at(up: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) world -> camera rotations; rows: camera right (x), down (y), forward (z). The camera sits at
    `azimuth` around `up` (0 = the world axis most perpendicular to up, made horizontal) and `elevation`
    above the target, looking at it; with roll 0 the image's down is the world's down."""
    h0 = torch.eye(3, device=up.device, dtype=up.dtype)[int(up.abs().argmin())]
    h0 = h0 - (h0 @ up) * up
    h0 = h0 / h0.norm()
    h90 = torch.linalg.cross(up, h0)
    horizontal = azimuth.cos()[:, None] * h0 + azimuth.sin()[:, None] * h90
    fwd = -(elevation.cos()[:, None] * horizontal + elevation.sin()[:, None] * up)
    down = (fwd @ up)[:, None] * fwd - up
    down = down / down.norm(dim=-1, keepdim=True)
    right = torch.linalg.cross(down, fwd)
    cos, sin = roll.cos()[:, None], roll.sin()[:, None]
    return torch.stack([cos * right + sin * down, cos * down - sin * right, fwd], 1)


def random_views(
    points: torch.Tensor,
    names: Sequence[str],
    config: ProjectionConfig = ProjectionConfig(),
    seed: int = 0,
    up: torch.Tensor | None = None,
) -> SyntheticViews:
    """One random camera per pose. points (N, K, 3) metres in any right-handed world frame sharing one up
    (`up_axis` unless given); names: the K names (non-vocabulary names are ignored, NaN points missing)."""
    c = config
    g = torch.Generator().manual_seed(seed)  # local: callers' global RNG state is left alone
    x = to_vocabulary(points if points.is_floating_point() else points.float(), names)
    n, k, dev, dt = x.shape[0], NUM_KEYPOINTS, x.device, x.dtype
    avail = x.isfinite().all(-1)
    if not bool(avail.any(1).all()):
        raise ValueError("every pose needs at least one vocabulary keypoint")

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(shape or (n,), generator=g, dtype=torch.float64)).to(dev, dt)

    # Every draw, in a fixed order with fixed shapes, so a seed means the same views whatever the config.
    azimuth, elevation = uniform(*c.azimuth_deg).deg2rad(), uniform(*c.elevation_deg).clamp(-89, 89).deg2rad()
    fov, fill, roll = uniform(*c.fov_deg).deg2rad(), uniform(*c.fill), uniform(-c.roll_deg, c.roll_deg).deg2rad()
    offset, truncated = uniform(0, 1, n, 2), uniform(0, 1) < c.truncation
    cut_v, cut_far, cut = uniform(0, 1) < 0.5, uniform(0, 1) < 0.5, uniform(0.05, 0.6)
    dropped, noise = uniform(0, 1, n, k) < c.dropout, torch.randn(n, k, 2, generator=g).to(dev, dt)
    outlier, swap = uniform(0, 1, n, k) < c.outlier_rate, uniform(0, 1, n, k) < 0.5
    outlier_conf = uniform(0.2, 0.6, n, k)
    angle, jump = uniform(0, 2 * math.pi, n, k), uniform(0.1, 0.3, n, k)
    jump = jump[..., None] * torch.stack([angle.cos(), angle.sin()], -1)  # fraction of the person's size

    up = (up_axis(points, names) if up is None else up).to(dev, dt)
    rotation = _look_at(up / up.norm(), azimuth, elevation, roll)
    target = x.nanmean(1)
    rel = torch.einsum("nij,nkj->nki", rotation, x - target[:, None])  # camera axes, origin at the target
    radius = rel.norm(dim=-1).nan_to_num(0).amax(1)
    width, height = c.image_size
    sizes = torch.tensor([width, height], device=dev, dtype=dt)
    focal = height / 2 / (fov / 2).tan()
    fc, center = torch.stack([focal, focal], -1), (sizes / 2).expand(n, 2).clone()

    def at(depth: torch.Tensor) -> torch.Tensor:
        return rel + torch.stack([torch.zeros_like(depth), torch.zeros_like(depth), depth], -1)[:, None]

    # Distance: the person's box fills `fill` of the image along its tighter dimension (so a lying person
    # fits too); a few fixed-point steps undo perspective. Never closer than _MIN_DEPTH to any point.
    depth = focal * 2 * radius / (fill * height) + radius
    for _ in range(5):
        size = (_extent(project(at(depth), fc, center), avail) / sizes).amax(-1).clamp(min=1e-6)
        depth = (depth * size / fill).clamp(min=radius + _MIN_DEPTH)

    # Slide the camera parallel to its image plane (intrinsics untouched): the person lands off-centre by up to
    # `offset` but inside the image, unless truncated: then pushed past one edge by `cut` of its extent.
    uv, z = project(at(depth), fc, center), at(depth)[..., 2]
    ext, shift = _extent(uv, avail), []
    for axis in range(2):
        lo, hi = _shift_range(uv[..., axis], z, avail, float(sizes[axis]), focal)
        reach = c.offset * sizes[axis] * depth / focal
        a, b = torch.maximum(lo, -reach), torch.minimum(hi, reach)
        nearest = torch.where(lo <= hi, torch.zeros_like(lo).clamp(lo, hi), (lo + hi) / 2)
        s = torch.where(a <= b, a + (b - a) * offset[:, axis], nearest)
        push = cut * ext[:, axis] * depth / focal
        s_cut = torch.where(cut_far, hi + push, lo - push)
        shift.append(torch.where(truncated & (cut_v == bool(axis)), s_cut, s))
    translation = torch.stack([*shift, depth], -1) - torch.einsum("nij,nj->ni", rotation, target)
    keypoints3d = torch.einsum("nij,nkj->nki", rotation, x) + translation[:, None]

    # The detector: misses, noise, outliers; nothing reported outside the image.
    uv = project(keypoints3d.nan_to_num(0), fc, center) * avail[..., None]
    visible = avail & (uv >= 0).all(-1) & (uv <= sizes).all(-1) & ~dropped
    person = box_diagonal(uv, avail)[:, None, None]
    seen = uv + c.noise_px * person * noise
    mirror = _MIRROR.to(dev)
    outlier = outlier & visible
    swap = outlier & swap & visible[:, mirror] & (mirror != torch.arange(k, device=dev))
    seen = torch.where(swap[..., None], seen[:, mirror], torch.where(outlier[..., None], seen + person * jump, seen))
    seen = torch.minimum(seen.clamp(min=0), sizes)
    conf = torch.where(outlier, outlier_conf, 0.5 + 0.5 * torch.exp(-noise.square().sum(-1) / 4)) * visible
    keypoints = torch.cat([torch.where(visible[..., None], seen, uv), conf[..., None]], -1)
    scale = box_diagonal(keypoints[..., :2], conf > 0.05).clamp(min=10.0)
    observations = Observations(keypoints=keypoints, focal=fc, center=center, scale=scale)
    return SyntheticViews(observations, rotation, translation, keypoints3d, visible)
