"""`bodyfit bench`: scoring, the CONTRACT.md JSON, unavailable methods, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.errors import InputError
from bodyfit_cli.evaluation.benchmark import make_views, pick_poses, read_keypoints3d, run_methods, score
from bodyfit_cli.fitting.init import MeanInit, relaxed_pose
from bodyfit_cli.fitting.registry import make_backend
from bodyfit_cli.networks.weights import weights_file
from bodyfit_cli.vocabulary import KEYPOINT_NAMES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def poses_file(tmp_path_factory) -> Path:
    """Keypoints of a few everyday poses of the default model, in a z-up world (any frame is allowed)."""
    model = BodyModel(load_body_model("default"))
    g = torch.Generator().manual_seed(0)
    pose = relaxed_pose(6, torch.device("cpu"), torch.float32) + 0.15 * torch.randn(6, 23, 3, generator=g)
    params = BodyParams(torch.zeros(6, 3), pose, torch.zeros(6, 10), torch.zeros(6, 3))
    with torch.no_grad():
        points = params.pose(model).keypoints.numpy()
    z_up = points[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])  # y-up -> z-up, still right-handed
    path = tmp_path_factory.mktemp("bench") / "poses.npz"
    extra = z_up.mean(1, keepdims=True)  # a point with a name outside the vocabulary: ignored
    np.savez(
        path, joints=np.concatenate([z_up, extra], 1).astype(np.float32), names=np.array([*KEYPOINT_NAMES, "marker_c7"])
    )
    return path


def test_score_is_zero_for_the_truth_and_pa_ignores_similarity(poses_file: Path) -> None:
    poses = read_keypoints3d(poses_file)
    obs, truth = make_views(poses, 4, 0, torch.device("cpu"))
    exact = score(truth, truth, obs)
    assert float(exact["pa_mpjpe_mm"].max()) < 1e-6 and float(exact["mpjpe_mm"].max()) < 1e-6
    # Scaled, rotated and moved: PA-MPJPE forgives it; hip-aligned MPJPE does not.
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    moved = 1.1 * truth @ rot.T + torch.tensor([0.3, 0.0, 1.0])
    errs = score(moved, truth, obs)
    assert float(errs["pa_mpjpe_mm"].max()) < 1e-3
    assert float(errs["mpjpe_mm"].min()) > 100.0


def test_pick_poses_covers_every_pose_before_repeating(poses_file: Path) -> None:
    poses = read_keypoints3d(poses_file)
    picked = pick_poses(poses, 12, seed=1)
    first = {tuple(p[0].tolist()) for p in picked[:6]}
    assert len(first) == 6
    assert torch.equal(picked, pick_poses(poses, 12, seed=1))


@pytest.mark.skipif(
    not weights_file("lgd", "default").is_file() or not weights_file("hund", "default").is_file(),
    reason="no shipped LGD and hund weights",
)
def test_methods_taking_turns_score_as_each_alone(poses_file: Path) -> None:
    model = BodyModel(load_body_model("default"))
    obs, truth = make_views(read_keypoints3d(poses_file), 6, 0, torch.device("cpu"))
    runs = {name: (make_backend(name, model), MeanInit(model)) for name in ("lgd", "hund")}
    seen: list[str] = []
    together = run_methods(runs, model, obs, truth, 2, lambda name, k: seen.append(name))
    assert seen == ["lgd", "hund"] * 3  # chunk by chunk, every method in turn
    for name, run in runs.items():
        alone = run_methods({name: run}, model, obs, truth, 2)[name]
        for key in ("pa_mpjpe_mm", "mpjpe_mm", "reproj_px"):
            assert alone[key] == pytest.approx(together[name][key], rel=1e-5)
        assert 0 < together[name]["median_ms"] <= together[name]["p95_ms"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_MODEL_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "bodyfit_cli", "bench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_bench_cli_writes_the_contract_json(poses_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "results" / "bench.json"
    done = run_cli(
        "--keypoints3d",
        str(poses_file),
        "--method",
        "smplify,lgd,hund",
        "--n",
        "4",
        "--batch",
        "4",
        "--json",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert {"n", "seed", "device", "methods"} <= set(report) and report["n"] == 4 and report["device"] == "cpu"
    smplify = report["methods"]["smplify"]
    assert set(smplify) == {"pa_mpjpe_mm", "mpjpe_mm", "reproj_px", "median_ms", "p95_ms"}
    assert (
        0 < smplify["pa_mpjpe_mm"] < 200 and smplify["reproj_px"] < 40 and 0 < smplify["median_ms"] <= smplify["p95_ms"]
    )
    for kind in ("lgd", "hund"):  # learned: measured with shipped weights, else reported as unavailable, not faked
        learned = report["methods"][kind]
        if weights_file(kind, "default").is_file():
            assert 0 < learned["pa_mpjpe_mm"] < 200 and 0 < learned["median_ms"] <= learned["p95_ms"]
        else:
            assert learned["available"] is False and f"bodyfit train {kind}" in learned["reason"]
    assert "smplify" in done.stdout and "PA-MPJPE" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of"),
        (("--keypoints3d", "missing.npz"), "no such file"),
        (("--keypoints3d", "bad.npz"), "missing"),
        (("--keypoints3d", "poses.npz", "--method", "nope"), "unknown method"),
    ],
)
def test_bench_cli_bad_input_is_one_line(args: tuple[str, ...], message: str, poses_file: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", points=np.zeros((2, 3, 3)))
    (tmp_path / "poses.npz").write_bytes(poses_file.read_bytes())
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_read_keypoints3d_checks_shapes(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", joints=np.zeros((2, 3, 3)), names=np.array(["nose", "left_eye"]))
    with pytest.raises(InputError, match="must be"):
        read_keypoints3d(tmp_path / "x.npz")
