"""Retargeting (3D fitting), the pose dataset, the Gaussian-mixture fit and the learned prior."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.errors import BodyModelError, InputError
from bodyfit_cli.fitting.fit3d import Fit3DConfig, fit_joints3d
from bodyfit_cli.fitting.init import relaxed_pose
from bodyfit_cli.fitting.priors import GMMPosePrior, load_prior
from bodyfit_cli.mocap.types import MocapClip
from bodyfit_cli.training.gmm import fit_gmm
from bodyfit_cli.training.pose_data import (
    HELD_OUT_SUBJECTS,
    VALIDATION_TRIALS,
    PoseDataset,
    RetargetConfig,
    build_pose_dataset,
    canonical_joints,
    distinct_frames,
    mirror,
    retarget_subject,
    training_trials,
)
from bodyfit_cli.vocabulary import SMPL_JOINT_INDEX, SMPL_JOINT_NAMES, mirror_name

ROOT = Path(__file__).resolve().parents[1]
CMU = ROOT.parent / "shared" / "mocap" / "cmu"


@pytest.fixture(scope="module")
def model() -> BodyModel:
    return BodyModel(load_body_model("default"))


def random_params(batch: int, seed: int, model: BodyModel) -> BodyParams:
    g = torch.Generator().manual_seed(seed)
    pose = relaxed_pose(batch, torch.device("cpu"), torch.float32) + 0.25 * torch.randn(batch, 23, 3, generator=g)
    # Keep elbows and knees bending the natural way, as in real motion.
    for joint, axis, sign in (("left_elbow", 1, -1), ("right_elbow", 1, 1), ("left_knee", 0, 1), ("right_knee", 0, 1)):
        i = SMPL_JOINT_INDEX[joint] - 1
        pose[:, i, axis] = sign * pose[:, i, axis].abs()
    orient = torch.randn(batch, 3, generator=g)
    return BodyParams(
        orient,
        pose,
        0.5 * torch.randn(batch, 10, generator=g).mean(0, keepdim=True).expand(batch, -1),
        torch.randn(batch, 3, generator=g),
    )


def test_fit_joints3d_recovers_poses_from_their_own_joints(model: BodyModel) -> None:
    truth = random_params(16, 0, model)
    with torch.no_grad():
        target = truth.pose(model).joints
    joints = list(range(24))
    start = fit_joints3d(model, target, joints, config=Fit3DConfig(iters=0))[1]
    fitted, error = fit_joints3d(model, target, joints, fit_betas=True)
    # Adam leaves ~2 cm in long chains (pelvis against spine) after 200 steps; from ~15 cm at the start.
    assert float(error.max()) < 0.03 and float(error.mean()) < 0.25 * float(start.mean()), (error, start)
    assert float((fitted.betas[0] - truth.betas[0]).abs().max()) < 0.5


def test_fit_joints3d_starts_facing_the_targets_torso(model: BodyModel) -> None:
    """Targets turned 180 degrees about the vertical: the fit must turn too, not fold the body."""
    truth = random_params(4, 1, model)
    truth.global_orient = torch.tensor([[0.0, math.pi, 0.0]]).expand(4, 3).clone()
    with torch.no_grad():
        target = truth.pose(model).joints
    _, error = fit_joints3d(model, target, list(range(24)))
    assert float(error.max()) < 0.03


def test_mirror_reflects_the_posed_body(model: BodyModel) -> None:
    params = random_params(8, 2, model)
    params.betas = torch.zeros(8, 10)
    params.transl = torch.zeros(8, 3)
    orient, pose = params.global_orient.numpy(), params.body_pose.flatten(1).numpy()
    m_orient, m_pose = mirror(orient, pose)
    back = mirror(m_orient, m_pose)
    np.testing.assert_allclose(back[0], orient, atol=1e-6)
    np.testing.assert_allclose(back[1], pose, atol=1e-6)
    mirrored = BodyParams(
        torch.from_numpy(m_orient), torch.from_numpy(m_pose).view(-1, 23, 3), params.betas, params.transl
    )
    with torch.no_grad():
        a, b = params.pose(model).joints, mirrored.pose(model).joints
    swap = [SMPL_JOINT_INDEX[mirror_name(n)] for n in SMPL_JOINT_NAMES]
    reflected = a[:, swap] * torch.tensor([-1.0, 1.0, 1.0])
    # The pelvis is not exactly on the model's x = 0 plane, so compare root-relative joints.
    diff = (reflected - reflected[:, :1]) - (b - b[:, :1])
    assert float(diff.norm(dim=-1).max()) < 0.015  # the model is left-right symmetric within ~1 cm


def test_distinct_frames_drops_held_poses() -> None:
    still = np.zeros((10, 3, 3))
    moving = np.zeros((10, 3, 3))
    moving[:, 0, 0] = np.linspace(0, 0.9, 10)  # 10 cm per frame
    frames = np.concatenate([still, moving + 0.0, still + moving[-1]])
    kept = distinct_frames(frames, 0.05)
    assert kept[0] == 0 and len(kept) == 10  # the first still frame, then every moving frame
    assert distinct_frames(frames, 0.15).tolist() == [0, 12, 14, 16, 18]  # 20 cm steps


def test_canonical_joints_remove_turning_and_walking() -> None:
    g = np.random.default_rng(0)
    names = ("pelvis", "left_hip", "right_hip", "neck", "left_shoulder", "right_shoulder", "left_wrist")
    base = g.normal(size=(len(names), 3)).astype(np.float32)
    angles = np.linspace(0, 3, 6)
    rot = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in angles])
    positions = (base @ rot.transpose(0, 2, 1) + g.normal(size=(6, 1, 3))).astype(np.float32)
    clip = MocapClip("t", names, positions, 30.0, "test")
    canon = canonical_joints(clip)
    np.testing.assert_allclose(canon, np.broadcast_to(canon[:1], canon.shape), atol=1e-4)


def test_retarget_subject_shares_one_shape_and_fits_each_frame(model: BodyModel) -> None:
    truth = random_params(24, 3, model)
    with torch.no_grad():
        joints = truth.pose(model).joints.numpy()
    names = (
        "pelvis",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "neck",
        "head",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
    )
    ids = [SMPL_JOINT_INDEX[n] for n in names]
    clips = [MocapClip(f"t{i}", names, joints[i * 12 : (i + 1) * 12, ids], 30.0, "test") for i in range(2)]
    done = []
    fitted = retarget_subject(model, clips, RetargetConfig(shape_frames=24), done.append)
    assert done == ["t0", "t1"]
    for params, error in fitted:
        assert len(error) == 12 and float(error.max()) < 0.02
        assert torch.equal(params.betas, params.betas[:1].expand_as(params.betas))
    assert torch.equal(fitted[0][0].betas[0], fitted[1][0].betas[0])


@pytest.mark.skipif(not (CMU / "02" / "02_01.amc").is_file(), reason="needs the shared CMU mocap")
def test_dataset_from_real_mocap(model: BodyModel, tmp_path: Path) -> None:
    data = build_pose_dataset(model, [CMU / "02" / "02_01.amc", CMU / "02" / "02_02.amc"])
    assert set(data.trial) == {"02_01", "02_02"}
    assert data.mirrored.sum() * 2 == len(data)
    assert float(np.median(data.fit_error_mm)) < 40.0
    train, val = data.split()
    assert set(val.trial) == {"02_01"} and set(train.trial) == {"02_02"}
    data.save(tmp_path / "d.npz")
    back = PoseDataset.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.body_pose, data.body_pose)
    assert list(back.trial) == list(data.trial)


def test_held_out_subjects_never_reach_the_dataset(tmp_path: Path) -> None:
    names = ["13_01.bvh", "13_29.amc", "07_01.bvh", "HDM_bd_squat1Reps_001_120.amc", "walk.bvh", "1301.bvh"]
    for name in names:
        (tmp_path / name).touch()
    kept = [p.name for p in training_trials([tmp_path], ("13", "06"))]
    assert kept == sorted(["07_01.bvh", "HDM_bd_squat1Reps_001_120.amc", "walk.bvh", "1301.bvh"])
    assert len(training_trials([tmp_path], ())) == len(names)
    with pytest.raises(InputError, match="held-out subject"):
        training_trials([tmp_path / "13_01.bvh"], ("13",))
    assert not set(HELD_OUT_SUBJECTS) & {s.split("_")[0] for s in VALIDATION_TRIALS}


def test_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        PoseDataset.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(InputError, match="not a bodyfit pose dataset"):
        PoseDataset.load(tmp_path / "other.npz")


def test_gmm_recovers_a_known_mixture() -> None:
    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 4.0]])
    scales = torch.tensor([0.5, 1.0, 0.3])
    counts = [3000, 2000, 1000]
    x = torch.cat([means[k] + scales[k] * torch.randn(c, 2, generator=g) for k, c in enumerate(counts)])
    mix = fit_gmm(x, 3, iters=50, floor=1e-6, seed=0)
    order = torch.cdist(means, mix.means.float()).argmin(1)
    assert sorted(order.tolist()) == [0, 1, 2]
    torch.testing.assert_close(mix.means[order].float(), means, atol=0.1, rtol=0)
    torch.testing.assert_close(mix.weights[order].float(), torch.tensor(counts) / 6000.0, atol=0.02, rtol=0)
    var = torch.diagonal(mix.covariances[order], dim1=-2, dim2=-1).float()
    torch.testing.assert_close(var, (scales**2)[:, None].expand(3, 2), rtol=0.15, atol=0)
    # Its densities are the textbook ones.
    ref = torch.stack(
        [
            torch.distributions.MultivariateNormal(mix.means[k], mix.covariances[k]).log_prob(x[:5].double())
            + mix.weights[k].log()
            for k in range(3)
        ],
        1,
    )
    torch.testing.assert_close(mix.log_prob(x[:5].double()), ref)


def test_gmm_is_deterministic_for_a_seed() -> None:
    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(1))
    a, b = fit_gmm(x, 4, iters=10, seed=3), fit_gmm(x, 4, iters=10, seed=3)
    assert torch.equal(a.means, b.means) and torch.equal(a.covariances, b.covariances)


def test_gmm_prior_energy_is_the_best_components_negative_log_likelihood() -> None:
    g = torch.Generator().manual_seed(0)
    k, d = 3, 69
    means = 0.3 * torch.randn(k, d, generator=g)
    a = torch.randn(k, d, d, generator=g) * 0.05
    covs = a @ a.transpose(1, 2) + 0.01 * torch.eye(d)
    weights = torch.tensor([0.5, 0.3, 0.2])
    prior = GMMPosePrior(weights, means, covs)
    x = means[1] + 0.1 * torch.randn(5, d, generator=g)
    nll = -torch.stack(
        [
            torch.distributions.MultivariateNormal(means[j].double(), covs[j].double()).log_prob(x.double())
            + weights[j].log()
            for j in range(k)
        ],
        1,
    )
    best_mean_nll = -torch.stack(
        [
            torch.distributions.MultivariateNormal(means[j].double(), covs[j].double()).log_prob(means[j].double())
            + weights[j].log()
            for j in range(k)
        ]
    ).max()
    expected = nll.min(1).values - best_mean_nll
    torch.testing.assert_close(prior(x.view(5, 23, 3)).double(), expected, rtol=1e-4, atol=1e-3)
    assert float(prior(means.view(k, 23, 3)).min()) == pytest.approx(0.0, abs=1e-3)
    # Gradients flow (SMPLify needs them).
    pose = x.view(5, 23, 3).clone().requires_grad_(True)
    prior(pose).sum().backward()
    assert pose.grad is not None and torch.isfinite(pose.grad).all()


def test_shipped_prior_prefers_everyday_poses_over_contortions() -> None:
    prior = load_prior("gmm")
    relaxed = relaxed_pose(1, torch.device("cpu"), torch.float32)
    twisted = relaxed.clone()
    twisted[:, SMPL_JOINT_INDEX["left_knee"] - 1] = torch.tensor([-1.2, 0.0, 0.0])  # knee bent backwards
    twisted[:, SMPL_JOINT_INDEX["spine2"] - 1] = torch.tensor([0.0, 1.5, 0.0])  # spine twisted 86 degrees
    assert float(prior(twisted)) > float(prior(relaxed)) + 10.0


def test_unknown_or_missing_prior() -> None:
    with pytest.raises(BodyModelError, match="unknown pose prior"):
        load_prior("nope")
    with pytest.raises(BodyModelError, match="bodyfit train prior"):
        GMMPosePrior.load(Path("/nonexistent/pose_prior.npz"))


def run_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bodyfit_cli", "train", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_train_prior_command_writes_a_loadable_prior(tmp_path: Path) -> None:
    g = np.random.default_rng(0)
    n = 400
    data = PoseDataset(
        global_orient=g.normal(size=(n, 3)).astype(np.float32),
        body_pose=(0.2 * g.normal(size=(n, 69))).astype(np.float32),
        betas=np.zeros((n, 10), np.float32),
        trial=np.array(["01_01"] * 50 + ["05_02"] * (n - 50)),
        frame=np.arange(n, dtype=np.int32),
        mirrored=np.zeros(n, bool),
        fit_error_mm=np.zeros(n, np.float32),
    )
    data.save(tmp_path / "poses.npz")
    done = run_train(
        "prior", "--data", "poses.npz", "--out", "out/prior.npz", "--components", "2", "--iters", "5", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "350 training poses" in done.stderr  # the validation trial is held out
    prior = GMMPosePrior.load(tmp_path / "out" / "prior.npz")
    assert prior.means.shape == (2, 69)
    missing = run_train("prior", "--data", "nope.npz", cwd=tmp_path)
    assert (
        missing.returncode == 2
        and len(missing.stderr.strip().splitlines()) == 1
        and "bodyfit train data" in missing.stderr
    )


def test_amass_files_join_the_dataset_without_retargeting(model: BodyModel, tmp_path: Path) -> None:
    g = np.random.default_rng(0)
    poses = (0.3 * g.normal(size=(40, 156))).astype(np.float32)
    np.savez(
        tmp_path / "s1_walk_poses.npz",
        poses=poses,
        betas=np.zeros(16),
        trans=np.zeros((40, 3)),
        mocap_framerate=np.array(60.0),
        gender="neutral",
    )
    data = build_pose_dataset(model, [tmp_path])
    original = data.select(~data.mirrored)
    assert len(original) == 20 and original.frame.tolist() == list(range(0, 40, 2))  # 60 fps thinned to 30
    np.testing.assert_allclose(original.body_pose[:, :63], poses[::2, 3:66], atol=1e-6)  # SMPL's 21 body joints
    assert not original.body_pose[:, 63:].any()  # SMPL's hand joints: AMASS's hands are not SMPL's
