"""Neural descent (`--method hund`): the soft silhouette, synthetic masks, the recurrent stages, the
self-supervised loss and training with and without truth."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.evaluation.benchmark import score
from bodyfit_cli.fitting.init import MeanInit
from bodyfit_cli.fitting.priors import load_prior
from bodyfit_cli.fitting.registry import make_backend, make_init
from bodyfit_cli.fitting.silhouette import Silhouettes, has_mask, silhouette_loss, surface_ids
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.learned.hund.fit import (
    BODY3D_GAIN,
    TURNING_JOINTS,
    NeuralDescentFitter,
    alignment,
    descend,
    evidence,
    limb_turns,
    segment_turns,
    segments,
)
from bodyfit_cli.learned.hund.network import NeuralDescent
from bodyfit_cli.learned.lgd import fit as lgd_module
from bodyfit_cli.learned.lgd.fit import LearnedGradientDescent
from bodyfit_cli.learned.lgd.network import UpdateNetwork
from bodyfit_cli.networks import state
from bodyfit_cli.networks.weights import read_network_file, weights_file
from bodyfit_cli.training.config import NetworkConfig
from bodyfit_cli.training.detections import DetectionSet
from bodyfit_cli.training.objectives import unlabelled_loss
from bodyfit_cli.training.pose_data import PoseDataset
from bodyfit_cli.training.views import ViewSampler
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, NUM_KEYPOINTS, SEGMENTS
from tests.test_learned import toy_dataset, train, write_toy_data


@pytest.fixture(scope="module")
def model() -> BodyModel:
    return BodyModel(load_body_model("default"))


@pytest.fixture(scope="module")
def sampler(model: BodyModel) -> ViewSampler:
    return ViewSampler(model, toy_dataset(), masks=1.0)


@pytest.fixture(scope="module")
def silhouettes(model: BodyModel) -> Silhouettes:
    return Silhouettes(model)


def test_surface_points_are_distinct_and_spread_over_the_body(model: BodyModel) -> None:
    ids = surface_ids(model, 200)
    assert torch.equal(ids, surface_ids(model, 200)) and len(ids.unique()) == 200
    v = model.v_template[ids]
    nearest = torch.cdist(v, v).fill_diagonal_(1e9).amin(1)
    # Even spacing: no two points much closer than the typical gap (random vertices would cluster on the face).
    assert float(nearest.min()) > 0.3 * float(nearest.median())


def test_the_silhouette_matches_the_body_mask_and_not_a_shifted_one(
    model: BodyModel, sampler: ViewSampler, silhouettes: Silhouettes
) -> None:
    batch = sampler.sample(16, seed=2)
    assert bool(has_mask(batch.obs.masks).all())

    def loss(x: torch.Tensor) -> torch.Tensor:
        body = state.pose(model, state.decode(x, batch.box), points=silhouettes.points)
        return silhouette_loss(silhouettes.render(body.points, batch.obs, batch.box), batch.obs.masks)

    shifted = batch.state.clone()
    shifted[:, -3] += 0.15  # a sixth of the box to the side
    right, wrong = loss(batch.state), loss(shifted)
    assert float(right.max()) < 0.05 and bool((wrong > 2 * right).all())
    # Differentiable: a step down the gradient from the shifted body moves it back.
    x = shifted.requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(x).sum(), x)
    assert bool((grad[:, -3] > 0).all())


def test_synthetic_masks_stop_at_the_image_edge_and_come_at_the_asked_rate(model: BodyModel) -> None:
    sampler = ViewSampler(model, toy_dataset(), masks=0.5)
    batch = sampler.sample(200, seed=4)
    share = float(has_mask(batch.obs.masks).float().mean())
    assert 0.4 < share < 0.6
    # Windows reaching past the image: no mask pixel lies outside it, beyond the pixel the edge cuts and
    # the one the blur spreads into.
    size = batch.obs.masks.shape[-1]
    offsets = (torch.arange(size) + 0.5 - size / 2) / size
    xs = batch.box.center[:, None, 0] + offsets * batch.box.size[:, None]
    margin = 2 * batch.box.size[:, None] / size
    outside = (xs < -margin) | (xs > 2 * batch.obs.center[:, None, 0] + margin)
    assert bool(outside.any())
    assert float((batch.obs.masks.amax(1) * outside).max()) == 0.0


def test_untrained_stages_stay_put_and_read_their_own_misalignment(
    model: BodyModel, sampler: ViewSampler, silhouettes: Silhouettes
) -> None:
    batch = sampler.sample(8, seed=5)
    net = NeuralDescent(model.num_betas, stages=3, hidden=32, context=16)
    x0 = state.encode(model, MeanInit(model)(batch.obs), batch.box)
    states = descend(net, model, silhouettes, batch.obs, x0)
    assert len(states) == 3 and all(torch.allclose(x, x0) for x in states)
    good = alignment(model, silhouettes, batch.state, evidence(model, batch.obs))
    bad = alignment(model, silhouettes, x0, evidence(model, batch.obs))
    assert bool((good.reprojection < bad.reprojection).all()) and bool((good.silhouette < bad.silhouette).all())


def test_stages_with_body3d_read_the_pelvis_relative_body_of_the_current_state(
    model: BodyModel, sampler: ViewSampler, silhouettes: Silhouettes
) -> None:
    batch = sampler.sample(4, seed=6)
    plain = alignment(model, silhouettes, batch.state, evidence(model, batch.obs))
    a = alignment(model, silhouettes, batch.state, evidence(model, batch.obs), body3d=True)
    assert torch.equal(a.inputs[:, : plain.inputs.shape[1]], plain.inputs)
    points = a.inputs[:, plain.inputs.shape[1] :].reshape(4, -1, 3) / BODY3D_GAIN
    truth = torch.cat([batch.keypoints, batch.joints], 1) - batch.joints[:, :1]
    assert torch.allclose(points, truth, atol=1e-4)
    net = NeuralDescent(model.num_betas, stages=2, hidden=32, context=16, body3d=True)
    with torch.no_grad():
        net.head[-1].bias.fill_(0.01)
        moved = descend(net, model, silhouettes, batch.obs, batch.state)[-1]
    assert torch.allclose(moved, batch.state + 0.02, atol=1e-5)  # the wider input fits; each stage adds the bias
    # Weight files from before the option build a network without it.
    assert not NeuralDescent(model.num_betas, stages=2, hidden=32, context=16).body3d


def test_segment_turns_say_how_far_each_limb_must_turn_and_stretch() -> None:
    uv = torch.rand(1, NUM_KEYPOINTS, 2) * 100
    elbow, wrist = KEYPOINT_INDEX["left_elbow"], KEYPOINT_INDEX["left_wrist"]
    detected = uv.clone()
    angle = math.radians(30)
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    detected[0, wrist] = uv[0, elbow] + 1.5 * rot @ (uv[0, wrist] - uv[0, elbow])  # turned 30 degrees, 1.5x as long
    seen = torch.ones(1, NUM_KEYPOINTS, 1)
    turns = segment_turns(uv, segments(detected, seen)).reshape(len(SEGMENTS), 3)
    forearm = SEGMENTS.index(("left_elbow", "left_wrist"))
    assert torch.allclose(turns[forearm], torch.tensor([0.5, 1 - math.cos(angle), math.log(1.5)]), atol=1e-4)
    others = torch.ones(len(SEGMENTS), dtype=torch.bool)
    others[forearm] = False
    assert turns[others].abs().max() < 1e-4  # no other segment has the wrist as an end
    seen[0, wrist] = 0.0  # an undetected end says nothing
    assert segment_turns(uv, segments(detected, seen)).abs().max() < 1e-4


def test_limb_turns_lay_each_segment_onto_the_detected_one(model: BodyModel, sampler: ViewSampler) -> None:
    batch = sampler.sample(8, seed=7)
    ev = evidence(model, batch.obs)
    truth = state.decode(batch.state, batch.box)
    wrong = truth.rotations @ axis_angle_to_matrix(
        0.25 * torch.randn(8, 24, 3, generator=torch.Generator().manual_seed(1))
    )

    def misalignment(rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per segment (B, S): the image angle to the detected segment, the log length ratio; and the turns."""
        sk = model.skeleton(rotations, truth.betas)
        body = state.pose(model, state.Decoded(rotations, truth.betas, truth.pelvis), skeleton=sk)
        turns2d = segment_turns(project(body.keypoints, batch.obs.focal, batch.obs.center), ev.segments)
        turns = limb_turns(body.keypoints, turns2d, sk, ev.frames, ev.segments.seen).unflatten(1, (-1, 3))
        sin, one_minus_cos, stretch = turns2d.unflatten(1, (-1, 3)).unbind(-1)
        return torch.atan2(sin, 1 - one_minus_cos).abs(), stretch.abs(), turns

    angle, stretch, turns = misalignment(wrong)
    for s, joint in enumerate(TURNING_JOINTS):  # turn one joint at a time, as its segment asks
        turned = wrong.clone()
        turned[:, joint] = axis_angle_to_matrix(turns[:, s]) @ turned[:, joint]
        angle_after, stretch_after, _ = misalignment(turned)
        # A limb turns about its first end, the shoulder and hip lines as a whole: the turn is exact to first
        # order. The lower spine also moves the torso's sides, but about a point away from their ends.
        side = SEGMENTS[s][1].endswith("_hip") and SEGMENTS[s][0].endswith("_shoulder")
        assert angle_after[:, s].mean() < (0.7 if side else 0.4) * angle[:, s].mean(), SEGMENTS[s]
        assert stretch_after[:, s].mean() < stretch[:, s].mean(), SEGMENTS[s]
    ev.segments.seen[:, 3] = 0  # an undetected segment asks for nothing
    assert misalignment(wrong)[2][:, 3].abs().max() == 0 and misalignment(wrong)[2][:, 2].abs().max() > 0
    a = alignment(model, Silhouettes(model), batch.state, ev, body3d=True, turns=True)
    assert (
        a.inputs.shape[1]
        == alignment(model, Silhouettes(model), batch.state, ev, body3d=True).inputs.shape[1] + turns[0].numel()
    )


def test_hund_needs_no_gradients_at_test_time_where_lgd_computes_one(
    model: BodyModel, sampler: ViewSampler, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = sampler.sample(4, seed=6)
    init = MeanInit(model)(batch.obs)
    gradients: list[int] = []
    gradient = lgd_module.keypoints_with_gradient
    monkeypatch.setattr(lgd_module, "keypoints_with_gradient", lambda *a: gradients.append(1) or gradient(*a))
    torch.manual_seed(0)
    hund = NeuralDescentFitter(model, net=NeuralDescent(model.num_betas, stages=2, hidden=32, context=16))
    lgd = LearnedGradientDescent.__new__(LearnedGradientDescent)
    lgd.model, lgd.net = model, UpdateNetwork(model.num_betas, steps=2, hidden=16)
    with torch.inference_mode():  # no autograd at all: LGD's gradient is in closed form
        fitted = hund.fit(batch.obs, init)
        assert fitted.body_pose.shape == (4, 23, 3)
        assert gradients == []  # hund reads loss values and misalignments only
        lgd.fit(batch.obs, init)
        assert gradients == [1, 1]  # one gradient per LGD step


def test_the_unlabelled_loss_prefers_the_true_body(model: BodyModel, silhouettes: Silhouettes) -> None:
    mild = toy_dataset()
    mild.body_pose *= 0.25  # the toy poses' random twists at every joint are beyond what the pose prior allows
    batch = ViewSampler(model, mild, masks=1.0).sample(16, seed=7)
    prior = load_prior("gmm")
    truth, _ = unlabelled_loss(model, silhouettes, prior, batch.state, batch.obs)
    mean = state.encode(model, MeanInit(model)(batch.obs), batch.box)
    start, _ = unlabelled_loss(model, silhouettes, prior, mean, batch.obs)
    assert float(truth.mean()) < 0.5 * float(start.mean())


def detection_set(sampler: ViewSampler, n: int, seed: int) -> DetectionSet:
    """Synthetic people stored as a detection set, as `bodyfit train detect` stores detected ones."""
    obs = sampler.sample(n, seed).obs
    return DetectionSet(
        keypoints=obs.keypoints.numpy(),
        focal=obs.focal[:, 0].numpy(),
        image_size=(2 * obs.center).int().numpy(),
        masks=(obs.masks.numpy() * 255).round().astype(np.uint8),
        has_mask=np.ones(n, bool),
        source=np.array(["synthetic"] * n),
        frame=np.arange(n, dtype=np.int32),
    )


@pytest.mark.parametrize("kind", ["hund", "lgd"])
def test_training_with_and_without_truth_resumes_exactly_and_records_its_data(
    kind: str, model: BodyModel, sampler: ViewSampler, tmp_path: Path
) -> None:
    data = write_toy_data(tmp_path / "poses.npz")
    unlabelled = tmp_path / "people.npz"
    detection_set(sampler, 24, seed=8).save(unlabelled)
    cfg = NetworkConfig(
        kind=kind,
        steps=4,
        batch=8,
        hidden=32,
        stages=2,
        lgd_steps=2,
        meta_loss="last",
        unlabelled=[str(unlabelled)],
        checkpoint_every=2,
        validation_views=16,
    )
    logs: list[dict] = []
    torch.set_num_threads(1)
    train(cfg, model, data, tmp_path / "a.pt", tmp_path / "a.ckpt", False, lambda s, n, log: logs.append(log))
    assert "self_reprojection" in logs[1] and "rotations" in logs[0]  # every second batch is self-supervised
    train(replace(cfg, steps=2), model, data, tmp_path / "b.pt", tmp_path / "b.ckpt", False)
    train(cfg, model, data, tmp_path / "b.pt", tmp_path / "b.ckpt", True)
    a, b = read_network_file(tmp_path / "a.pt"), read_network_file(tmp_path / "b.pt")
    for key, value in a["state_dict"].items():
        assert torch.allclose(value, b["state_dict"][key], atol=1e-6), key
    assert a["kind"] == kind and a["training"]["meta_loss"] == "last"
    assert a["manifest"]["unlabelled_people"] == 24 and str(unlabelled) in a["manifest"]["unlabelled"]


POSES = Path(__file__).resolve().parents[1] / "data" / "poses.npz"


@pytest.mark.skipif(
    not (
        weights_file("hund", "default").is_file() and weights_file("regressor", "default").is_file() and POSES.is_file()
    ),
    reason="needs the shipped hund and regressor weights and the pose dataset (bodyfit train data)",
)
def test_shipped_hund_refines_the_regressor_and_the_mean_pose_on_validation_poses(model: BodyModel) -> None:
    blob = read_network_file(weights_file("hund", "default"))
    assert blob["manifest"]["command"].startswith("bodyfit train hund") and blob["training"]["kind"] == "hund"
    _, val = PoseDataset.load(POSES).split()
    batch = ViewSampler(model, val).sample(128, seed=11)
    regressor, hund = make_init("regressor", model), make_backend("hund", model)

    def pa(params: BodyParams) -> float:
        return float(score(params.pose(model).keypoints, batch.keypoints, batch.obs)["pa_mpjpe_mm"].mean())

    start, mean = regressor(batch.obs), MeanInit(model)(batch.obs)
    assert pa(hund.fit(batch.obs, start)) < pa(start)
    assert pa(hund.fit(batch.obs, mean)) < 0.6 * pa(mean)
    # The regressor's start is the better one, which is why `--init auto` starts every method from a regressor.
    assert pa(hund.fit(batch.obs, start)) < pa(hund.fit(batch.obs, mean))
    for backend in (hund, make_backend("lgd", model)):
        assert make_init("auto", model, backend).name in ("spin", "regressor")
