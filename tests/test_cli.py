"""End-to-end tests of `bodyfit image`: the real CLI in a subprocess, checked against CONTRACT.md.

Keypoints come from JSON files the tests write, made by projecting the default body model posed
in front of a known camera, so the tests need no detector and know where every point should land.
Each CLI start costs a few seconds (torch), so runs are shared through module-scoped fixtures, the
independent error runs go side by side, and errors that stop before any fitting are checked in this
process through Typer's runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner, Result

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.cli import app
from bodyfit_cli.detection.mappings import OPENPOSE_BODY_25_NAMES, OPENPOSE_BODY_25_TO_OURS
from bodyfit_cli.fitting.init import FACING_CAMERA, relaxed_pose
from bodyfit_cli.geometry.camera import default_focal, project
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, LIMB_KEYPOINTS, SMPL_JOINT_INDEX

# A portrait photo, so that the whole body 3 m from the camera lies inside it.
W, H = 480, 640
DEPTH_M = 3.0
PERSON_FIELDS = {
    "id",
    "bbox",
    "score",
    "camera",
    "translation",
    "global_orient",
    "body_pose",
    "betas",
    "joints3d",
    "keypoints3d",
    "keypoints2d",
    "reprojection_error_px",
    "mesh",
}
GRAY = 128


# --- helpers ------------------------------------------------------------------------------------


def bodyfit(*args: str | Path, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m bodyfit_cli image ARGS...` and capture stdout and stderr apart."""
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_MODEL_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "bodyfit_cli", "image", *map(str, args)],
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def error_lines(run: subprocess.CompletedProcess | Result) -> list[str]:
    """stderr's lines, after checking it holds only one-line errors and no traceback."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines and all(line.startswith("bodyfit: error: ") for line in lines), run.stderr
    return lines


def files_under(root: Path) -> set[str]:
    """Every file below root (hidden ones too, to catch leftover temporaries), relative, as posix."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def mtimes(root: Path) -> dict[str, int]:
    return {name: (root / name).stat().st_mtime_ns for name in files_under(root)}


def openpose_json(uv: np.ndarray | None, confidence: float = 0.9) -> dict:
    """An OpenPose BODY_25 file with one person at `uv` (K, 2, our order), or nobody when None."""
    if uv is None:
        return {"version": 1.3, "people": []}
    flat: list[float] = []
    for name in OPENPOSE_BODY_25_NAMES:
        ours = OPENPOSE_BODY_25_TO_OURS.get(name)
        if ours is None:  # Neck, MidHip, small toes: not in our vocabulary, not given
            flat += [0.0, 0.0, 0.0]
        else:
            u, v = uv[KEYPOINT_INDEX[ours]]
            flat += [float(u), float(v), confidence]
    return {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": flat}]}


def synthetic_keypoints() -> np.ndarray:
    """(K, 2) pixels of the default body, upright facing the camera DEPTH_M away, one elbow and
    one knee bent, projected with the camera bodyfit assumes by default (focal = diagonal)."""
    model = BodyModel(load_body_model("default"))
    pose = relaxed_pose(1, torch.device("cpu"), torch.float32)
    pose[0, SMPL_JOINT_INDEX["left_elbow"] - 1] = torch.tensor([0.0, -0.6, 0.0])
    pose[0, SMPL_JOINT_INDEX["right_knee"] - 1] = torch.tensor([0.4, 0.0, 0.0])
    orient = torch.tensor([FACING_CAMERA], dtype=torch.float32)
    with torch.no_grad():
        body = model(
            axis_angle_to_matrix(orient),
            axis_angle_to_matrix(pose),
            torch.zeros(1, 10),
            torch.tensor([[0.0, 0.0, DEPTH_M]]),
        )
    f = default_focal(W, H)
    uv = project(body.keypoints, torch.tensor([[f, f]]), torch.tensor([[W / 2, H / 2]]))[0].numpy()
    assert (uv > 0).all() and (uv < [W, H]).all(), "the synthetic person must lie inside the image"
    return uv.astype(np.float64)


def write_gray_image(path: Path, width: int = W, height: int = H) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), GRAY, np.uint8))


@dataclass
class Scene:
    root: Path
    uv: np.ndarray  # (K, 2) where the keypoints are, in our order
    num_vertices: int


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    root = tmp_path_factory.mktemp("cli")
    uv = synthetic_keypoints()
    write_gray_image(root / "img.png")
    (root / "kp.json").write_text(json.dumps(openpose_json(uv)))
    (root / "nobody.json").write_text(json.dumps(openpose_json(None)))
    return Scene(root, uv, load_body_model("default").v_template.shape[0])


# --- one image, fitted for real -----------------------------------------------------------------


@dataclass
class FirstRun:
    run: subprocess.CompletedProcess
    mtimes: dict[str, int]  # of the files it wrote, taken right after it (later runs reuse D)
    result: dict  # D/img.json as it wrote it
    arrays: dict[str, np.ndarray]  # D/img.npz as it wrote it


@pytest.fixture(scope="module")
def first_run(scene: Scene) -> FirstRun:
    run = bodyfit("img.png", "--keypoints", "kp.json", "--out", "D", "--no-render", "--json", cwd=scene.root)
    out = scene.root / "D"
    assert run.returncode == 0, run.stderr
    with np.load(out / "img.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    return FirstRun(run, mtimes(out), json.loads((out / "img.json").read_text()), arrays)


def test_json_lines_output(first_run: FirstRun) -> None:
    run = first_run.run
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.endswith("\n") and len(run.stdout.splitlines()) == 1, run.stdout
    printed = json.loads(run.stdout)
    assert printed == first_run.result
    assert "img.png" in run.stderr  # progress and messages go to stderr


def test_image_result_follows_contract(scene: Scene, first_run: FirstRun) -> None:
    out = scene.root / "D"
    assert set(first_run.mtimes) == {"img.json", "img.npz", "img_p0.obj"}  # no overlay with --no-render
    result = first_run.result
    assert result["input"] == "img.png"
    assert result["image_size"] == [W, H]
    assert result["method"] == "smplify" and result["body_model"] == "default"
    assert set(result["timing_ms"]) >= {"detect", "fit", "render", "total"}
    assert all(v >= 0 for v in result["timing_ms"].values())
    [person] = result["people"]
    assert set(person) >= PERSON_FIELDS
    assert person["id"] == 0
    assert 0 < person["score"] <= 1
    x0, y0, x1, y1 = person["bbox"]
    assert x0 <= scene.uv[:, 0].min() and x1 >= scene.uv[:, 0].max()
    assert y0 <= scene.uv[:, 1].min() and y1 >= scene.uv[:, 1].max()
    f = default_focal(W, H)
    assert person["camera"] == {"focal": [pytest.approx(f)] * 2, "center": [W / 2, H / 2]}
    assert len(person["translation"]) == 3 and len(person["global_orient"]) == 3
    assert len(person["body_pose"]) == 69 and len(person["betas"]) == 10
    assert all(isinstance(x, float) for x in person["body_pose"] + person["betas"])
    assert np.array(person["joints3d"]).shape == (24, 3)
    assert list(person["keypoints3d"]) == list(KEYPOINT_NAMES)  # the default model defines all
    assert all(len(p) == 3 for p in person["keypoints3d"].values())
    # keypoints2d are the given detections, [u, v, confidence], under vocabulary names
    assert list(person["keypoints2d"]) == list(KEYPOINT_NAMES)
    given = np.array([person["keypoints2d"][n] for n in KEYPOINT_NAMES])
    np.testing.assert_allclose(given[:, :2], scene.uv, atol=1e-3)
    np.testing.assert_allclose(given[:, 2], 0.9)
    # the mesh: one file per person, named in the result, with every vertex of the body model
    assert person["mesh"] == "img_p0.obj"
    lines = (out / "img_p0.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in lines) == scene.num_vertices
    assert sum(line.startswith("f ") for line in lines) > 0


def test_npz_holds_the_same_parameters(first_run: FirstRun) -> None:
    person, arrays = first_run.result["people"][0], first_run.arrays
    shapes = {
        "global_orient": (1, 3),
        "body_pose": (1, 69),
        "betas": (1, 10),
        "translation": (1, 3),
        "joints3d": (1, 24, 3),
        "keypoints3d": (1, len(KEYPOINT_NAMES), 3),
    }
    for key, shape in shapes.items():
        assert arrays[key].shape == shape, key
    for key in ("global_orient", "body_pose", "betas", "translation", "joints3d"):
        np.testing.assert_allclose(arrays[key][0], np.array(person[key]), rtol=1e-5, atol=1e-6, err_msg=key)
    kp3d = np.array([person["keypoints3d"][n] for n in KEYPOINT_NAMES])
    np.testing.assert_allclose(arrays["keypoints3d"][0], kp3d, rtol=1e-5, atol=1e-6)


def test_fit_is_real(scene: Scene, first_run: FirstRun) -> None:
    """keypoints3d projected with the result's camera land on the given 2D keypoints."""
    person = first_run.result["people"][0]
    kp3d = np.array([person["keypoints3d"][n] for n in KEYPOINT_NAMES])
    assert (kp3d[:, 2] > 0).all()  # in front of the camera: OpenCV frame, z forward
    (fx, fy), (cx, cy) = person["camera"]["focal"], person["camera"]["center"]
    uv = np.stack([fx * kp3d[:, 0] / kp3d[:, 2] + cx, fy * kp3d[:, 1] / kp3d[:, 2] + cy], -1)
    err = np.linalg.norm(uv - scene.uv, axis=-1)
    limbs = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]
    assert err.mean() < 3.0 and err[limbs].max() < 8.0, dict(zip(KEYPOINT_NAMES, err.round(1)))
    assert person["reprojection_error_px"] < 3.0
    # Upright (head above feet in y-down coordinates), at about the true distance, person's own
    # left on the image's right since the person faces the camera.
    assert kp3d[KEYPOINT_INDEX["nose"], 1] < kp3d[KEYPOINT_INDEX["left_ankle"], 1] - 1.0
    assert kp3d[KEYPOINT_INDEX["left_shoulder"], 0] > kp3d[KEYPOINT_INDEX["right_shoulder"], 0]
    assert abs(person["translation"][2] - DEPTH_M) < 0.3 * DEPTH_M
    joints = np.array(person["joints3d"])
    assert np.linalg.norm(joints[SMPL_JOINT_INDEX["left_wrist"]] - kp3d[KEYPOINT_INDEX["left_wrist"]]) < 0.1


# --- re-running, overwriting, rendering, --quiet ------------------------------------------------


@pytest.fixture(scope="module")
def rerun(scene: Scene, first_run: FirstRun) -> tuple[subprocess.CompletedProcess, dict[str, int]]:
    run = bodyfit("img.png", "--keypoints", "kp.json", "--out", "D", "--no-render", "--json", cwd=scene.root)
    return run, mtimes(scene.root / "D")


def test_rerun_skips_finished_work(first_run: FirstRun, rerun) -> None:
    run, after = rerun
    assert run.returncode == 0, run.stderr
    assert after == first_run.mtimes  # nothing rewritten
    assert "skip" in run.stderr and "--overwrite" in run.stderr
    assert json.loads(run.stdout) == first_run.result  # --json still prints the stored result


@pytest.fixture(scope="module")
def overwrite_run(scene: Scene, rerun) -> tuple[subprocess.CompletedProcess, dict[str, int]]:
    _, before = rerun
    run = bodyfit("img.png", "--keypoints", "kp.json", "--out", "D", "--overwrite", "--quiet", cwd=scene.root)
    return run, before


def test_overwrite_redoes_and_renders_quietly(scene: Scene, overwrite_run) -> None:
    run, before = overwrite_run
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # --quiet: nothing on stderr on success
    assert run.stdout == ""  # no --json: nothing on stdout
    after = mtimes(scene.root / "D")
    for name in ("img.json", "img.npz", "img_p0.obj"):
        assert after[name] != before[name], f"{name} was not redone with --overwrite"
    assert set(after) == {"img.json", "img.npz", "img_p0.obj", "img_overlay.png"}


def test_overlay_shows_photo_and_side_view(scene: Scene, overwrite_run) -> None:
    with Image.open(scene.root / "D" / "img_overlay.png") as im:
        im.verify()
    with Image.open(scene.root / "D" / "img_overlay.png") as im:
        assert im.size == (2 * W, H)
        overlay = np.asarray(im.convert("RGB")).astype(int)
    photo = overlay[:, :W]
    # The photo shows through away from the person; the mesh covers the person's torso.
    assert np.abs(photo[:10, :10] - GRAY).max() <= 1
    torso = scene.uv[[KEYPOINT_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]]
    u, v = torso.mean(0).round().astype(int)
    assert np.abs(photo[v - 3 : v + 4, u - 3 : u + 4] - GRAY).max() > 10
    side = overlay[:, W:]
    assert side.std() > 5  # the side view draws the body on its background


# --- start-up: a run loads what it needs, when it needs it ---------------------------------------

HEAVY_MODULES = ("torch", "mediapipe", "cv2", "numpy", "trimesh", "scipy", "pyrender", "matplotlib", "ray")


def heavy_imports(args: list[str], cwd: Path, command: str = "image") -> tuple[int, str, list[str]]:
    """(exit status, stdout, the HEAVY_MODULES loaded) of `bodyfit COMMAND ARGS` in a fresh interpreter."""
    code = (
        "import json, sys; from typer.testing import CliRunner; from bodyfit_cli.cli import app; "
        f"r = CliRunner().invoke(app, [{command!r}, *{args!r}]); "
        f"print(json.dumps([r.exit_code, r.stdout, sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_MODEL_DIR"}
    run = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    exit_code, stdout, modules = json.loads(run.stdout.splitlines()[-1])
    return exit_code, stdout, modules


def test_a_run_with_nothing_to_do_loads_no_model(scene: Scene, first_run: FirstRun) -> None:
    """Finished inputs are told from their result files before anything loads: no torch, no MediaPipe."""
    args = ["img.png", "--keypoints", "kp.json", "--out", "D", "--no-render", "--json"]
    exit_code, stdout, modules = heavy_imports(args, scene.root)
    assert exit_code == 0
    assert json.loads(stdout) == json.loads((scene.root / "D" / "img.json").read_text())
    assert modules == []


def test_a_fit_without_detection_or_overlay_loads_neither(scene: Scene) -> None:
    """With --keypoints and --no-render: torch for the fit, but no MediaPipe and no renderer (nor trimesh,
    which OBJ meshes do not need)."""
    args = ["img.png", "--keypoints", "kp.json", "--out", "S", "--no-render"]
    exit_code, _, modules = heavy_imports(args, scene.root)
    assert exit_code == 0
    assert files_under(scene.root / "S") == {"img.json", "img.npz", "img_p0.obj"}
    assert "torch" in modules and not {"mediapipe", "trimesh", "pyrender", "matplotlib", "scipy", "ray"} & set(modules)


def test_a_usage_error_comes_before_any_input_is_reported(scene: Scene, first_run: FirstRun, monkeypatch) -> None:
    """img.png is done and other.png is not: the models must load, a missing body model stops the run, and
    that one line is all it prints (no skip line first)."""
    write_gray_image(scene.root / "other.png")
    monkeypatch.chdir(scene.root)
    monkeypatch.delenv("BODYFIT_MODEL_DIR", raising=False)
    missing = ["--body-model", "smpl", "--model-dir", "nomodels"]
    args = ["image", "img.png", "other.png", "--keypoints", "kp.json", "--out", "D", *missing, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.stderr, result.exception)
    [line] = error_lines(result)
    assert "SMPL_NEUTRAL" in line and "--model-dir" in line
    assert result.stdout == ""


# --- bad input ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad(scene: Scene) -> dict[str, subprocess.CompletedProcess]:
    """Runs on bad and odd inputs, side by side (each is a separate CLI start that fits nothing)."""
    root = scene.root
    write_gray_image(root / "good.png")
    (root / "bad.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (root / "noimages").mkdir()
    (root / "noimages" / "notes.txt").write_text("not an image")
    (root / "malformed.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2, ')
    (root / "elsewhere.json").write_text(json.dumps(openpose_json(scene.uv + [3000.0, 0.0])))
    (root / "nomodels").mkdir()
    (root / "afile").write_text("in the way")
    # A tree with nested folders, a hidden folder and a non-image, plus one more image via stdin.
    write_gray_image(root / "tree" / "a" / "x.png")
    write_gray_image(root / "tree" / "b" / "c" / "y.jpg", 320, 240)
    write_gray_image(root / "tree" / ".cache" / "z.png")
    (root / "tree" / "b" / "readme.txt").write_text("not an image")
    write_gray_image(root / "elsewhere" / "solo.png")
    nobody = ("--keypoints", "nobody.json", "--no-render")
    cases = {
        "mixed": (
            ("good.png", "bad.jpg", "missing.png", "noimages", *nobody, "--out", "E_mixed", "--json", "--quiet"),
            None,
        ),
        "lone_missing": (("missing.png", *nobody, "--out", "E_lone"), None),
        "tree_and_stdin": (("tree", "-", *nobody, "--out", "T", "--json"), "elsewhere/solo.png\n\ntree/a/x.png\n"),
    }
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(bodyfit, *args, cwd=root, stdin=stdin) for name, (args, stdin) in cases.items()}
        return {name: future.result() for name, future in futures.items()}


def test_bad_inputs_fail_alone(scene: Scene, bad) -> None:
    """A corrupt image, a missing path and a folder without images fail; the good image finishes.
    With --quiet, the errors are all there is on stderr."""
    run = bad["mixed"]
    assert run.returncode == 1, run.stderr
    lines = error_lines(run)
    assert len(lines) == 3, lines
    assert any("bad.jpg" in line and "not an image or corrupt" in line for line in lines), lines
    assert any("missing.png" in line and "no such file" in line for line in lines), lines
    assert any("noimages" in line and "no images" in line for line in lines), lines
    printed = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(printed) == 4, run.stdout
    ok = [p for p in printed if "error" not in p]
    assert len(ok) == 1 and ok[0]["input"] == "good.png" and ok[0]["people"] == []
    assert sorted(p["input"] for p in printed if "error" in p) == ["bad.jpg", "missing.png", "noimages"]
    assert files_under(scene.root / "E_mixed") == {"good.json", "good.npz"}  # nothing at all for the failed ones


def test_lone_missing_path(scene: Scene, bad) -> None:
    run = bad["lone_missing"]
    assert run.returncode == 1, run.stderr
    [line] = error_lines(run)
    assert "missing.png" in line
    assert run.stdout == ""
    assert files_under(scene.root / "E_lone") == set()


# Errors that fit nothing are checked in this process through Typer's runner (the same command
# function, exit status and separate stdout/stderr) to spare a torch start for each.
@pytest.mark.parametrize(
    "args, exit_code, words",
    [
        pytest.param(
            ["img.png", "--keypoints", "malformed.json"],
            1,
            ["img.png", "malformed.json", "not JSON"],
            id="malformed-keypoints",
        ),
        pytest.param(
            ["img.png", "--keypoints", "elsewhere.json"],
            1,
            ["elsewhere.json", "outside", "480x640"],
            id="keypoints-outside-image",
        ),
        pytest.param(
            ["img.png", "--keypoints", "absent.json"], 1, ["absent.json", "no such file"], id="missing-keypoint-file"
        ),
        pytest.param(
            ["img.png", "--body-model", "smpl", "--model-dir", "nomodels"],
            2,
            [str(Path("nomodels") / "smpl" / "SMPL_NEUTRAL.pkl"), "--model-dir"],
            id="missing-body-model",
        ),
        pytest.param(["img.png", "--device", "cuda"], 2, ["cuda", "no CUDA device"], id="no-cuda"),
        pytest.param(["img.png", "--out", "afile"], 2, ["afile", "not a directory"], id="out-is-a-file"),
        pytest.param(["img.png", "--method", "nope"], 2, ["nope", "--method", "hund", "--help"], id="unknown-method"),
        pytest.param(["img.png", "--mesh-format", "stl"], 2, ["stl", "--mesh-format", "obj"], id="unknown-mesh-format"),
    ],
)
def test_one_clear_line_per_error(
    scene: Scene, bad, monkeypatch: pytest.MonkeyPatch, args: list[str], exit_code: int, words: list[str]
) -> None:
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(scene.root)
    monkeypatch.delenv("BODYFIT_MODEL_DIR", raising=False)
    out = [] if "--out" in args else ["--out", "E"]
    before = files_under(scene.root)
    result = CliRunner().invoke(app, ["image", *args, *out, "--no-render", "--json"])
    assert result.exit_code == exit_code, (result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # no uncaught exception
    [line] = error_lines(result)
    for word in words:
        assert word in line, line
    if exit_code == 1:  # a failed input: one JSON line that says so
        [printed] = [json.loads(x) for x in result.stdout.splitlines()]
        assert printed["input"] == "img.png" and line.endswith(printed["error"])
    else:  # nothing ran, nothing printed
        assert result.stdout == ""
    assert files_under(scene.root) == before  # nothing written (--out afile untouched too)
    assert (scene.root / "afile").read_text() == "in the way"


# --- inputs from folders and stdin; nobody in the picture ---------------------------------------


def test_folder_tree_is_mirrored_and_stdin_read(scene: Scene, bad) -> None:
    run = bad["tree_and_stdin"]
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "error" not in run.stderr
    # One progress line per input, no blank lines (no progress bar remnants when not a terminal).
    assert len(run.stderr.splitlines()) == 3 and all(run.stderr.splitlines()), run.stderr
    printed = [json.loads(line) for line in run.stdout.splitlines()]
    # The folder's images in sorted order (hidden folders and non-images skipped), then stdin's
    # paths, each file once although tree/a/x.png is named twice.
    assert [p["input"] for p in printed] == ["tree/a/x.png", "tree/b/c/y.jpg", "elsewhere/solo.png"]
    assert files_under(scene.root / "T") == {
        f"{stem}.{ext}" for stem in ("a/x", "b/c/y", "solo") for ext in ("json", "npz")
    }
    y = json.loads((scene.root / "T" / "b" / "c" / "y.json").read_text())
    assert y["image_size"] == [320, 240]


def test_image_without_people_is_not_an_error(scene: Scene, bad) -> None:
    run = bad["tree_and_stdin"]
    assert run.returncode == 0, run.stderr
    for line in run.stdout.splitlines():
        result = json.loads(line)
        assert result["people"] == []
        assert set(result) >= {"input", "image_size", "method", "body_model", "people", "timing_ms"}
    # The parameter file is written too, with the same keys and zero people.
    with np.load(scene.root / "T" / "a" / "x.npz") as arrays:
        assert arrays["body_pose"].shape == (0, 69) and arrays["joints3d"].shape == (0, 24, 3)


@pytest.mark.parametrize("native_logs", [False, True])
def test_native_writes_to_descriptor_2_are_dropped_unless_asked_for(native_logs: bool) -> None:
    code = (
        "import os, sys, threading\n"
        "from bodyfit_cli.cli import keep_stderr_for_bodyfit\n"
        "keep_stderr_for_bodyfit()\n"
        "thread = threading.Thread(target=os.write, args=(2, b'native\\n'))\n"
        "thread.start(); thread.join()\n"
        "print('ours', file=sys.stderr)\n"
        "raise RuntimeError('tracebacks still show')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_NATIVE_LOGS"}
    if native_logs:
        env["BODYFIT_NATIVE_LOGS"] = "1"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1
    assert ("native\n" in run.stderr) == native_logs
    assert run.stderr.replace("native\n", "").startswith("ours\nTraceback")
    assert run.stderr.rstrip().endswith("RuntimeError: tracebacks still show")


def test_a_native_crash_is_not_silent() -> None:
    """Descriptor 2 goes to /dev/null, but a crash in native code still says so on the terminal."""
    code = (
        "import ctypes\n"
        "from bodyfit_cli.cli import keep_stderr_for_bodyfit\n"
        "keep_stderr_for_bodyfit()\n"
        "ctypes.string_at(0)\n"  # reads address 0: a segmentation fault
    )
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_NATIVE_LOGS"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode != 0
    assert "Segmentation fault" in run.stderr, run.stderr
