"""The learned backends: state encoding, the LGD step, training batches, training runs and shipped weights."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.errors import BodyfitError, InputError, MethodUnavailable
from bodyfit_cli.evaluation.benchmark import score
from bodyfit_cli.fitting import losses
from bodyfit_cli.fitting.init import MeanInit
from bodyfit_cli.fitting.registry import make_backend, make_init
from bodyfit_cli.geometry.rotations import matrix_to_axis_angle
from bodyfit_cli.learned.hund import train as hund_training
from bodyfit_cli.learned.lgd import train as lgd_training
from bodyfit_cli.learned.lgd.fit import descend, reprojection_gradient
from bodyfit_cli.learned.lgd.network import UpdateNetwork
from bodyfit_cli.learned.regressor import train as regressor_training
from bodyfit_cli.learned.regressor.network import KeypointRegressor
from bodyfit_cli.networks import state
from bodyfit_cli.networks.weights import build_network, load_network, read_network_file, weights_file
from bodyfit_cli.training.config import NetworkConfig
from bodyfit_cli.training.objectives import WEIGHTS, state_loss
from bodyfit_cli.training.pose_data import VALIDATION_TRIALS, PoseDataset
from bodyfit_cli.training.runs import file_digest, same_config
from bodyfit_cli.training.trainer import resumable, starting_states, train_network
from bodyfit_cli.training.views import TILT_DEG, ViewSampler

ROOT = Path(__file__).resolve().parents[1]
POSES = ROOT / "data" / "poses.npz"
STEPS = {"regressor": regressor_training.STEP, "lgd": lgd_training.STEP, "hund": hund_training.STEP}


def train(cfg: NetworkConfig, *args: object, **kwargs: object) -> dict[str, float]:
    """The shared trainer with the method of `cfg.kind`, as `bodyfit train <kind>` runs it."""
    return train_network(STEPS[cfg.kind], cfg, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def model() -> BodyModel:
    return BodyModel(load_body_model("default"))


def toy_dataset(n: int = 64, seed: int = 0) -> PoseDataset:
    """Random mild poses, upright in a y-up world, half of them in a validation trial."""
    g = np.random.default_rng(seed)
    orient = np.zeros((n, 3), np.float32)
    orient[:, 1] = g.uniform(-np.pi, np.pi, n)  # turned about the vertical
    return PoseDataset(
        global_orient=orient,
        body_pose=(0.2 * g.standard_normal((n, 69))).astype(np.float32),
        betas=np.zeros((n, 10), np.float32),
        trial=np.array(["01_01", "01_02"] * (n // 2)),
        frame=np.arange(n),
        mirrored=np.zeros(n, bool),
        fit_error_mm=np.zeros(n, np.float32),
    )


@pytest.fixture(scope="module")
def sampler(model: BodyModel) -> ViewSampler:
    return ViewSampler(model, toy_dataset())


def test_state_round_trip_keeps_the_body(model: BodyModel, sampler: ViewSampler) -> None:
    batch = sampler.sample(32, seed=3)
    d = state.decode(batch.state, batch.box)
    body = state.pose(model, d)
    assert torch.allclose(body.keypoints, batch.keypoints, atol=1e-4)
    params = state.to_params(model, d)
    assert torch.allclose(params.pose(model).keypoints, batch.keypoints, atol=1e-4)
    assert torch.allclose(state.encode(model, params, batch.box), batch.state, atol=1e-4)


def test_sampler_is_deterministic_and_its_truth_projects_onto_the_detections(sampler: ViewSampler) -> None:
    a, b, c = sampler.sample(64, seed=5), sampler.sample(64, seed=5), sampler.sample(64, seed=6)
    assert torch.equal(a.obs.keypoints, b.obs.keypoints) and torch.equal(a.state, b.state)
    assert not torch.equal(a.obs.keypoints, c.obs.keypoints)
    uv = state.pose(sampler.model, state.decode(a.state, a.box)).keypoints
    uv = uv[..., :2] / uv[..., 2:] * a.obs.focal[:, None] + a.obs.center[:, None]
    seen = a.obs.keypoints[..., 2] > 0.5  # inliers have confidence >= 0.5
    err = ((uv - a.obs.keypoints[..., :2]).norm(dim=-1) / a.obs.scale[:, None])[seen]
    assert float(err.median()) < 0.03  # 1% noise of the box diagonal


def test_mixed_poses_are_made_of_whole_parts_of_dataset_poses(model: BodyModel, sampler: ViewSampler) -> None:
    mixing = ViewSampler(model, toy_dataset(), mix_parts=1.0)
    plain, mixed, again = sampler.sample(64, seed=5), mixing.sample(64, seed=5), mixing.sample(64, seed=5)
    assert torch.equal(mixed.state, again.state)
    # The view and the base pose's global orientation are the plain batch's; only parts below it change.
    base, local = plain.rotations, mixed.rotations
    assert torch.allclose(local[:, 0], base[:, 0], atol=1e-6)
    changed = ~torch.isclose(local, base, atol=1e-6).flatten(2).all(-1)  # (B, 24) joints that differ
    assert 0.3 < float(changed[:, 1:].float().mean()) < 0.7  # each part taken with even odds
    pool = sampler.rotations.flatten(2)  # every local rotation of the dataset, (N, 24, 9)
    for part in mixing.parts:
        ours = local[:, part].flatten(2)  # (B, P, 9): must equal one dataset pose's part, all joints together
        same = (ours[:, None] - pool[None, :, part]).abs().amax((-1, -2)) < 1e-6
        assert bool(same.any(1).all())
        assert bool((changed[:, part].all(1) | ~changed[:, part].any(1)).all())  # a part moves as a whole


def test_tilted_poses_turn_about_a_horizontal_axis_by_at_most_tilt_deg(model: BodyModel, sampler: ViewSampler) -> None:
    tilting = ViewSampler(model, toy_dataset(), tilt=1.0)
    plain, tilted, again = sampler.sample(64, seed=5), tilting.sample(64, seed=5), tilting.sample(64, seed=5)
    assert torch.equal(tilted.state, again.state)
    assert torch.allclose(tilted.rotations[:, 1:], plain.rotations[:, 1:], atol=1e-6)  # the pose itself is kept
    assert not torch.allclose(tilted.rotations[:, 0], plain.rotations[:, 0], atol=1e-3)
    rots = tilting.rotations[:256]
    turn = tilting._tilted(rots, torch.Generator().manual_seed(0))[:, 0] @ rots[:, 0].transpose(1, 2)
    aa = matrix_to_axis_angle(turn)
    angle = aa.norm(dim=-1)
    assert float((aa[:, 1].abs() / angle.clamp(min=1e-6)).max()) < 1e-4  # about the y-up world's horizontal
    assert math.radians(80) < float(angle.max()) <= math.radians(TILT_DEG) + 1e-4
    half = ViewSampler(model, toy_dataset(), tilt=0.5)._tilted(rots, torch.Generator().manual_seed(0))
    kept = torch.isclose(half[:, 0], rots[:, 0], atol=1e-6).flatten(1).all(-1)
    assert 0.35 < float(kept.float().mean()) < 0.65


def test_simulated_landmarks_err_as_mediapipe_does_and_only_for_their_share(model: BodyModel) -> None:
    views = ViewSampler(model, toy_dataset(), landmarks=0.6).sample(256, seed=3)
    has = torch.isfinite(views.obs.points3d).all(-1).all(-1)
    assert 0.45 < float(has.float().mean()) < 0.75
    truth = views.keypoints[has] - views.keypoints[has][:, state.HIPS].mean(1, keepdim=True)
    error = views.obs.points3d[has] - truth  # along the camera's axes, hip-centred
    rms = error.pow(2).mean((0, 1)).sqrt()
    assert 0.05 < float(rms[0]) < 0.12 and 0.1 < float(rms[2]) < 0.2  # depth errs about twice as much
    world = views.features[:, -state.NUM_WORLD_FEATURES :]
    assert torch.equal(world[:, -1], has.float())
    assert torch.equal(world[~has], torch.zeros_like(world[~has]))  # no landmarks: zeros, as for keypoint files


def test_world_features_are_hip_centred_and_zero_without_landmarks(sampler: ViewSampler) -> None:
    obs = sampler.sample(8, seed=2).obs
    box = person_box(obs)
    assert torch.equal(state.world_features(obs), torch.zeros(8, state.NUM_WORLD_FEATURES))
    points = torch.randn(8, obs.keypoints.shape[1], 3)
    moved = replace(obs, points3d=points + torch.tensor([0.3, -1.0, 2.0]))
    assert torch.allclose(state.world_features(replace(obs, points3d=points)), state.world_features(moved), atol=1e-5)
    assert state.keypoint_features(moved, box, world=True).shape[1] == state.NUM_FEATURES + state.NUM_WORLD_FEATURES
    regressor = KeypointRegressor(10, hidden=16, world=True)
    assert regressor(state.keypoint_features(moved, box, world=True)).shape == (8, state.state_size(10))


def test_features_do_not_depend_on_where_the_person_is_or_how_large(sampler: ViewSampler) -> None:
    batch = sampler.sample(8, seed=1)
    moved = replace(batch.obs, keypoints=batch.obs.keypoints.clone())
    moved.keypoints[..., :2] = batch.obs.keypoints[..., :2] * 2 + 100
    moved.scale = batch.obs.scale * 2
    f0 = state.keypoint_features(batch.obs, person_box(batch.obs))
    f1 = state.keypoint_features(moved, person_box(moved))
    pose_part = slice(0, f0.shape[1] - 3)
    assert torch.allclose(f0[:, pose_part], f1[:, pose_part], atol=1e-5)
    assert not torch.allclose(f0[:, -3:], f1[:, -3:])  # where the box is in the view does change


def test_a_small_step_against_the_reprojection_gradient_lowers_the_loss(model: BodyModel, sampler: ViewSampler) -> None:
    batch = sampler.sample(16, seed=2)
    x = state.encode(model, MeanInit(model)(batch.obs), batch.box)
    grad = reprojection_gradient(model, x, batch.obs, batch.box)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return losses.reprojection(state.pose(model, state.decode(x, batch.box)).keypoints, batch.obs)

    step = 1e-3 * grad / grad.norm(dim=-1, keepdim=True)
    assert bool((loss(x - step) < loss(x)).all())
    assert not grad.requires_grad


def test_the_gradient_step_moves_against_the_gradient_by_its_learned_sizes(
    model: BodyModel, sampler: ViewSampler
) -> None:
    batch = sampler.sample(8, seed=4)
    x = state.encode(model, MeanInit(model)(batch.obs), batch.box)
    grad = reprojection_gradient(model, x, batch.obs, batch.box)
    plain, stepped = (
        UpdateNetwork(model.num_betas, steps=2),
        UpdateNetwork(model.num_betas, steps=2, gradient_step=True),
    )
    # Untrained, the network's own output is zero: a plain network stays, one with the gradient step descends.
    assert torch.equal(plain(x, grad, batch.features, 0), torch.zeros_like(x))
    assert plain.step_sizes is None and "step_sizes" not in plain.state_dict()
    with torch.no_grad():
        stepped.step_sizes[1] *= 0.5  # each descent step has its own sizes
    for step, scale in ((0, 1.0), (1, 0.5)):
        delta = stepped(x, grad, batch.features, step)
        assert torch.allclose(delta, -scale * stepped.step_sizes[0].detach() * grad)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return losses.reprojection(state.pose(model, state.decode(x, batch.box)).keypoints, batch.obs)

    with torch.no_grad():
        assert float(loss(x + stepped(x, grad, batch.features, 0)).mean()) < float(loss(x).mean())
    # Weight files from before the option build the plain network.
    old = {"num_betas": model.num_betas, "steps": 3, "hidden": 16, "blocks": 1}
    assert UpdateNetwork(**old).step_sizes is None


def test_regressor_starts_replace_a_share_of_the_starts_and_none_leaves_the_draws_alone(
    model: BodyModel,
    sampler: ViewSampler,
) -> None:
    batch = sampler.sample(64, seed=5)
    regressor = KeypointRegressor(model.num_betas, hidden=16, blocks=1)
    with torch.no_grad():
        regressor.mean_state.copy_(batch.state[0])  # untrained: predicts this state for everyone
    base = starting_states(model, batch, torch.Generator().manual_seed(0))
    assert torch.equal(base, starting_states(model, batch, torch.Generator().manual_seed(0), regressor, 0.0))
    mixed = starting_states(model, batch, torch.Generator().manual_seed(0), regressor, 0.5)
    from_regressor = (mixed == batch.state[0]).all(1)
    assert 16 < int(from_regressor.sum()) < 48
    assert torch.equal(mixed[~from_regressor], base[~from_regressor])  # the others are the usual starts
    assert (starting_states(model, batch, torch.Generator().manual_seed(0), regressor, 1.0) == batch.state[0]).all()


def test_training_from_regressor_starts_records_which_regressor(model: BodyModel, tmp_path: Path) -> None:
    data = write_toy_data(tmp_path / "poses.npz")
    cfg = NetworkConfig(kind="hund", steps=1, batch=8, hidden=16, stages=2, regressor_starts=0.5, validation_views=8)
    train(cfg, model, data, tmp_path / "h.pt", tmp_path / "h.ckpt", False)
    blob = read_network_file(tmp_path / "h.pt")
    assert blob["training"]["regressor_starts"] == 0.5
    assert blob["manifest"]["regressor"] == file_digest(weights_file("regressor", model.name))


def test_networks_trained_with_landmarks_read_them_and_fit_without_them(model: BodyModel, tmp_path: Path) -> None:
    data = write_toy_data(tmp_path / "poses.npz")
    cfg = NetworkConfig(kind="lgd", steps=2, batch=8, hidden=16, lgd_steps=2, landmarks=0.5, validation_views=8)
    train(cfg, model, data, tmp_path / "l.pt", tmp_path / "l.ckpt", False)
    net = build_network(read_network_file(tmp_path / "l.pt"), UpdateNetwork)
    assert net.world and net.architecture["world"]
    batch = ViewSampler(model, toy_dataset(), landmarks=1.0).sample(4, seed=0)
    with torch.no_grad():
        with_landmarks = descend(net, model, batch.obs, batch.state)[-1]
        without = descend(net, model, replace(batch.obs, points3d=None), batch.state)[-1]
    assert with_landmarks.shape == without.shape and not torch.allclose(with_landmarks, without)


def write_toy_data(path: Path) -> Path:
    toy_dataset(96, seed=1).save(path)
    return path


def test_training_lowers_the_loss_and_resuming_matches_an_uninterrupted_run(model: BodyModel, tmp_path: Path) -> None:
    data = write_toy_data(tmp_path / "poses.npz")
    cfg = NetworkConfig(kind="lgd", steps=6, batch=16, hidden=32, lgd_steps=2, checkpoint_every=3, validation_views=32)
    losses_seen: list[float] = []
    torch.set_num_threads(1)
    train(
        cfg,
        model,
        data,
        tmp_path / "a.pt",
        tmp_path / "a.ckpt",
        False,
        lambda s, n, logs: losses_seen.append(logs["loss"]),
    )
    # Interrupted after 3 steps (the checkpoint of a 3-step run), then resumed to 6.
    train(replace(cfg, steps=3), model, data, tmp_path / "b.pt", tmp_path / "b.ckpt", False)
    train(cfg, model, data, tmp_path / "b.pt", tmp_path / "b.ckpt", True)
    a, b = read_network_file(tmp_path / "a.pt"), read_network_file(tmp_path / "b.pt")
    for key, value in a["state_dict"].items():
        assert torch.allclose(value, b["state_dict"][key], atol=1e-6), key
    assert a["training"]["lgd_steps"] == 2 and a["manifest"]["train_poses"] == 48
    assert set(a["manifest"]["validation"]) == {"pa_mpjpe_mm", "mpjpe_mm"}

    long = NetworkConfig(
        kind="regressor", steps=60, batch=32, hidden=64, lr=3e-3, warmup=5, checkpoint_every=60, validation_views=32
    )
    seen: list[float] = []
    train(
        long, model, data, tmp_path / "r.pt", tmp_path / "r.ckpt", False, lambda s, n, logs: seen.append(logs["loss"])
    )
    assert np.mean(seen[-10:]) < 0.7 * np.mean(seen[:10])


def test_resuming_with_another_configuration_is_refused(model: BodyModel, tmp_path: Path) -> None:
    data = write_toy_data(tmp_path / "poses.npz")
    cfg = NetworkConfig(kind="regressor", steps=2, batch=8, hidden=16, checkpoint_every=1, validation_views=8)
    train(cfg, model, data, tmp_path / "r.pt", tmp_path / "r.ckpt", False)
    with pytest.raises(InputError, match="another configuration"):
        train(replace(cfg, hidden=32), model, data, tmp_path / "r.pt", tmp_path / "r.ckpt", True)


def test_the_2d_weight_reaches_the_loss_and_old_checkpoints_resume_with_its_old_value(
    model: BodyModel,
    sampler: ViewSampler,
    tmp_path: Path,
) -> None:
    batch = sampler.sample(8, seed=3)
    x = batch.state + 0.05 * torch.randn(batch.state.shape, generator=torch.Generator().manual_seed(0))
    base, terms = state_loss(model, x, batch)
    heavier, _ = state_loss(model, x, batch, {**WEIGHTS, "keypoints2d": WEIGHTS["keypoints2d"] + 5.0})
    assert terms["keypoints2d"] > 0
    assert torch.allclose(heavier.mean() - base.mean(), 5.0 * terms["keypoints2d"], rtol=1e-4)
    # Training reads it from the configuration: another weight, other weights after one step.
    data = write_toy_data(tmp_path / "poses.npz")
    cfg = NetworkConfig(kind="lgd", steps=1, batch=8, hidden=16, lgd_steps=1, validation_views=8)
    train(cfg, model, data, tmp_path / "a.pt", tmp_path / "a.ckpt", False)
    train(replace(cfg, weight_2d=100.0), model, data, tmp_path / "b.pt", tmp_path / "b.ckpt", False)
    a, b = read_network_file(tmp_path / "a.pt"), read_network_file(tmp_path / "b.pt")
    assert b["training"]["weight_2d"] == 100.0
    assert any(not torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items())
    # A checkpoint from before the option existed was trained with the default weight.
    saved = {k: v for k, v in asdict(cfg).items() if k != "weight_2d"}
    ignore, before = resumable(STEPS["lgd"], "lgd")
    assert same_config(saved, asdict(cfg), ignore, before)
    assert not same_config(saved, asdict(replace(cfg, weight_2d=30.0)), ignore, before)


def test_missing_weights_say_how_to_train_them(model: BodyModel) -> None:
    with pytest.raises(MethodUnavailable, match="bodyfit train lgd --body-model smpl"):
        load_network(UpdateNetwork, "lgd", "smpl", 10, torch.device("cpu"))
    other = BodyModel(replace(load_body_model("default"), name="untrained"))
    assert make_init("auto", other).name == "mean"  # auto falls back to the mean pose
    with pytest.raises(BodyfitError, match="--init regressor"):
        make_init("regressor", other)
    with pytest.raises(MethodUnavailable):
        make_backend("lgd", other)


shipped = pytest.mark.skipif(
    not (weights_file("lgd", "default").is_file() and weights_file("regressor", "default").is_file()),
    reason="no shipped LGD and regressor weights",
)


@shipped
def test_shipped_weights_record_how_they_were_made() -> None:
    for kind in ("regressor", "lgd"):
        blob = read_network_file(weights_file(kind, "default"))
        assert blob["manifest"]["command"].startswith(f"bodyfit train {kind}")
        assert blob["manifest"]["validation_trials"] == list(VALIDATION_TRIALS)
        assert blob["training"]["kind"] == kind


@shipped
@pytest.mark.skipif(not POSES.is_file(), reason="no pose dataset (bodyfit train data)")
def test_shipped_lgd_beats_the_regressor_and_the_mean_pose_on_held_out_poses(model: BodyModel) -> None:
    _, val = PoseDataset.load(POSES).split()
    batch = ViewSampler(model, val).sample(128, seed=11)
    regressor = make_init("regressor", model)
    lgd = make_backend("lgd", model)

    def pa(params: BodyParams) -> float:
        return float(score(params.pose(model).keypoints, batch.keypoints, batch.obs)["pa_mpjpe_mm"].mean())

    mean_start = MeanInit(model)(batch.obs)
    from_regressor = pa(lgd.fit(batch.obs, regressor(batch.obs)))
    assert from_regressor < pa(regressor(batch.obs)) < pa(mean_start)
    assert from_regressor < 80
    # From the mean pose (facing the camera, whichever way the person faces) it gets most of the way there.
    from_mean = pa(lgd.fit(batch.obs, mean_start))
    assert from_mean < 0.6 * pa(mean_start) and from_mean < 1.25 * from_regressor


@shipped
def test_the_regressor_method_initialises_itself_with_one_pass(model: BodyModel, sampler: ViewSampler) -> None:
    backend = make_backend("regressor", model)
    assert make_init("auto", model, backend) is backend
    obs = sampler.sample(4, seed=9).obs
    init = backend(obs)
    assert backend.fit(obs, init) is init  # its own answer for these observations, not computed again
    other = replace(obs, keypoints=obs.keypoints.clone())
    assert backend.fit(other, init) is not init
