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
from bodyfit_cli.pipeline import ImagePipeline, Options
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, LIMB_KEYPOINTS

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
LIMB = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]


def pa_mpjpe_mm(pred: np.ndarray, truth: np.ndarray) -> float:
    aligned = similarity_align(torch.tensor(pred, dtype=torch.float64)[None], torch.tensor(truth, dtype=torch.float64)[None])[0].numpy()
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
    nose_z = got["keypoints3d"]["nose"][2] - np.mean([got["keypoints3d"]["left_ear"][2], got["keypoints3d"]["right_ear"][2]])
    true_nose_z = want["keypoints3d"]["nose"][2] - np.mean([want["keypoints3d"]["left_ear"][2], want["keypoints3d"]["right_ear"][2]])
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
