"""End to end on the project's rendered samples: detection -> fit -> 3D error against the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.fitting.init import mean_init
from bodyfit_cli.geometry.procrustes import similarity_align
from bodyfit_cli.io.images import read_image
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.options import Options
from bodyfit_cli.pipeline import ImagePipeline
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, LIMB_KEYPOINTS

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
LIMB = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]


def pa_mpjpe_mm(pred: np.ndarray, truth: np.ndarray) -> float:
    aligned = similarity_align(
        torch.tensor(pred, dtype=torch.float64)[None], torch.tensor(truth, dtype=torch.float64)[None]
    )[0].numpy()
    return float(np.linalg.norm(aligned - truth, axis=1).mean() * 1000)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return ImagePipeline(Options(out=tmp_path_factory.mktemp("out"), render=False))


@pytest.mark.parametrize("name", ["standing_front", "waving_back"])
def test_fit_recovers_the_rendered_body(pipeline, name):
    truth = json.loads((SAMPLES / f"{name}.json").read_text())
    result = pipeline.run(InputItem(SAMPLES / f"{name}.jpg", Path(f"{name}.jpg")))
    assert len(result["people"]) == len(truth["people"]) == 1
    got, want = result["people"][0], truth["people"][0]
    pred = np.array([got["keypoints3d"][n] for n in LIMB_KEYPOINTS])
    true = np.array([want["keypoints3d"][n] for n in LIMB_KEYPOINTS])
    err = pa_mpjpe_mm(pred, true)
    assert err < 80.0, err
    assert got["reprojection_error_px"] < 10.0
    # Depth from a single view: within 15% of the true distance.
    assert abs(got["translation"][2] - want["translation"][2]) < 0.15 * want["translation"][2]
    # Seen from the back, the fit must be turned around too: the nose points away from the camera.
    nose_z = got["keypoints3d"]["nose"][2] - np.mean(
        [got["keypoints3d"]["left_ear"][2], got["keypoints3d"]["right_ear"][2]]
    )
    true_nose_z = want["keypoints3d"]["nose"][2] - np.mean(
        [want["keypoints3d"]["left_ear"][2], want["keypoints3d"]["right_ear"][2]]
    )
    assert np.sign(nose_z) == np.sign(true_nose_z)


def test_refinement_beats_its_initialisation(pipeline):
    truth = json.loads((SAMPLES / "walking_30deg.json").read_text())
    image = read_image(SAMPLES / "walking_30deg.jpg")
    people = pipeline.detect(image, InputItem(SAMPLES / "walking_30deg.jpg", Path("walking_30deg.jpg")))
    h, w = image.shape[:2]
    obs = pipeline.observations(people, w, h)
    init = mean_init(pipeline.model, obs)
    with torch.no_grad():
        start = init.pose(pipeline.model).keypoints[0, LIMB].numpy()
    fitted = pipeline.fit(people, w, h).body.keypoints[0, LIMB].numpy()
    true = np.array([truth["people"][0]["keypoints3d"][n] for n in LIMB_KEYPOINTS])
    assert pa_mpjpe_mm(fitted, true) < 0.7 * pa_mpjpe_mm(start, true)


def test_a_large_photo_is_fitted_in_its_own_pixels_and_drawn_at_a_bounded_size(tmp_path):
    """The sample photo upscaled 7.5x (4800x6000): detection runs on a shrunk copy, yet keypoints, box and
    fit are those of the small photo in the large one's pixels, and the overlay is drawn at OVERLAY_MAX_SIDE
    with the mesh where it is on the small photo's overlay."""
    import cv2

    from bodyfit_cli.pipeline import OVERLAY_MAX_SIDE

    factor = 7.5
    small = read_image(SAMPLES / "standing_front.jpg")
    big_path = tmp_path / "big.jpg"
    big = cv2.resize(small, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    assert cv2.imwrite(str(big_path), big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    pipe = ImagePipeline(Options(out=tmp_path / "out", render=True))
    results = {
        name: pipe.run(InputItem(path, Path(path.name)))
        for name, path in (("small", SAMPLES / "standing_front.jpg"), ("big", big_path))
    }
    assert results["big"]["image_size"] == [4800, 6000]
    [want], [got] = results["small"]["people"], results["big"]["people"]
    uv_small = np.array([want["keypoints2d"][n] for n in LIMB_KEYPOINTS])
    uv_big = np.array([got["keypoints2d"][n] for n in LIMB_KEYPOINTS])
    assert np.median(np.linalg.norm(uv_big[:, :2] / factor - uv_small[:, :2], axis=1)) < 2.0
    np.testing.assert_allclose(np.array(got["bbox"]) / factor, want["bbox"], atol=3.0)
    # The camera scales with the photo (focal: its diagonal), so the 3D fit is the same body in the same place.
    assert got["camera"]["focal"][0] == pytest.approx(factor * want["camera"]["focal"][0], rel=1e-6)
    joints_big, joints_small = np.array(got["joints3d"]), np.array(want["joints3d"])
    assert np.linalg.norm(joints_big - joints_small, axis=1).mean() < 0.05  # metres
    assert got["reprojection_error_px"] < factor * max(want["reprojection_error_px"], 2.0) * 1.5

    overlays = {
        name: read_image(tmp_path / "out" / f"{stem}_overlay.png")
        for name, stem in (("small", "standing_front"), ("big", "big"))
    }
    w = round(4800 * OVERLAY_MAX_SIDE / 6000)
    assert overlays["big"].shape == (OVERLAY_MAX_SIDE, 2 * w, 3)  # photo and side view, 4096 high, not 6000
    # Where the mesh covers the photo, on the photo panel: the same region, at either size.
    shrunk_photo = cv2.resize(big, (w, OVERLAY_MAX_SIDE), interpolation=cv2.INTER_AREA)
    covered_big = np.abs(overlays["big"][:, :w].astype(int) - shrunk_photo).max(axis=2) > 25
    covered_small = np.abs(overlays["small"][:, :640].astype(int) - small).max(axis=2) > 25
    covered_big = cv2.resize(covered_big.astype(np.uint8), (640, 800), interpolation=cv2.INTER_AREA) > 0
    iou = (covered_big & covered_small).sum() / (covered_big | covered_small).sum()
    assert covered_small.mean() > 0.05 and iou > 0.8, iou
