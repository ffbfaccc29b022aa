"""The rendered samples in samples/ (scripts/make_samples.py).

Fitting tests take each sample's JSON as the truth, so it must agree with its image and with the
body model; and MediaPipe must read the people in the images, so those tests measure the fitting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel, BodyOutput
from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.io.images import read_image
from bodyfit_cli.render import Camera
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, LIMB_KEYPOINTS, NUM_SMPL_JOINTS, indices

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_FILES = sorted(SAMPLES.glob("*.json"))
# Detected limb joints must lie within this share of the person's image height (median).
DETECTION_TOLERANCE = 0.08


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def camera_of(sample: dict) -> Camera:
    width, height = sample["image_size"]
    return Camera(tuple(sample["camera"]["focal"]), tuple(sample["camera"]["center"]), width, height)


def points(named: dict[str, list[float]]) -> np.ndarray:
    """Named points as an array in vocabulary order."""
    return np.array([named[n] for n in KEYPOINT_NAMES])


def posed(model: BodyModel, person: dict, vertices: bool = False) -> BodyOutput:
    """A sample's person: its parameters posed through the body model."""
    params = {k: torch.tensor([person[k]]) for k in ("global_orient", "body_pose", "betas", "translation")}
    with torch.no_grad():
        return model(
            axis_angle_to_matrix(params["global_orient"]),
            axis_angle_to_matrix(params["body_pose"].reshape(1, -1, 3)),
            params["betas"],
            params["translation"],
            vertices=vertices,
        )


@pytest.fixture(scope="module")
def model() -> BodyModel:
    return BodyModel(load_body_model("default"))


@pytest.fixture(scope="module")
def detector() -> Iterator[MediaPipeDetector]:
    with MediaPipeDetector(max_people=4) as found:
        yield found


def test_there_are_samples_with_images() -> None:
    assert len(SAMPLE_FILES) >= 5
    for path in SAMPLE_FILES:
        assert (SAMPLES / load(path)["image"]).is_file()


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_sample_truth_is_consistent(path: Path, model: BodyModel) -> None:
    sample = load(path)
    image = read_image(SAMPLES / sample["image"])
    assert [image.shape[1], image.shape[0]] == sample["image_size"]
    camera = camera_of(sample)
    assert sample["people"]
    for person in sample["people"]:
        assert list(person["keypoints3d"]) == list(KEYPOINT_NAMES) == list(person["keypoints2d"])
        keypoints3d = points(person["keypoints3d"])
        assert (keypoints3d[:, 2] > 2.0).all()
        projected = camera.project(keypoints3d)
        np.testing.assert_allclose(points(person["keypoints2d"]), projected, atol=0.5)
        assert (projected > 0).all() and (projected < [camera.width, camera.height]).all()
        # The parameters, posed through the default model, give the stored geometry.
        assert len(person["body_pose"]) == 3 * (NUM_SMPL_JOINTS - 1) and len(person["betas"]) == 10
        out = posed(model, person)
        np.testing.assert_allclose(out.keypoints[0].numpy(), keypoints3d, atol=1e-3)
        np.testing.assert_allclose(out.joints[0].numpy(), np.array(person["joints3d"]), atol=1e-3)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_mediapipe_finds_everyone_near_the_truth(path: Path, detector: MediaPipeDetector) -> None:
    sample = load(path)
    found = detector.detect(read_image(SAMPLES / sample["image"]))
    limbs = indices(LIMB_KEYPOINTS, KEYPOINT_INDEX)
    matched = []
    for person in sample["people"]:
        truth = points(person["keypoints2d"])
        errors = [np.median(np.linalg.norm(p.keypoints[limbs, :2] - truth[limbs], axis=1)) for p in found]
        assert errors, "nobody detected"
        best = int(np.argmin(errors))
        assert errors[best] < DETECTION_TOLERANCE * np.ptp(truth[:, 1])
        matched.append(best)
    assert len(set(matched)) == len(matched), "two people matched to one detection"
