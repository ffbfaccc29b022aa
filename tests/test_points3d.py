"""The detector's own 3D keypoints (MediaPipe's world landmarks): kept in detection sets, used by SMPLify."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.detection.types import PersonKeypoints, bbox_from_keypoints
from bodyfit_cli.evaluation.benchmark import score
from bodyfit_cli.fitting.init import mean_init
from bodyfit_cli.fitting.smplify import SMPLify, SMPLifyConfig
from bodyfit_cli.synthetic import ProjectionConfig, random_views
from bodyfit_cli.training.detections import DetectionRows, DetectionSet
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS


@pytest.fixture(scope="module")
def model() -> BodyModel:
    return BodyModel(load_body_model("default"))


def test_detection_sets_keep_the_detectors_3d_points(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = DetectionRows()
    for i in range(3):
        kp = np.column_stack([rng.uniform(100, 400, (NUM_KEYPOINTS, 2)), np.ones(NUM_KEYPOINTS)])
        world = rng.normal(0, 0.3, (NUM_KEYPOINTS, 3)) if i < 2 else None
        rows.add([PersonKeypoints(kp, bbox_from_keypoints(kp), 0.9, None, world)], 512, 512, f"img{i}.jpg")
    data = rows.build()
    data.save(tmp_path / "d.npz")
    back = DetectionSet.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.points3d[:2], data.points3d[:2])
    assert np.isnan(back.points3d[2]).all()
    obs = back.observations([0, 1])
    assert obs.points3d is not None and obs.points3d.shape == (2, NUM_KEYPOINTS, 3)
    assert back.observations([1, 2]).points3d is None  # not every row has them
    mirrored = back.mirrored()
    left, right = KEYPOINT_INDEX["left_wrist"], KEYPOINT_INDEX["right_wrist"]
    np.testing.assert_allclose(mirrored.points3d[0, left], back.points3d[0, right] * [-1, 1, 1])
    old = {k: v for k, v in np.load(tmp_path / "d.npz").items() if k != "points3d"}
    np.savez(tmp_path / "old.npz", **old)  # a set saved before the detector's 3D points were kept
    assert DetectionSet.load(tmp_path / "old.npz").points3d is None


def test_smplify_uses_the_detectors_3d_points(model: BodyModel) -> None:
    """With noisy but informative 3D points (at another scale, as MediaPipe's person size is its own),
    SMPLify's poses come closer to the truth than from the 2D keypoints alone."""
    gen = torch.Generator().manual_seed(3)
    n = 24
    pose = torch.randn(n, 23, 3, generator=gen) * 0.25
    params = BodyParams(torch.zeros(n, 3), pose, torch.zeros(n, model.num_betas), torch.zeros(n, 3))
    with torch.no_grad():
        points = params.pose(model).keypoints
    views = random_views(points, KEYPOINT_NAMES, ProjectionConfig(), seed=2)
    obs, truth = views.observations, views.keypoints3d
    hips = [KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"]]
    seen = (truth - truth[:, hips].mean(1, keepdim=True)) * 0.9
    seen = seen + 0.03 * torch.randn(seen.shape, generator=gen)
    with_3d = replace(obs, points3d=seen)
    fast = SMPLifyConfig(torso_iters=10, full_iters=30)
    plain = SMPLify(model, config=replace(fast, points3d_weight=0.0))
    smplify = SMPLify(model, config=replace(fast, points3d_weight=0.1))
    start = mean_init(model, obs)
    errors = {}
    for name, fitter, o in (("2d", plain, obs), ("ignored", plain, with_3d), ("3d", smplify, with_3d)):
        with torch.no_grad():
            pred = fitter.fit(o, start).pose(model).keypoints
        errors[name] = float(score(pred, truth, obs)["pa_mpjpe_mm"].mean())
    assert errors["ignored"] == pytest.approx(errors["2d"])
    assert errors["3d"] < 0.8 * errors["2d"]
