"""The open default body model and the loaders of users' SMPL-family files."""

from __future__ import annotations

import math
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from bodyfit_cli.body.loaders import load_body_model, read_smpl_pickle
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.errors import BodyModelError
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.vocabulary import (
    KEYPOINT_INDEX,
    KEYPOINT_NAMES,
    SMPL_JOINT_INDEX,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    mirror_name,
)


@pytest.fixture(scope="module")
def data():
    return load_body_model("default")


@pytest.fixture(scope="module")
def model(data):
    return BodyModel(data)


def pose(model: BodyModel, body_pose: torch.Tensor | None = None, betas: torch.Tensor | None = None):
    b = 1 if body_pose is None else body_pose.shape[0]
    body = body_pose if body_pose is not None else torch.zeros(b, 23, 3)
    return model(
        axis_angle_to_matrix(torch.zeros(b, 3)),
        axis_angle_to_matrix(body),
        betas if betas is not None else torch.zeros(b, 10),
        vertices=True,
    )


def test_joint_order_and_parents(data):
    assert data.parents[0] in (-1, 2**32 - 1)
    assert [int(p) for p in data.parents[1:]] == list(SMPL_PARENTS[1:])
    assert SMPL_JOINT_NAMES[SMPL_PARENTS[SMPL_JOINT_INDEX["left_elbow"]]] == "left_shoulder"
    assert data.J_regressor.shape == (24, data.v_template.shape[0])
    assert np.allclose(data.J_regressor.sum(1), 1.0, atol=1e-4)
    assert np.allclose(data.weights.sum(1), 1.0, atol=1e-4)


def test_size_and_mesh(data):
    n_v = data.v_template.shape[0]
    assert 6000 <= n_v <= 14000
    mesh = trimesh.Trimesh(data.v_template, data.faces, process=False)
    assert mesh.is_watertight
    assert Path("models/default_body.npz").stat().st_size < 8e6


def test_conventions_t_pose_y_up_facing_z(model):
    out = pose(model)
    j = {n: out.joints[0, i].numpy() for i, n in enumerate(SMPL_JOINT_NAMES)}
    k = {n: out.keypoints[0, i].numpy() for i, n in enumerate(KEYPOINT_NAMES)}
    assert j["head"][1] > j["pelvis"][1] > j["left_knee"][1] > j["left_ankle"][1]  # y up
    assert j["left_shoulder"][0] > 0 > j["right_shoulder"][0]  # the body's left at +x
    assert k["nose"][2] > j["head"][2] and k["left_big_toe"][2] > k["left_heel"][2]  # facing +z
    for side in ("left", "right"):  # arms horizontal, legs straight
        arm = j[f"{side}_wrist"] - j[f"{side}_shoulder"]
        assert abs(arm[1]) < 0.01 and abs(arm[2]) < 0.01
        leg = j[f"{side}_ankle"] - j[f"{side}_hip"]
        assert abs(leg[0]) < 0.01 and abs(leg[2]) < 0.01
    height = out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min()
    assert 1.5 < float(height) < 1.9


def test_rest_joints_and_keypoints_mirror_symmetric(model):
    out = pose(model)
    mirror = np.array([-1.0, 1.0, 1.0])
    for names, points in ((SMPL_JOINT_NAMES, out.joints[0]), (KEYPOINT_NAMES, out.keypoints[0])):
        index = {n: i for i, n in enumerate(names)}
        for n, i in index.items():
            other = points[index[mirror_name(n)]].numpy() * mirror
            assert np.linalg.norm(points[i].numpy() - other) < 0.01, n


def winding_numbers(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding number of each point (1 inside a closed outward-facing surface, 0 outside)."""
    tri = vertices[faces][None] - points[:, None, None, :]  # (P, F, 3, 3)
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    dots = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
    return 2.0 * np.arctan2(det, dots).sum(1) / (4.0 * np.pi)


def test_every_joint_inside_the_mesh(model):
    out = pose(model)
    body = winding_numbers(out.vertices[0].numpy().astype(np.float64), model.faces.numpy(), out.joints[0].numpy())
    inside = body > 0.5
    assert inside.all(), [n for n, ok in zip(SMPL_JOINT_NAMES, inside) if not ok]


def test_left_elbow_rotation_moves_only_forearm_and_hand(model, data):
    body = torch.zeros(1, 23, 3)
    body[0, SMPL_JOINT_INDEX["left_elbow"] - 1] = torch.tensor([0.0, -math.pi / 2, 0.0])
    rest, bent = pose(model), pose(model, body)
    moved = (bent.vertices - rest.vertices).norm(dim=-1)[0].numpy() > 1e-3
    forearm = [SMPL_JOINT_INDEX[n] for n in ("left_elbow", "left_wrist", "left_hand")]
    owner = data.weights.argmax(1)
    assert moved.sum() > 300
    # Only vertices skinned to the forearm chain move; those at the elbow blend with the upper arm.
    share = data.weights[:, forearm].sum(1)
    assert (share[moved] > 0).all()
    assert not moved[~np.isin(owner, forearm + [SMPL_JOINT_INDEX["left_shoulder"]])].any()
    assert np.isin(owner[moved], forearm).mean() > 0.8
    j = bent.joints[0]
    # The wrist swings by 90 degrees about the elbow: forearm now points forward (+z).
    forearm_dir = (j[SMPL_JOINT_INDEX["left_wrist"]] - j[SMPL_JOINT_INDEX["left_elbow"]]).numpy()
    assert forearm_dir[2] > 0.9 * np.linalg.norm(forearm_dir)


def test_first_beta_changes_height_monotonically(model):
    values = torch.linspace(-3, 3, 13)
    betas = torch.zeros(len(values), 10)
    betas[:, 0] = values
    out = pose(model, torch.zeros(len(values), 23, 3), betas)
    heights = (out.vertices[..., 1].max(1).values - out.vertices[..., 1].min(1).values).numpy()
    assert np.all(np.diff(heights) > 0)
    assert heights[-1] - heights[0] > 0.2


def test_joints_follow_shape(model, data):
    """J_regressor is linear in the vertices, so joints move with every shape direction."""
    betas = torch.zeros(1, 10)
    betas[0, 0] = 2.0
    tall, mean = pose(model, betas=betas), pose(model)
    j_reg = torch.as_tensor(data.J_regressor)
    assert torch.allclose(tall.joints[0], j_reg @ tall.vertices[0], atol=1e-4)
    assert tall.joints[0, SMPL_JOINT_INDEX["head"], 1] > mean.joints[0, SMPL_JOINT_INDEX["head"], 1] + 0.03


def test_root_position_is_where_any_pose_leaves_the_pelvis(model):
    torch.manual_seed(1)
    rots = axis_angle_to_matrix(0.5 * torch.randn(4, 24, 3))
    betas = torch.randn(4, 10)
    out = model(rots[:, 0], rots[:, 1:], betas)
    assert torch.allclose(model.root_position(betas), out.joints[:, 0], atol=1e-5)
    assert not torch.allclose(model.root_position(betas), model.root_position(torch.zeros(4, 10)))


def test_fast_keypoints_match_full_mesh(model, data):
    """The subset-of-vertices forward pass gives the same landmarks as the full mesh."""
    torch.manual_seed(0)
    body = 0.3 * torch.randn(4, 23, 3)
    betas = torch.randn(4, 10)
    out = pose(model, body, betas)
    ids = torch.as_tensor(data.landmark_ids, dtype=torch.long)
    w = torch.as_tensor(data.landmark_weights)
    full = (out.vertices[:, ids] * w[..., None]).sum(2)
    assert torch.allclose(full, out.keypoints, atol=1e-5)


def test_loads_through_smplx(data):
    import smplx
    from smplx.utils import Struct

    struct = Struct(
        v_template=data.v_template,
        shapedirs=data.shapedirs,
        J_regressor=data.J_regressor,
        weights=data.weights,
        kintree_table=np.stack([data.parents, np.arange(24)]),
        f=data.faces,
        posedirs=np.zeros((*data.v_template.shape, 207), np.float32),
    )
    smpl = smplx.SMPL(model_path="", data_struct=struct)
    out = smpl(betas=torch.zeros(1, 10))
    assert out.vertices.shape == (1, data.v_template.shape[0], 3)
    ours = pose(BodyModel(data))
    assert torch.allclose(out.joints[0, :24], ours.joints[0], atol=1e-4)


def _fake_chumpy(monkeypatch) -> type:
    """A stand-in `chumpy.ch.Ch` class, pickled like chumpy's arrays (the value in attribute x)."""
    ch_module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

        def __getstate__(self):
            return {"x": self.x, "_dirty_vars": set()}

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    ch_module.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch_module)
    return Ch


def _write_smpl_like(path: Path, data, monkeypatch) -> None:
    from scipy import sparse

    Ch = _fake_chumpy(monkeypatch)
    n_v = data.v_template.shape[0]
    content = {
        "v_template": data.v_template.astype(np.float64),
        "shapedirs": Ch(data.shapedirs.astype(np.float64)),
        "posedirs": np.zeros((n_v, 3, 207)),
        "J_regressor": sparse.csc_matrix(data.J_regressor.astype(np.float64)),
        "weights": data.weights.astype(np.float64),
        "kintree_table": np.stack([np.where(data.parents < 0, 2**32 - 1, data.parents), np.arange(24)]),
        "f": data.faces.astype(np.uint32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(content, f, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")


def test_smpl_pickle_with_chumpy_objects_loads_without_chumpy(tmp_path, data, monkeypatch):
    _write_smpl_like(tmp_path / "smpl" / "SMPL_NEUTRAL.pkl", data, monkeypatch)
    assert "chumpy" not in sys.modules
    raw = read_smpl_pickle(tmp_path / "smpl" / "SMPL_NEUTRAL.pkl")
    assert isinstance(raw["shapedirs"], np.ndarray) and raw["shapedirs"].shape == data.shapedirs.shape
    smpl = load_body_model("smpl", tmp_path)
    assert smpl.name == "smpl"
    out = pose(BodyModel(smpl))
    ref = pose(BodyModel(data))
    assert torch.allclose(out.joints, ref.joints, atol=1e-4)
    # Limb keypoints of SMPL-family files are the model's own joints.
    k = KEYPOINT_INDEX["left_elbow"]
    assert torch.allclose(out.keypoints[0, k], out.joints[0, SMPL_JOINT_INDEX["left_elbow"]], atol=1e-4)


def test_missing_model_names_the_path_and_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("BODYFIT_MODEL_DIR", raising=False)
    with pytest.raises(BodyModelError) as e:
        load_body_model("smpl", tmp_path)
    message = str(e.value)
    assert str(tmp_path / "smpl" / "SMPL_NEUTRAL.pkl") in message
    assert "smpl.is.tue.mpg.de" in message and "\n" not in message


def test_malformed_model_file(tmp_path):
    bad = tmp_path / "smpl" / "SMPL_NEUTRAL.pkl"
    bad.parent.mkdir()
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(BodyModelError, match="malformed"):
        load_body_model("smpl", tmp_path)


def test_model_dir_from_environment(tmp_path, data, monkeypatch):
    _write_smpl_like(tmp_path / "smpl" / "SMPL_NEUTRAL.pkl", data, monkeypatch)
    monkeypatch.setenv("BODYFIT_MODEL_DIR", str(tmp_path))
    assert load_body_model("smpl").name == "smpl"


def test_smplx_npz_loads_with_body_joints_and_hand_stand_ins(tmp_path, data):
    """An SMPL-X-layout file (55 joints: body, jaw, eyes, fingers) poses through the 24-joint interface."""
    from bodyfit_cli.body.loaders import SMPLX_HAND_JOINTS

    n_v = data.v_template.shape[0]
    parents = list(data.parents[:22]) + [15, 15, 15]  # jaw and eyes hang from the head
    for wrist in (20, 21):  # 15 finger joints per hand, in chains of three from the wrist
        for _ in range(5):
            parents += [wrist, len(parents), len(parents) + 1]
    j_reg = np.zeros((55, n_v))
    j_reg[:22] = data.J_regressor[:22]
    j_reg[22:] = data.J_regressor[15]
    j_reg[25:40] = data.J_regressor[22]
    j_reg[40:55] = data.J_regressor[23]
    weights = np.zeros((n_v, 55))
    weights[:, :22] = data.weights[:, :22]
    weights[:, 20] += data.weights[:, 22]
    weights[:, 21] += data.weights[:, 23]
    (tmp_path / "smplx").mkdir()
    np.savez(
        tmp_path / "smplx" / "SMPLX_NEUTRAL.npz",
        v_template=data.v_template,
        shapedirs=data.shapedirs,
        J_regressor=j_reg,
        weights=weights,
        kintree_table=np.stack([np.array(parents), np.arange(55)]),
        f=data.faces,
        posedirs=np.zeros((n_v, 3, 54 * 9)),
    )
    smplx_data = load_body_model("smplx", tmp_path)
    model = BodyModel(smplx_data)
    assert list(smplx_data.smpl_joints[22:]) == [SMPLX_HAND_JOINTS["left_hand"], SMPLX_HAND_JOINTS["right_hand"]]
    body = torch.zeros(1, 23, 3)
    body[0, SMPL_JOINT_INDEX["left_elbow"] - 1] = torch.tensor([0.0, -math.pi / 2, 0.0])
    out, ref = pose(model, body), pose(BodyModel(data), body)
    assert out.joints.shape == (1, 24, 3)
    # The 22 body joints move exactly as on the SMPL-layout model.
    assert torch.allclose(out.joints[0, :22], ref.joints[0, :22], atol=1e-4)
    assert torch.allclose(
        out.keypoints[0, KEYPOINT_INDEX["left_wrist"]], ref.joints[0, SMPL_JOINT_INDEX["left_wrist"]], atol=1e-4
    )
