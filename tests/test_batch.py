"""`bodyfit batch`: images and videos together, in this process or spread over a Ray cluster, with the
outputs, resumability, --json lines and exit statuses of `bodyfit image`/`bodyfit video`; and what
Ctrl-C leaves behind.

Runs go through Typer's runner in this process (no torch start per run); the Ray runs share one 2-CPU
local cluster the module starts once. The interrupted run is a real subprocess, sent SIGINT.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from test_video import interruptible, write_clip
from typer.testing import CliRunner, Result

from bodyfit_cli.cli import app

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FAST = ["--method", "smplify", "--no-render", "--json"]
OUTPUTS = {
    "standing_front.json",
    "standing_front.npz",
    "standing_front_p0.obj",
    "sub/lunge_side.json",
    "sub/lunge_side.npz",
    "sub/lunge_side_p0.obj",
    "sub/clip.jsonl",
    "sub/clip.npz",
    "sub/clip_meshes/f000000_t0.obj",
    "sub/clip_animation/clip_t0.bvh",
    "sub/clip_animation/clip_t0.glb",
    "sub/clip_animation/clip_t0_poses.npz",
}
FITTED = ("global_orient", "body_pose", "betas", "translation", "joints3d")


def files_under(root: Path) -> set[str]:
    """Every file below root (hidden ones too, to catch leftover temporaries), relative, as posix."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def mtimes(root: Path) -> dict[str, int]:
    return {name: (root / name).stat().st_mtime_ns for name in files_under(root)}


def batch(*args: str | Path) -> Result:
    return CliRunner().invoke(app, ["batch", *map(str, args)])


def json_lines(run: Result) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines()]


def error_lines(run: Result) -> list[str]:
    """stderr's error lines, after checking there is no traceback."""
    assert "Traceback" not in run.stderr, run.stderr
    return [line for line in run.stderr.splitlines() if line.startswith("bodyfit: error: ")]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """in/: two sample photos (one in a subfolder) and a 2-frame clip; broken.jpg: not an image."""
    root = tmp_path_factory.mktemp("batch")
    (root / "in" / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "standing_front.jpg", root / "in")
    shutil.copy(SAMPLES / "lunge_side.jpg", root / "in" / "sub")
    write_clip(root / "in" / "sub" / "clip.mp4", frames=2)
    (root / "broken.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return root


@pytest.fixture(scope="module")
def local_run(tree: Path) -> Result:
    return batch(tree / "in", "--engine", "local", "--out", tree / "L", *FAST)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[ModuleType]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_run(tree: Path, ray_cluster: ModuleType) -> tuple[Result, dict[str, int]]:
    run = batch(tree / "in", "--engine", "ray", "--out", tree / "R", *FAST)
    return run, mtimes(tree / "R")


def test_local_batch_takes_images_and_videos(tree: Path, local_run: Result) -> None:
    assert local_run.exit_code == 0, local_run.stderr
    assert files_under(tree / "L") == OUTPUTS  # mirrored tree, images and the clip, no temporaries
    printed = json_lines(local_run)
    assert [Path(p["input"]).name for p in printed] == ["standing_front.jpg", "clip.mp4", "lunge_side.jpg"]
    assert printed[1]["frames"] == 2 and len(printed[0]["people"]) == 1
    assert len(local_run.stderr.splitlines()) == 3 and not error_lines(local_run)  # one line per input


def test_ray_gives_the_same_results_as_local(tree: Path, local_run: Result, ray_run) -> None:
    run, _ = ray_run
    assert run.exit_code == 0, run.stderr
    assert files_under(tree / "R") == OUTPUTS
    assert sorted(p["input"] for p in json_lines(run)) == sorted(p["input"] for p in json_lines(local_run))
    assert len(run.stderr.splitlines()) == 3 and not error_lines(run)
    for stem in ("standing_front", "sub/lunge_side"):
        local, remote = (json.loads((tree / d / f"{stem}.json").read_text()) for d in "LR")
        assert len(local["people"]) == len(remote["people"]) == 1
        for key in FITTED:
            np.testing.assert_allclose(remote["people"][0][key], local["people"][0][key], atol=1e-4, err_msg=key)
    for name in ("standing_front.npz", "sub/clip.npz"):
        with np.load(tree / "L" / name) as local, np.load(tree / "R" / name) as remote:
            assert local.files == remote.files
            for key in local.files:
                if local[key].dtype.kind == "f":
                    np.testing.assert_allclose(remote[key], local[key], atol=1e-4, err_msg=f"{name}:{key}")
    frames = [[json.loads(line) for line in (tree / d / "sub/clip.jsonl").read_text().splitlines()] for d in "LR"]
    assert [f["frame"] for f in frames[1]] == [f["frame"] for f in frames[0]] == [0, 1]


@pytest.fixture(scope="module")
def ray_rerun(tree: Path, ray_run) -> Result:
    return batch(tree / "in", "--engine", "ray", "--out", tree / "R", *FAST)


def test_ray_rerun_skips_finished_inputs(tree: Path, ray_run, ray_rerun: Result) -> None:
    _, before = ray_run
    assert ray_rerun.exit_code == 0, ray_rerun.stderr
    assert mtimes(tree / "R") == before  # nothing redone
    assert ray_rerun.stderr.count("skip ") == 3
    printed = json_lines(ray_rerun)
    assert len(printed) == 3 and next(p for p in printed if "frames" in p)["skipped"] is True


def test_ray_overwrite_redoes_and_a_bad_input_fails_alone(tree: Path, ray_run, ray_rerun: Result) -> None:
    _, before = ray_run
    run = batch(tree / "in", tree / "broken.jpg", "--engine", "ray", "--out", tree / "R", "--overwrite", *FAST)
    assert run.exit_code == 1, run.stderr
    [line] = error_lines(run)
    assert "broken.jpg" in line and "not an image or corrupt" in line
    assert len(run.stderr.splitlines()) == 4  # one line per input
    printed = json_lines(run)
    [failed] = [p for p in printed if "error" in p]
    assert failed["input"] == str(tree / "broken.jpg") and line.endswith(failed["error"])
    assert len(printed) == 4
    after = mtimes(tree / "R")
    assert set(after) == OUTPUTS  # nothing at all for the broken input
    assert all(after[name] != before[name] for name in OUTPUTS if not name.startswith("sub/clip_meshes"))


@pytest.mark.parametrize(
    "args, words",
    [
        pytest.param(["--engine", "ray", "--gpus-per-worker", "1"], ["--gpus-per-worker", "0 GPUs"], id="no-gpus"),
        pytest.param(["--engine", "local", "--workers", "2"], ["--engine ray"], id="workers-without-ray"),
        pytest.param(["--engine", "spark"], ["--engine", "'local', 'ray'", "batch --help"], id="unknown-engine"),
    ],
)
def test_usage_errors(tree: Path, ray_cluster: ModuleType, args: list[str], words: list[str]) -> None:
    run = batch(tree / "in", "--out", tree / "U", *args, *FAST)
    assert run.exit_code == 2, run.stderr
    [line] = error_lines(run)
    assert all(word in line for word in words), line
    assert run.stdout == "" and not (tree / "U").exists()


def test_ray_engine_without_ray_says_how_to_install(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    run = batch(tree / "in", "--engine", "ray", "--out", tree / "N", *FAST)
    assert run.exit_code == 2, run.stderr
    [line] = error_lines(run)
    assert "pip install 'bodyfit[ray]'" in line
    assert run.stdout == "" and not (tree / "N").exists()


def test_unreachable_ray_address_fails_at_once_with_one_line(tree: Path) -> None:
    """A cluster address nothing answers at (here a closed local port: the connection is refused): one error
    line and the usage-error status at once, where Ray itself would retry for minutes without a word."""
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a free port; nothing listens on it once closed
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    command = [
        sys.executable,
        "-m",
        "bodyfit_cli",
        "batch",
        str(tree / "in"),
        "--engine",
        "ray",
        "--address",
        address,
        "--out",
        str(tree / "A"),
        *FAST,
    ]
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 60  # mostly starting Python and importing torch and Ray
    assert run.returncode == 2 and run.stdout == "", run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith("bodyfit: error: cannot reach the Ray cluster at " + address) and "refused" in line, line
    assert not (tree / "A").exists()


def test_ray_address_that_does_not_answer_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """An address whose packets go nowhere (a firewall, a host that is down) gives up after the timeout."""
    from bodyfit_cli.batch import ray_engine
    from bodyfit_cli.errors import EngineError

    asked = []

    def silent(address: tuple[str, int], timeout: float) -> socket.socket:
        asked.append((address, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(ray_engine.socket, "create_connection", silent)
    address = "ray://10.255.255.1:10001"
    with pytest.raises(EngineError, match=f"cannot reach the Ray cluster at {address}: no answer within 30 s"):
        ray_engine.check_reachable(address)
    assert asked == [(("10.255.255.1", 10001), ray_engine.CONNECT_TIMEOUT_S)]
    for left_to_ray in (None, "auto", "local", "not-an-address"):
        ray_engine.check_reachable(left_to_ray)
    assert len(asked) == 1


def test_interrupted_run_leaves_only_finished_results_and_resumes(tmp_path: Path) -> None:
    """Ctrl-C after the first result: every result there is complete, no temporary is left, and the next
    run does only the inputs that were not finished."""
    names = ["standing_front", "lunge_side", "walking_30deg", "waving_back"]
    for i, name in enumerate(names):
        (tmp_path / "in" / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / f"{name}.jpg", tmp_path / "in" / f"d{i % 2}")
    command = [sys.executable, "-m", "bodyfit_cli", "image", "in", "--out", "I", "--method", "smplify", "--no-render"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )

    def results() -> list[Path]:  # not the hidden temporaries (.<stem>.tmp-<hex>.json) a result is written to first
        return [p for p in (tmp_path / "I").rglob("*.json") if not p.name.startswith(".")]

    deadline = time.monotonic() + 120
    while not results() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in stderr, stderr  # stopped before the end, quietly
    finished = sorted(p.relative_to(tmp_path / "I").with_suffix("") for p in results())
    assert 1 <= len(finished) < len(names), stderr
    present = files_under(tmp_path / "I")
    assert not [name for name in present if Path(name).name.startswith(".")], present  # no temporaries
    for stem in finished:
        result = json.loads((tmp_path / "I" / f"{stem}.json").read_text())
        assert len(result["people"]) == 1 and f"{stem}.npz" in present and f"{stem}_p0.obj" in present
        with np.load(tmp_path / "I" / f"{stem}.npz") as npz:
            assert npz["body_pose"].shape == (1, 69)

    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    skipped = [line for line in rerun.stderr.splitlines() if line.startswith("skip ")]
    assert len(skipped) == len(finished), rerun.stderr
    assert len(rerun.stderr.splitlines()) == len(names)
    assert len(list((tmp_path / "I").rglob("*.json"))) == len(names)
