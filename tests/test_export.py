"""Per-track animation files (`bodyfit video --export`): BVH, glTF binary and AMASS-style .npz, each read back
(BVH and AMASS by bodyfit's own mocap readers, the .glb by a small reader here that poses the joints and the
mesh from the file's nodes, skin and animation) to the joints of the fitted bodies, within a millimetre.

The motion is made from the body model itself: random poses, shapes that vary from frame to frame (a track is
exported with its last), a pelvis that moves, and frames missing in the middle, as a track has when its
person is not found for a while.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.export.amass import Y_UP_TO_Z_UP, write_amass
from bodyfit_cli.export.bvh import BVH_JOINT_NAMES, write_bvh
from bodyfit_cli.export.gltf import write_glb
from bodyfit_cli.export.motion import (
    CAMERA_TO_Y_UP,
    MotionRecorder,
    TrackMotion,
    forward_kinematics,
    gravity_up,
    level_turn,
    rest_body,
)
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.mocap import read_amass, read_bvh
from bodyfit_cli.options import EXPORT_FORMATS, Options, clip_outputs, parse_exports
from bodyfit_cli.results import Fitted
from bodyfit_cli.vocabulary import SMPL_JOINT_NAMES, SMPL_PARENTS
from tests.test_video import bodyfit, read_jsonl, write_clip

MM = 1e-3
FPS, STEP, FIRST = 30.0, 2, 10
ROWS = 9
MISSING = (3, 4, 5)  # rows of track 0 whose person was not found


@pytest.fixture(scope="module")
def model() -> BodyModel:
    return BodyModel(load_body_model("default"))


def fake_fits(model: BodyModel) -> tuple[MotionRecorder, dict[int, list[tuple[int, BodyParams]]]]:
    """Two tracks' fits, frame by frame, fed to a recorder; and each track's (row, params) in the camera frame."""
    g = torch.Generator().manual_seed(0)
    recorder = MotionRecorder(STEP, FPS)
    fits: dict[int, list[tuple[int, BodyParams]]] = {0: [], 1: []}
    for row in range(ROWS):
        ids = [0, 1] if row not in MISSING else [1]
        n = len(ids)
        params = BodyParams(
            global_orient=torch.randn(n, 3, generator=g) * 1.5,
            body_pose=torch.randn(n, 23, 3, generator=g) * 0.35,
            betas=torch.randn(n, 10, generator=g) * 0.6,
            transl=torch.tensor([[0.05 * row - 0.5, 0.4, 3.0], [0.6, 2.0 + 0.02 * row, 4.0]])[ids],
        )
        with torch.no_grad():
            body = params.pose(model, vertices=True)
        frame = FIRST + STEP * row
        recorder.add(frame, frame / FPS, ids, Fitted(params, body, None, None))  # type: ignore[arg-type]
        for i, tid in enumerate(ids):
            fits[tid].append((row, params.select(torch.tensor([i]))))
    return recorder, fits


@pytest.fixture(scope="module")
def recorded(model: BodyModel) -> tuple[list[TrackMotion], dict[int, list[tuple[int, BodyParams]]]]:
    recorder, fits = fake_fits(model)
    return recorder.motions(), fits


def expected_joints(model: BodyModel, motion: TrackMotion, fits: list[tuple[int, BodyParams]]) -> np.ndarray:
    """(rows, 24, 3) the fitted bodies' joints in the world frame: each frame's pose, the pelvis where the fit put
    it, the track's final shape (a BVH skeleton has one)."""
    rows = [row for row, _ in fits]
    params = BodyParams(
        *(torch.cat([getattr(p, k) for _, p in fits]) for k in ("global_orient", "body_pose", "betas", "transl"))
    )
    with torch.no_grad():
        pelvis = params.pose(model).joints[:, 0]
        betas = torch.as_tensor(motion.betas, dtype=torch.float32).expand(len(rows), -1)
        joints = (
            BodyParams(params.global_orient, params.body_pose, betas, pelvis - model.root_position(betas))
            .pose(model)
            .joints
        )
    world = motion.camera_to_world
    return joints.double().numpy() @ world[:3, :3].T + world[:3, 3]


# --- the motion ---------------------------------------------------------------------------------


def test_motion_is_the_fitted_bodies_on_a_uniform_grid_in_a_y_up_world(model, recorded) -> None:
    motions, fits = recorded
    assert [m.track_id for m in motions] == [0, 1]
    for motion in motions:
        assert motion.num_frames == ROWS and motion.fps == FPS / STEP and motion.start_time_s == FIRST / FPS
        assert motion.frames.tolist() == [FIRST + STEP * k for k in range(ROWS)]
        rows = [row for row, _ in fits[motion.track_id]]
        assert motion.fitted.tolist() == [k in rows for k in range(ROWS)]
        assert np.array_equal(motion.camera_to_world[:3, :3], CAMERA_TO_Y_UP)  # both tracks, one world
        np.testing.assert_allclose(motion.betas, fits[motion.track_id][-1][1].betas[0].numpy(), atol=1e-6)
        joints = forward_kinematics(rest_body(model, motion.betas).joints, motion.rotations, motion.pelvis)
        np.testing.assert_allclose(joints[rows], expected_joints(model, motion, fits[motion.track_id]), atol=0.1 * MM)
    # The floor (y = 0): each track stands on the 20th percentile of its body's lowest points, frame by frame; the
    # floor is the lower of the two (track 1, 1.6 m lower in the camera), one world for both.
    assert np.array_equal(motions[0].camera_to_world, motions[1].camera_to_world)
    to_world = motions[0].camera_to_world
    stands_on = {}
    for tid, track in fits.items():
        lowest = []
        for _, params in track:
            with torch.no_grad():
                vertices = params.pose(model, vertices=True).vertices[0].double().numpy()
            lowest.append((vertices @ to_world[:3, :3].T + to_world[:3, 3])[:, 1].min())
        stands_on[tid] = np.percentile(lowest, 20)
    assert stands_on[1] == pytest.approx(0, abs=1e-6) and stands_on[0] > 0.01


def walk_seen_by(pitch_deg: float, across: bool, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upright people walking on a floor, seen by a camera turned y up and pitched down by `pitch_deg`: their
    lowest points (planted feet, some frames in the air) and trunks (leaning 4 degrees the way they walk, with
    sway), in that camera's frame; and the true up there. `across`: the walk covers an area, not a line."""
    t = np.linspace(0, 1, 120)
    path = np.stack([4 * t - 2, np.zeros_like(t), np.sin(6 * t) * (1.5 if across else 0.05)], -1)
    lowest = path + np.where(g.random(len(t)) < 0.2, 0.15, 0.0)[:, None] * [0, 1, 0]  # a fifth in the air
    lean = np.radians(4.0)
    trunks = np.array([np.sin(lean), np.cos(lean), 0.0]) * 0.5 + g.normal(0, 0.02, (len(t), 3))
    p = np.radians(pitch_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return lowest @ pitch.T + [0, -1.0, -5.0], trunks @ pitch.T, pitch @ [0, 1, 0]


@pytest.mark.parametrize("across", [False, True], ids=["line", "area"])
@pytest.mark.parametrize("pitch", [0.0, 12.0])
def test_gravity_is_found_from_the_bodies_for_a_pitched_camera(pitch: float, across: bool) -> None:
    lowest, trunks, true_up = walk_seen_by(pitch, across, np.random.default_rng(1))
    up = gravity_up(lowest, trunks)
    assert np.degrees(np.arccos(min(1.0, up @ true_up))) < 1.0  # the walk's lean and the camera's pitch both taken out
    turned = lowest @ level_turn(up).T
    planted = turned[turned[:, 1] <= np.percentile(turned[:, 1], 50), 1]
    assert np.ptp(planted) < 0.02  # the planted feet on one level floor


def test_bodies_that_show_no_up_leave_the_camera_level() -> None:
    lowest, trunks, _ = walk_seen_by(12.0, False, np.random.default_rng(2))
    lying = trunks @ np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1.0]]).T  # every trunk turned 90 degrees: lying
    tumbling = np.random.default_rng(3).normal(size=trunks.shape)  # no agreement at all
    for bad in (lying, tumbling):
        assert np.array_equal(gravity_up(lowest, bad), [0.0, 1.0, 0.0])


def test_missing_frames_are_turned_along_the_shortest_arc_in_proportion_to_time(recorded) -> None:
    motion = recorded[0][0]
    before, after = MISSING[0] - 1, MISSING[-1] + 1
    a, b = motion.rotations[before], motion.rotations[after]

    def angle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        cos = (np.trace(np.swapaxes(x, -1, -2) @ y, axis1=-2, axis2=-1) - 1) / 2
        return np.arccos(np.clip(cos, -1, 1))

    total = angle(a, b)
    for row in MISSING:
        s = (row - before) / (after - before)
        np.testing.assert_allclose(angle(a, motion.rotations[row]), s * total, atol=1e-6)
        np.testing.assert_allclose(angle(motion.rotations[row], b), (1 - s) * total, atol=1e-6)
        np.testing.assert_allclose(motion.pelvis[row], (1 - s) * motion.pelvis[before] + s * motion.pelvis[after])


# --- the files, read back -----------------------------------------------------------------------


def test_bvh_read_back_by_bodyfit_gives_the_joints_at_every_frame(model, recorded, tmp_path: Path) -> None:
    motions, fits = recorded
    for motion in motions:
        rest = rest_body(model, motion.betas)
        write_bvh(tmp_path / "t.bvh", motion, rest)
        clip = read_bvh(tmp_path / "t.bvh")  # the unit guessed from the skeleton's size: metres
        assert clip.joint_names == SMPL_JOINT_NAMES and clip.fps == pytest.approx(FPS / STEP)
        rows = [row for row, _ in fits[motion.track_id]]
        np.testing.assert_allclose(clip.positions[rows], expected_joints(model, motion, fits[motion.track_id]), atol=MM)
        truth = forward_kinematics(rest.joints, motion.rotations, motion.pelvis)
        np.testing.assert_allclose(clip.positions, truth, atol=MM)  # the interpolated frames too
    text = (tmp_path / "t.bvh").read_text()
    assert "ROOT Pelvis" in text and text.count("End Site") == 5  # head, hands, feet
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    assert f"Frames: {ROWS}" in text and "Frame Time: 0.066666667" in text


def test_amass_npz_read_back_by_bodyfit_gives_the_joints(model, recorded, tmp_path: Path) -> None:
    motions, fits = recorded
    for motion in motions:
        rest = rest_body(model, motion.betas)
        write_amass(tmp_path / "t_poses.npz", motion, rest, "default")
        clip = read_amass(tmp_path / "t_poses.npz")
        assert clip.fps == FPS / STEP and clip.gender == "neutral" and clip.global_orient.shape == (ROWS, 3)
        n = len(clip.trans)
        params = BodyParams(
            torch.as_tensor(clip.global_orient),
            torch.as_tensor(clip.body_pose).view(n, 23, 3),
            torch.as_tensor(clip.betas).expand(n, -1),
            torch.as_tensor(clip.trans),
        )
        with torch.no_grad():
            joints = params.pose(model).joints.double().numpy()
        rows = [row for row, _ in fits[motion.track_id]]
        z_up = expected_joints(model, motion, fits[motion.track_id]) @ Y_UP_TO_Z_UP.T
        np.testing.assert_allclose(joints[rows], z_up, atol=MM)
        with np.load(tmp_path / "t_poses.npz") as npz:
            assert npz["poses"].shape == (ROWS, 72) and str(npz["body_model"]) == "default"
            assert npz["frame"].tolist() == motion.frames.tolist()
            assert npz["fitted"].tolist() == motion.fitted.tolist()
            # camera_to_world takes the camera's points to the file's: the first fitted frame's pelvis.
            camera_pelvis = fits[motion.track_id][0][1].pose(model).joints[0, 0].double().numpy()
            world = npz["camera_to_world"] @ np.append(camera_pelvis, 1.0)
            np.testing.assert_allclose(world[:3], joints[rows[0], 0], atol=MM)


# A small glTF reader: what a viewer does with the file, from the spec, nothing of bodyfit's.
GLB_JSON, GLB_BIN = 0x4E4F534A, 0x004E4942
COMPONENTS = {5126: np.dtype("<f4"), 5125: np.dtype("<u4"), 5123: np.dtype("<u2"), 5121: np.dtype("u1")}
WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def read_glb(path: Path) -> tuple[dict, list[np.ndarray]]:
    """The JSON document and every accessor's array, checking the container and the layout on the way."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == GLB_JSON and json_length % 4 == 0
    document = json.loads(data[20 : 20 + json_length])
    bin_length, bin_type = struct.unpack_from("<II", data, 20 + json_length)
    assert bin_type == GLB_BIN and bin_length % 4 == 0 and 28 + json_length + bin_length == len(data)
    binary = data[28 + json_length :]
    [buffer] = document["buffers"]
    assert "uri" not in buffer and buffer["byteLength"] <= bin_length
    arrays = []
    for accessor in document["accessors"]:
        view = document["bufferViews"][accessor["bufferView"]]
        dtype, width = COMPONENTS[accessor["componentType"]], WIDTHS[accessor["type"]]
        start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
        size = accessor["count"] * width * dtype.itemsize
        assert start % dtype.itemsize == 0 and accessor.get("byteOffset", 0) + size <= view["byteLength"]
        assert view.get("byteOffset", 0) + view["byteLength"] <= buffer["byteLength"]
        array = np.frombuffer(binary, dtype, accessor["count"] * width, start).reshape(accessor["count"], width)
        if "min" in accessor:
            np.testing.assert_allclose(array.min(0), accessor["min"], rtol=1e-6)
            np.testing.assert_allclose(array.max(0), accessor["max"], rtol=1e-6)
        arrays.append(array)
    return document, arrays


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """glTF's (x, y, z, w) unit quaternion -> 3x3 rotation."""
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def sample(times: np.ndarray, values: np.ndarray, t: float, rotation: bool) -> np.ndarray:
    """A LINEAR sampler at time t (slerp for rotations, as the spec says)."""
    k = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2))
    s = float(np.clip((t - times[k]) / (times[k + 1] - times[k]), 0, 1))
    a, b = values[k].astype(np.float64), values[k + 1].astype(np.float64)
    if not rotation:
        return (1 - s) * a + s * b
    dot = float(a @ b)
    b = -b if dot < 0 else b
    theta = np.arccos(min(abs(dot), 1.0))
    if theta < 1e-9:
        return a
    return (np.sin((1 - s) * theta) * a + np.sin(s * theta) * b) / np.sin(theta)


def pose_glb(document: dict, arrays: list[np.ndarray], t: float) -> np.ndarray:
    """(nodes, 4, 4) every node's world transform at time t: the nodes' TRS, the animation's values in place."""
    trs = [
        {
            "translation": np.array(n.get("translation", [0.0, 0.0, 0.0])),
            "rotation": np.array(n.get("rotation", [0.0, 0.0, 0.0, 1.0])),
            "scale": np.array(n.get("scale", [1.0, 1.0, 1.0])),
        }
        for n in document["nodes"]
    ]
    [animation] = document["animations"]
    for channel in animation["channels"]:
        sampler = animation["samplers"][channel["sampler"]]
        assert sampler["interpolation"] == "LINEAR"
        path = channel["target"]["path"]
        times = arrays[sampler["input"]][:, 0]
        assert np.all(np.diff(times) > 0)
        trs[channel["target"]["node"]][path] = sample(times, arrays[sampler["output"]], t, path == "rotation")
    world = np.zeros((len(trs), 4, 4))

    def visit(i: int, parent: np.ndarray) -> None:
        local = np.eye(4)
        q = trs[i]["rotation"]
        assert abs(np.linalg.norm(q) - 1) < 1e-5
        local[:3, :3] = quaternion_matrix(q / np.linalg.norm(q)) * trs[i]["scale"]
        local[:3, 3] = trs[i]["translation"]
        world[i] = parent @ local
        for child in document["nodes"][i].get("children", []):
            visit(child, world[i])

    for root in document["scenes"][document.get("scene", 0)]["nodes"]:
        visit(root, np.eye(4))
    return world


def test_glb_posed_by_its_own_skin_and_animation_gives_the_joints_and_the_mesh(model, recorded, tmp_path: Path) -> None:
    motions, fits = recorded
    motion = motions[0]
    rest = rest_body(model, motion.betas)
    write_glb(tmp_path / "t.glb", motion, rest, generator="test")
    document, arrays = read_glb(tmp_path / "t.glb")
    assert document["asset"]["version"] == "2.0"
    [skin], [mesh] = document["skins"], document["meshes"]
    [primitive] = mesh["primitives"]
    [mesh_node] = [i for i, n in enumerate(document["nodes"]) if "mesh" in n]
    assert document["nodes"][mesh_node]["skin"] == 0 and len(skin["joints"]) == 24
    assert [document["nodes"][j]["name"] for j in skin["joints"]] == list(BVH_JOINT_NAMES)
    for j, parent in enumerate(SMPL_PARENTS):  # the joint nodes' hierarchy is SMPL's
        if parent >= 0:
            assert skin["joints"][j] in document["nodes"][skin["joints"][parent]]["children"]
    vertices = arrays[primitive["attributes"]["POSITION"]].astype(np.float64)
    normals = arrays[primitive["attributes"]["NORMAL"]]
    joints = arrays[primitive["attributes"]["JOINTS_0"]].astype(int)
    weights = arrays[primitive["attributes"]["WEIGHTS_0"]].astype(np.float64)
    faces = arrays[primitive["indices"]].reshape(-1, 3)
    assert len(vertices) == len(normals) == len(joints) == len(weights) == model.num_vertices
    assert faces.max() < len(vertices) and np.array_equal(faces, model.faces.numpy())
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(weights.sum(1), 1, atol=1e-6)
    assert joints.max() < 24 and np.all(weights >= 0) and np.all(joints[weights == 0] == 0)
    inverse_bind = arrays[skin["inverseBindMatrices"]].reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major

    times = arrays[document["animations"][0]["samplers"][0]["input"]][:, 0]
    np.testing.assert_allclose(times, motion.start_time_s + np.arange(ROWS) / motion.fps, rtol=1e-6)
    rows = [row for row, _ in fits[0]]
    expected = expected_joints(model, motion, fits[0])
    truth = forward_kinematics(rest.joints, motion.rotations, motion.pelvis)
    for row in range(ROWS):
        world = pose_glb(document, arrays, float(times[row]))
        skinning = world[skin["joints"]] @ inverse_bind  # glTF's joint matrices
        posed_joints = skinning[:, :3, :3] @ rest.joints[..., None]
        np.testing.assert_allclose(posed_joints[..., 0] + skinning[:, :3, 3], truth[row], atol=MM)
        np.testing.assert_allclose(world[skin["joints"], :3, 3], truth[row], atol=MM)
        if row in rows:
            np.testing.assert_allclose(world[skin["joints"], :3, 3], expected[rows.index(row)], atol=MM)
        # The mesh skinned by the file: the body model's own mesh (no pose correctives in the default model), up to
        # the weights beyond four per vertex.
        blended = np.einsum("vk,vkij->vij", weights, skinning[joints])
        skinned = (blended[:, :3, :3] @ vertices[..., None])[..., 0] + blended[:, :3, 3]
        if row in rows:
            p = fits[0][rows.index(row)][1]
            betas = torch.as_tensor(motion.betas, dtype=torch.float32)[None]
            with torch.no_grad():
                pelvis = p.pose(model).joints[:, 0]
                body = BodyParams(p.global_orient, p.body_pose, betas, pelvis - model.root_position(betas))
                mesh_world = body.pose(model, vertices=True).vertices[0].double().numpy()
            mesh_world = mesh_world @ motion.camera_to_world[:3, :3].T + motion.camera_to_world[:3, 3]
            error = np.linalg.norm(skinned - mesh_world, axis=1)
            assert np.median(error) < 0.1 * MM and error.max() < 20 * MM, (np.median(error), error.max())
    # Between two keys, the file's own interpolation (what a viewer plays) moves the pelvis along a line.
    mid = pose_glb(document, arrays, float(times[0] + times[1]) / 2)
    np.testing.assert_allclose(mid[0, :3, 3], (truth[0, 0] + truth[1, 0]) / 2, atol=MM)


# --- options and the command --------------------------------------------------------------------


def test_export_option_values() -> None:
    assert parse_exports("bvh,glb,amass") == EXPORT_FORMATS == parse_exports("amass, GLB,bvh")
    assert parse_exports("glb") == ("glb",) and parse_exports("none") == ()
    for bad in ("fbx", "", "bvh,none", "bvh;glb"):
        with pytest.raises(ValueError, match="--export takes bvh, glb, amass"):
            parse_exports(bad)
    item = InputItem(Path("clips/walk.mp4"), Path("walk.mp4"))
    assert clip_outputs(Options(out=Path("o")), 10, ("bvh",), item)["animation"] == "o/walk_animation"
    assert clip_outputs(Options(out=Path("o")), 10, (), item)["animation"] is None


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """`bodyfit video` on a 12-frame, 10 fps clip from 0.1 s, every third frame: frames 1, 4, 7, 10."""
    root = tmp_path_factory.mktemp("export")
    write_clip(root / "walk.mp4")
    run = bodyfit(
        "walk.mp4",
        "--out",
        "D",
        "--method",
        "lgd",
        "--max-people",
        "1",
        "--no-render",
        "--mesh-every",
        "0",
        "--start",
        "0.1",
        "--stride",
        "3",
        "--json",
        cwd=root,
    )
    assert run.returncode == 0, run.stderr
    return root / "D", json.loads(run.stdout)


def test_video_writes_each_tracks_animation_beside_its_results(model, clip_run) -> None:
    out, summary = clip_run
    assert summary["outputs"]["animation"] == "D/walk_animation"
    names = sorted(p.name for p in (out / "walk_animation").iterdir())
    assert names == ["walk_t0.bvh", "walk_t0.glb", "walk_t0_poses.npz"]
    lines = read_jsonl(out / "walk.jsonl")
    assert [line["frame"] for line in lines] == [1, 4, 7, 10]
    people = [line["people"][0] for line in lines]

    clip = read_bvh(out / "walk_animation" / "walk_t0.bvh")
    assert clip.fps == pytest.approx(10 / 3) and clip.num_frames == 4
    with np.load(out / "walk_animation" / "walk_t0_poses.npz") as npz:
        assert npz["frame"].tolist() == [1, 4, 7, 10] and npz["fitted"].all()
        betas = torch.as_tensor(npz["betas"], dtype=torch.float32)
        to_world = npz["camera_to_world"]
    np.testing.assert_allclose(betas.numpy(), people[-1]["betas"], atol=1e-6)  # the track's final shape
    # The jsonl's fits, each re-posed with the final shape, the pelvis in place: the BVH's joints.
    orient = torch.tensor([p["global_orient"] for p in people])
    pose = torch.tensor([p["body_pose"] for p in people]).view(-1, 23, 3)
    pelvis = torch.tensor([p["joints3d"][0] for p in people])
    betas = betas.expand(len(people), -1)
    with torch.no_grad():
        joints = (
            BodyParams(orient, pose, betas, pelvis - model.root_position(betas)).pose(model).joints.double().numpy()
        )
    z_up = (np.concatenate([joints, np.ones((*joints.shape[:2], 1))], -1) @ to_world.T)[..., :3]  # the npz's world
    np.testing.assert_allclose(clip.positions, z_up @ Y_UP_TO_Z_UP, atol=MM)  # the BVH's, y up

    document, arrays = read_glb(out / "walk_animation" / "walk_t0.glb")
    times = arrays[document["animations"][0]["samplers"][0]["input"]][:, 0]
    np.testing.assert_allclose(times, [0.1, 0.4, 0.7, 1.0], rtol=1e-6)  # the clip's times
    # Standing, y up: the head above the pelvis, the pelvis above the floor (y = 0) by about a leg's length.
    heights = clip.positions[..., 1]
    assert np.all(heights[:, SMPL_JOINT_NAMES.index("head")] > heights[:, 0])
    assert np.all((0.6 < heights[:, 0]) & (heights[:, 0] < 1.3)), heights[:, 0]


def test_bad_export_is_a_usage_error(tmp_path: Path) -> None:
    run = bodyfit("none.mp4", "--export", "bvh,fbx", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "bodyfit: error: --export takes bvh, glb, amass (comma-separated) or none, not 'bvh,fbx'"
    ]
