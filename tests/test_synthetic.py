"""The synthetic projection generator: cameras, detector imperfections, and agreement with the live pipeline."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from bodyfit_cli.detection.types import bbox_from_keypoints
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.synthetic import ProjectionConfig, SyntheticViews, box_diagonal, random_views, up_axis
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, mirror_name

# A standing stick figure, y-up, facing +z, its left side at +x (metres).
STICK = {
    "nose": (0.0, 1.65, 0.08),
    "left_eye": (0.03, 1.68, 0.06),
    "right_eye": (-0.03, 1.68, 0.06),
    "left_ear": (0.07, 1.65, 0.0),
    "right_ear": (-0.07, 1.65, 0.0),
    "left_shoulder": (0.18, 1.45, 0.0),
    "right_shoulder": (-0.18, 1.45, 0.0),
    "left_elbow": (0.2, 1.15, 0.0),
    "right_elbow": (-0.2, 1.15, 0.0),
    "left_wrist": (0.22, 0.9, 0.05),
    "right_wrist": (-0.22, 0.9, 0.05),
    "left_hip": (0.1, 0.95, 0.0),
    "right_hip": (-0.1, 0.95, 0.0),
    "left_knee": (0.1, 0.5, 0.02),
    "right_knee": (-0.1, 0.5, 0.02),
    "left_ankle": (0.1, 0.08, 0.0),
    "right_ankle": (-0.1, 0.08, 0.0),
    "left_heel": (0.1, 0.03, -0.05),
    "right_heel": (-0.1, 0.03, -0.05),
    "left_big_toe": (0.12, 0.0, 0.15),
    "right_big_toe": (-0.12, 0.0, 0.15),
}
Y_TO_Z_UP = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +90 deg about x: y -> z
CLEAN = ProjectionConfig(noise_px=0.0, outlier_rate=0.0, dropout=0.0, truncation=0.0)
NAMES = list(KEYPOINT_NAMES)
IDX = KEYPOINT_INDEX


def poses(n: int, seed: int = 0, z_up: bool = False) -> torch.Tensor:
    """n varied upright figures (y-up unless z_up): jittered joints, any heading, anywhere on the floor."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([STICK[name] for name in KEYPOINT_NAMES])
    pts = base + 0.03 * torch.randn(n, len(NAMES), 3, generator=g)
    heading = 2 * math.pi * torch.rand(n, generator=g)
    cos, sin, zero, one = heading.cos(), heading.sin(), torch.zeros(n), torch.ones(n)
    yaw = torch.stack([cos, zero, sin, zero, one, zero, -sin, zero, cos], -1).view(n, 3, 3)
    pts = torch.einsum("nij,nkj->nki", yaw, pts) + torch.tensor([1.0, 0.0, 1.0]) * 5 * torch.randn(n, 1, 3, generator=g)
    return pts @ Y_TO_Z_UP.T if z_up else pts


def uv(views: SyntheticViews, name: str) -> torch.Tensor:
    return views.observations.keypoints[:, IDX[name], :2]


def inside(points: torch.Tensor, config: ProjectionConfig) -> torch.Tensor:
    w, h = config.image_size
    return (points[..., 0] >= 0) & (points[..., 0] <= w) & (points[..., 1] >= 0) & (points[..., 1] <= h)


def test_same_seed_same_views_and_global_rng_untouched() -> None:
    pts = poses(64)
    state = torch.get_rng_state()
    a, b, c = random_views(pts, NAMES, seed=3), random_views(pts, NAMES, seed=3), random_views(pts, NAMES, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    for field in ("rotation", "translation", "keypoints3d", "visible"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert torch.equal(a.observations.keypoints, b.observations.keypoints)
    assert torch.equal(a.observations.scale, b.observations.scale)
    assert not torch.allclose(a.rotation, c.rotation)
    assert not torch.allclose(a.observations.keypoints, c.observations.keypoints)


@pytest.mark.parametrize("z_up", [False, True])
def test_clean_views_are_exact_projections_inside_the_image(z_up: bool) -> None:
    pts = poses(500, z_up=z_up)
    views = random_views(pts, NAMES, CLEAN, seed=1)
    obs, n = views.observations, pts.shape[0]
    w, h = CLEAN.image_size
    assert obs.keypoints.shape == (n, 21, 3) and obs.focal.shape == (n, 2) and obs.scale.shape == (n,)
    assert torch.allclose(obs.center, torch.tensor([w / 2, h / 2]).expand(n, 2))
    assert views.visible.all() and (obs.keypoints[..., 2] >= 0.5).all() and (obs.keypoints[..., 2] <= 1).all()
    assert inside(obs.keypoints[..., :2], CLEAN).all()
    assert (views.keypoints3d[..., 2] > 0.3).all()
    exact = project(views.keypoints3d, obs.focal, obs.center)
    assert torch.allclose(obs.keypoints[..., :2], exact, atol=1e-3)
    r = views.rotation
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3).expand(n, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(n), atol=1e-5)
    moved = torch.einsum("nij,nkj->nki", r, pts) + views.translation[:, None]
    assert torch.allclose(moved, views.keypoints3d, atol=1e-4)
    # Focal lengths span the configured vertical field of view.
    fov = torch.rad2deg(2 * torch.atan(h / 2 / obs.focal[:, 1]))
    assert fov.min() >= CLEAN.fov_deg[0] - 1e-3 and fov.max() <= CLEAN.fov_deg[1] + 1e-3
    assert fov.max() - fov.min() > 0.8 * (CLEAN.fov_deg[1] - CLEAN.fov_deg[0])


@pytest.mark.parametrize("z_up", [False, True])
def test_camera_is_not_rolled_and_the_person_stands_upright(z_up: bool) -> None:
    pts = poses(400, seed=2, z_up=z_up)
    up = up_axis(pts, NAMES)
    assert torch.equal(up, torch.tensor([0.0, 0.0, 1.0]) if z_up else torch.tensor([0.0, 1.0, 0.0]))
    views = random_views(pts, NAMES, ProjectionConfig(), seed=5)
    # No roll: the camera's x axis is horizontal, and world up points up the image (-y).
    assert torch.allclose(views.rotation[:, 0] @ up, torch.zeros(400), atol=1e-6)
    assert ((views.rotation[:, 1] @ up) < 0).all()
    both = views.visible[:, IDX["nose"]] & views.visible[:, IDX["left_ankle"]]
    assert both.sum() > 200
    assert (uv(views, "nose")[both, 1] < uv(views, "left_ankle")[both, 1]).all()
    clean = random_views(pts, NAMES, CLEAN, seed=5)
    shoulders = (uv(clean, "left_shoulder")[:, 1] + uv(clean, "right_shoulder")[:, 1]) / 2
    ankles = (uv(clean, "left_ankle")[:, 1] + uv(clean, "right_ankle")[:, 1]) / 2
    assert (shoulders < ankles).all()
    # Positive elevation looks down on the person: from above the target when not slid off-centre.
    elevation = torch.rad2deg(torch.asin(-clean.rotation[:, 2] @ up))
    centred = random_views(pts, NAMES, replace(CLEAN, offset=0.0), seed=5)
    camera = -torch.einsum("nji,nj->ni", centred.rotation, centred.translation)
    above = camera - pts.mean(1)
    # (a few cameras slide to keep a tall person inside the image: they look past the centre)
    aimed = (torch.einsum("nij,nj->ni", centred.rotation, pts.mean(1)) + centred.translation)[:, :2].norm(dim=-1) < 1e-4
    assert aimed.float().mean() > 0.9
    assert torch.allclose(
        torch.rad2deg(torch.asin(above @ up / above.norm(dim=-1)))[aimed], elevation[aimed], atol=0.05
    )
    assert elevation.min() >= CLEAN.elevation_deg[0] - 0.5 and elevation.max() <= CLEAN.elevation_deg[1] + 0.5
    assert elevation.min() < 0 < elevation.max()


def test_up_axis_in_any_frame_and_snapping() -> None:
    pts = poses(50, seed=3)
    tilt = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.2, 0.0], [0.2, 0.0, 0.0], [0.0, 0.0, 0.0]]))  # ~11 deg
    assert torch.equal(up_axis(pts @ tilt.T, NAMES), torch.tensor([0.0, 1.0, 0.0]))
    oblique = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.7, 0.3], [0.7, 0.0, -0.5], [-0.3, 0.5, 0.0]]))
    expected = oblique @ torch.tensor([0.0, 1.0, 0.0])
    assert torch.allclose(up_axis(pts @ oblique.T, NAMES), expected, atol=0.05)
    # Without shoulders and hips the head and feet still tell.
    keep = [n for n in NAMES if "shoulder" not in n and "hip" not in n]
    assert torch.equal(up_axis(pts[:, [IDX[n] for n in keep]] @ Y_TO_Z_UP.T, keep), torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="up"):
        up_axis(pts[:, [IDX["left_wrist"], IDX["left_knee"]]], ["left_wrist", "left_knee"])
    # An oblique world works when its up is given, and the camera is still not rolled.
    views = random_views(pts @ oblique.T, NAMES, CLEAN, seed=0, up=expected)
    assert torch.allclose(views.rotation[:, 0] @ expected, torch.zeros(50), atol=1e-5)
    assert (uv(views, "nose")[:, 1] < uv(views, "left_ankle")[:, 1]).all()


def test_person_fills_the_configured_fraction_of_the_image() -> None:
    config = replace(CLEAN, offset=0.0)
    views = random_views(poses(500, seed=4), NAMES, config, seed=6)
    points = views.observations.keypoints[..., :2]
    w, h = config.image_size
    extent = points.amax(1) - points.amin(1)
    fill = torch.maximum(extent[:, 0] / w, extent[:, 1] / h)
    lo, hi = config.fill
    assert fill.min() >= lo - 0.005 and fill.max() <= hi + 0.005
    assert fill.min() < lo + 0.05 and fill.max() > hi - 0.05
    # Standing people: it is the height that fills the image, and with no offset they are centred.
    assert torch.allclose(fill, extent[:, 1] / h)
    assert ((points.mean(1) - torch.tensor([w / 2, h / 2])).abs() < 0.1 * h).all()


def test_offset_moves_people_off_centre_but_keeps_them_inside() -> None:
    views = random_views(poses(500, seed=4), NAMES, replace(CLEAN, offset=0.3), seed=6)
    centre = views.observations.keypoints[..., :2].mean(1) - torch.tensor([640.0, 480.0])
    assert centre[:, 0].abs().max() > 200 and centre[:, 1].abs().max() > 30
    assert inside(views.observations.keypoints[..., :2], CLEAN).all()


def test_cameras_go_all_round_the_person() -> None:
    views = random_views(poses(1000, seed=5), NAMES, CLEAN, seed=7)
    k = views.keypoints3d
    across = k[:, IDX["left_shoulder"]] - k[:, IDX["right_shoulder"]]
    up_cam = k[:, IDX["left_shoulder"]] + k[:, IDX["right_shoulder"]] - k[:, IDX["left_hip"]] - k[:, IDX["right_hip"]]
    facing = torch.linalg.cross(across, up_cam)
    front = (facing[:, 2] < 0).float().mean()  # facing the camera (against its forward axis)
    assert 0.4 < front < 0.6
    # Seen from the front, the person's left shoulder is on the image's right.
    seen_front = facing[:, 2] < -0.1
    assert (uv(views, "left_shoulder")[seen_front, 0] > uv(views, "right_shoulder")[seen_front, 0]).all()


def test_dropout_rate_and_confidence_zero_means_not_visible() -> None:
    views = random_views(poses(2000, seed=6), NAMES, replace(CLEAN, dropout=0.2), seed=8)
    conf = views.observations.keypoints[..., 2]
    assert torch.equal(views.visible, conf > 0)
    assert abs((~views.visible).float().mean().item() - 0.2) < 0.01
    assert (conf[views.visible] >= 0.5).all()


def test_truncation_cuts_part_of_the_body_off_at_an_edge() -> None:
    config = replace(CLEAN, truncation=1.0)
    views = random_views(poses(500, seed=7), NAMES, config, seed=9)
    obs = views.observations.keypoints
    exact = project(views.keypoints3d, views.observations.focal, views.observations.center)
    out = ~inside(exact, config)
    assert out.any(1).all()  # every view loses something...
    assert (~out).sum(1).min() >= 1 and (~out).float().mean() > 0.4  # ...but not everything
    assert (obs[..., 2][out] == 0).all() and not views.visible[out].any()
    assert torch.allclose(obs[..., :2][out], exact[out], atol=1e-3)  # unseen points keep their true projection
    assert (views.keypoints3d[..., 2] > 0).all()
    # Cuts happen on all four sides.
    mean_out = torch.where(out[..., None], exact, torch.nan).nanmean(1)
    assert (mean_out[:, 0] < 0).any() and (mean_out[:, 0] > 1280).any()
    assert (mean_out[:, 1] < 0).any() and (mean_out[:, 1] > 960).any()
    default = random_views(poses(2000, seed=7), NAMES, replace(CLEAN, truncation=0.15), seed=9)
    cut = (~inside(project(default.keypoints3d, default.observations.focal, default.observations.center), config)).any(
        1
    )
    assert abs(cut.float().mean().item() - 0.15) < 0.03


def test_unknown_names_are_ignored_and_missing_names_are_unseen() -> None:
    pts = poses(100, seed=8)
    order = torch.randperm(len(NAMES), generator=torch.Generator().manual_seed(0)).tolist()
    missing = {"left_ear", "right_wrist"}
    names = [NAMES[i] for i in order if NAMES[i] not in missing] + ["pelvis", "spine3"]
    shuffled = torch.cat([pts[:, [i for i in order if NAMES[i] not in missing]], torch.randn(100, 2, 3)], 1)
    views = random_views(shuffled, names, seed=2)
    reference = random_views(
        pts[:, [IDX[n] for n in NAMES if n not in missing]], [n for n in NAMES if n not in missing], seed=2
    )
    assert torch.equal(views.observations.keypoints, reference.observations.keypoints)
    assert torch.allclose(views.keypoints3d, reference.keypoints3d, equal_nan=True)
    for name in missing:
        assert torch.isnan(views.keypoints3d[:, IDX[name]]).all()
        assert (views.observations.keypoints[:, IDX[name]] == 0).all()  # finite: losses multiply by confidence
        assert not views.visible[:, IDX[name]].any()
    assert views.keypoints3d[:, IDX["nose"]].isfinite().all()
    # NaN points in the input count as missing too.
    holes = pts.clone()
    holes[:10, IDX["nose"]] = torch.nan
    nose = random_views(holes, NAMES, seed=2).observations.keypoints[:, IDX["nose"]]
    assert (nose[:10] == 0).all() and nose.isfinite().all()


def test_scale_is_the_live_pipelines_box_diagonal() -> None:
    views = random_views(poses(300, seed=9), NAMES, ProjectionConfig(truncation=0.5, outlier_rate=0.2), seed=10)
    for kp, scale in zip(views.observations.keypoints.numpy(), views.observations.scale.tolist()):
        x0, y0, x1, y1 = bbox_from_keypoints(kp)
        assert scale == pytest.approx(max(math.hypot(x1 - x0, y1 - y0), 10.0), rel=1e-5)
    mask = torch.zeros(1, 21, dtype=torch.bool)
    assert box_diagonal(torch.zeros(1, 21, 2), mask).item() == 0.0


def test_noise_scales_with_the_persons_size_and_lowers_confidence() -> None:
    pts = poses(1000, seed=10)
    errors, scales = [], []
    for fill in ((0.3, 0.35), (0.8, 0.9)):
        config = replace(CLEAN, noise_px=0.02, offset=0.0, fill=fill)
        views = random_views(pts, NAMES, config, seed=11)
        exact = project(views.keypoints3d, views.observations.focal, views.observations.center)
        error = (views.observations.keypoints[..., :2] - exact).norm(dim=-1)
        errors.append(error.mean().item())
        scales.append(views.observations.scale.mean().item())
        relative = (error / views.observations.scale[:, None]).mean().item()
        assert relative == pytest.approx(0.02 * math.sqrt(math.pi / 2), rel=0.1)  # mean of a 2D Gaussian's length
        conf = views.observations.keypoints[..., 2].flatten()
        assert np.corrcoef(error.flatten().numpy(), conf.numpy())[0, 1] < -0.5
    assert errors[1] / errors[0] == pytest.approx(scales[1] / scales[0], rel=0.1)
    assert scales[1] > 2 * scales[0]


def test_outliers_are_far_with_low_confidence() -> None:
    config = replace(CLEAN, outlier_rate=1.0)
    views = random_views(poses(300, seed=11), NAMES, config, seed=12)
    obs, k3 = views.observations, views.keypoints3d
    exact = project(k3, obs.focal, obs.center)
    conf = obs.keypoints[..., 2]
    assert (conf >= 0.2).all() and (conf <= 0.6).all()
    moved = (obs.keypoints[..., :2] - exact).norm(dim=-1) / obs.scale[:, None]
    mirrored = torch.tensor([IDX[mirror_name(n)] for n in NAMES])
    swapped = torch.isclose(obs.keypoints[..., :2], exact[:, mirrored], atol=1e-3).all(-1) & (
        mirrored != torch.arange(21)
    )
    assert swapped.float().mean() > 0.15  # about half of the sided points take their mirror's place
    jumped = ~swapped
    # Jumps of 10-30% of the person's size (measured against the final box, and clipped at the image edge).
    assert (moved[jumped] > 0.03).float().mean() > 0.95 and moved[jumped].max() < 0.5
