"""Tests for bodyfit_cli.mocap: hand-checked forward kinematics on tiny skeletons, CMU data when present."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bodyfit_cli.errors import InputError
from bodyfit_cli.mocap import AmassClip, MocapClip, read_amass, read_asf_amc, read_bvh, read_mocap
from bodyfit_cli.mocap.joint_maps import BVH_DAZ_TO_SMPL, CMU_ASF_TO_SMPL, bvh_joint_map
from bodyfit_cli.mocap.types import euler_matrices, matrix_to_euler
from bodyfit_cli.vocabulary import SMPL_JOINT_NAMES

CMU_DIR = Path(__file__).resolve().parents[2] / "shared" / "mocap" / "cmu"
UNIT = 0.0254 / 0.45  # metres per unit under ':units length 0.45'

# upper hangs from the root along +x; lower continues it; side points along +z from upper's end.
# lower's axis (0 0 90) turns its frame so that its rx turns it about the world's y axis.
TINY_ASF = """\
# a three-bone chain
:version 1.10
:name tiny
:units
  mass 1.0
  length 0.45
  angle deg
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name upper
     direction 1 0 0
     length 2
     axis 0 0 0 XYZ
    dof rx ry rz
    limits (-180.0 180.0)
           (-180.0 180.0)
           (-180.0 180.0)
  end
  begin
     id 2
     name lower
     direction 1 0 0
     length 1
     axis 0 0 90 XYZ
    dof rx
    limits (-90.0 90.0)
  end
  begin
     id 3
     name side
     direction 0 0 1
     length 1
     axis 0 0 0 XYZ
  end
:hierarchy
  begin
    root upper
    upper lower side
  end
"""

TINY_AMC_FRAMES = [
    # root, upper, lower
    ("0 0 0 0 0 0", "0 0 0", "0"),  # rest pose
    ("1 2 0 0 0 0", "0 0 90", "0"),  # root moved by (1, 2, 0) units, upper turned up
    ("0 0 0 0 0 0", "90 0 90", "90"),  # x then z (fixed axes) on upper; lower about world y
    ("0 0 0 0 90 0", "0 0 0", "0"),  # the whole chain turned about y
]
# Expected end points in ASF units, worked out by hand (see the comments above).
TINY_EXPECTED = {
    "root": [(0, 0, 0), (1, 2, 0), (0, 0, 0), (0, 0, 0)],
    "upper": [(2, 0, 0), (1, 4, 0), (0, 2, 0), (0, 0, -2)],
    "lower": [(3, 0, 0), (1, 5, 0), (-1, 2, 0), (0, 0, -3)],
    "side": [(2, 0, 1), (1, 4, 1), (1, 2, 0), (1, 0, -2)],
}


def tiny_amc(frames: list[tuple[str, str, str]] = TINY_AMC_FRAMES) -> str:
    body = "".join(f"{i}\nroot {r}\nupper {u}\nlower {lo}\n" for i, (r, u, lo) in enumerate(frames, 1))
    return ":FULLY-SPECIFIED\n:DEGREES\n" + body


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def tiny_asf(tmp_path: Path) -> Path:
    return write(tmp_path / "07.asf", TINY_ASF)


# --- ASF/AMC ------------------------------------------------------------------------------------


def test_asf_amc_forward_kinematics_matches_hand_computed(tiny_asf: Path) -> None:
    amc = write(tiny_asf.parent / "07_01.amc", tiny_amc())
    clip = read_asf_amc(amc, tiny_asf, raw=True)
    assert clip.joint_names == ("root", "upper", "lower", "side")
    assert clip.name == "07_01" and clip.fps == 120.0 and clip.positions.dtype == np.float32
    for name, expected in TINY_EXPECTED.items():
        np.testing.assert_allclose(clip.joint(name), np.array(expected) * UNIT, atol=1e-6, err_msg=name)


def test_asf_amc_radians_and_smpl_names(tiny_asf: Path) -> None:
    def radians(values: str, first: int = 0) -> str:
        return " ".join(v if i < first else str(np.radians(float(v))) for i, v in enumerate(values.split()))

    frames = [(radians(r, first=3), radians(u), radians(lo)) for r, u, lo in TINY_AMC_FRAMES]
    amc = write(tiny_asf.parent / "07_02.amc", tiny_amc(frames).replace(":DEGREES", ":RADIANS"))
    clip = read_mocap(amc)  # finds 07.asf beside it
    assert isinstance(clip, MocapClip)
    assert clip.joint_names == ("pelvis",)  # none of the tiny bones is a CMU bone
    np.testing.assert_allclose(clip.joint("pelvis"), np.array(TINY_EXPECTED["root"]) * UNIT, atol=1e-6)
    raw = read_asf_amc(amc, tiny_asf, raw=True)
    np.testing.assert_allclose(raw.joint("lower"), np.array(TINY_EXPECTED["lower"]) * UNIT, atol=1e-6)


def test_subsample(tiny_asf: Path) -> None:
    clip = read_asf_amc(write(tiny_asf.parent / "07_01.amc", tiny_amc()), tiny_asf, raw=True)
    half = clip.subsample(2)
    assert half.num_frames == 2 and half.fps == 60.0
    np.testing.assert_array_equal(half.positions, clip.positions[::2])


def test_cmu_table_names_smpl_joints() -> None:
    assert set(CMU_ASF_TO_SMPL.values()) <= set(SMPL_JOINT_NAMES)
    assert len(set(CMU_ASF_TO_SMPL.values())) == len(CMU_ASF_TO_SMPL)


# --- CMU data (only where ../shared/mocap is checked out) ---------------------------------------


def cmu_trial(trial: str) -> Path:
    amc = CMU_DIR / trial[:2] / f"{trial}.amc"
    if not amc.is_file():
        pytest.skip(f"CMU mocap data not available at {CMU_DIR}")
    return amc


def test_cmu_walk_is_plausible() -> None:
    amc = cmu_trial("02_01")
    clip = read_mocap(amc)
    assert isinstance(clip, MocapClip)
    frame_lines = sum(1 for line in amc.read_text().splitlines() if line.strip().isdigit())
    assert clip.num_frames == frame_lines and clip.fps == 120.0
    assert set(clip.joint_names) == set(CMU_ASF_TO_SMPL.values())
    assert (clip.joint("head")[:, 1] > clip.joint("left_ankle")[:, 1] + 1.0).all()  # upright
    assert (clip.joint("head")[:, 1] > clip.joint("right_ankle")[:, 1] + 1.0).all()
    lowest = min(clip.joint("left_foot")[:, 1].min(), clip.joint("right_foot")[:, 1].min())
    assert abs(lowest) < 0.05  # the feet touch the floor (y = 0)
    femurs = [np.linalg.norm(clip.joint(f"{s}_knee") - clip.joint(f"{s}_hip"), axis=1) for s in ("left", "right")]
    for femur in femurs:
        assert 0.3 < femur.mean() < 0.55
        assert np.ptp(femur) < 1e-4  # a rigid bone
    assert abs(femurs[0].mean() - femurs[1].mean()) < 0.01
    left, right = clip.joint("left_hip"), clip.joint("right_hip")
    forward = np.diff(clip.joint("pelvis")[[0, -1]], axis=0)[0]
    # y-up, right-handed, facing the way it walks: the left hip is on the walker's left.
    assert np.dot(np.cross(forward, [0.0, 1.0, 0.0]), (left - right).mean(0)) < 0


# --- BVH ----------------------------------------------------------------------------------------

TINY_BVH = """\
HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT LeftUpLeg
  {
    OFFSET 10 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -40 0
    }
  }
}
MOTION
Frames: 4
Frame Time: 0.0333333
0 90 0 0 0 0 0 0 0
0 90 0 90 0 0 0 90 0
0 90 0 0 0 0 90 90 0
5 90 0 0 0 90 0 0 0
"""
# Hand-computed in centimetres. Frame 3 tells ZXY (Rz @ Rx) from XZY: Rx @ Rz would give (50, 90, 0).
BVH_EXPECTED = {
    "Hips": [(0, 90, 0), (0, 90, 0), (0, 90, 0), (5, 90, 0)],
    "LeftUpLeg": [(10, 90, 0), (0, 100, 0), (10, 90, 0), (5, 90, -10)],
    "LeftUpLeg_end": [(10, 50, 0), (0, 100, -40), (10, 90, -40), (5, 50, -10)],
}


def test_bvh_forward_kinematics_matches_hand_computed(tmp_path: Path) -> None:
    clip = read_bvh(write(tmp_path / "walk.bvh", TINY_BVH), scale=0.01, raw=True)
    assert clip.joint_names == ("Hips", "LeftUpLeg", "LeftUpLeg_end")
    assert clip.fps == pytest.approx(30.0, rel=1e-5) and clip.name == "walk"
    for name, expected in BVH_EXPECTED.items():
        np.testing.assert_allclose(clip.joint(name), np.array(expected) / 100, atol=1e-6, err_msg=name)


def test_bvh_smpl_names_and_namespace(tmp_path: Path) -> None:
    text = TINY_BVH.replace("ROOT Hips", "ROOT mixamorig:Hips").replace("JOINT LeftUpLeg", "JOINT mixamorig:LeftUpLeg")
    clip = read_mocap(write(tmp_path / "walk.bvh", text))  # 40 units tall: guessed to be CMU's units
    assert isinstance(clip, MocapClip)
    assert clip.joint_names == ("pelvis", "left_hip")
    np.testing.assert_allclose(clip.joint("left_hip"), np.array(BVH_EXPECTED["LeftUpLeg"]) * UNIT, atol=1e-6)


@pytest.mark.parametrize(("leg", "scale"), [(85.0, 0.01), (0.85, 1.0), (850.0, 0.001), (15.0, UNIT)])
def test_bvh_unit_guess(tmp_path: Path, leg: float, scale: float) -> None:
    text = TINY_BVH.replace("OFFSET 0 -40 0", f"OFFSET 0 {-2 * leg} 0")  # a 1.7 m body in some unit
    text = text.replace("OFFSET 10 0 0", f"OFFSET {leg / 10} 0 0")
    clip = read_bvh(write(tmp_path / "walk.bvh", text), raw=True)
    np.testing.assert_allclose(clip.joint("Hips")[0], np.array([0, 90, 0]) * scale, rtol=1e-6)


def test_bvh_table_choice() -> None:
    cmu = ["Hips", "LeftUpLeg", "Neck", "Neck1", "Head", "LeftHand", "LeftFingerBase"]
    assert bvh_joint_map(cmu) == {
        "Hips": "pelvis",
        "LeftUpLeg": "left_hip",
        "Neck1": "neck",
        "Head": "head",
        "LeftFingerBase": "left_wrist",
    }
    mixamo = ["Hips", "LeftUpLeg", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftHand"]
    assert bvh_joint_map(mixamo)["LeftHand"] == "left_wrist" and "LeftShoulder" not in bvh_joint_map(mixamo)
    biovision = ["Hips", "LeftHip", "LeftKnee", "Chest", "LeftCollar", "LeftShoulder", "LeftElbow"]
    assert bvh_joint_map(biovision)["LeftShoulder"] == "left_shoulder"
    daz = ["hip", "abdomen", "chest", "neck", "head", "lCollar", "lShldr", "lForeArm", "lHand", "lButtock", "lThigh"]
    assert bvh_joint_map(daz) == {
        "lThigh": "left_hip",
        "neck": "neck",
        "head": "head",
        "lShldr": "left_shoulder",
        "lForeArm": "left_elbow",
        "lHand": "left_wrist",
    }


def test_cmu_daz_bvh_is_plausible() -> None:
    """The CMU BVH conversion (Daz-friendly names, centimetres) reads as an upright, symmetric body in metres."""
    bvh = CMU_DIR.parent / "cmu_bvh" / "13" / "13_01.bvh"
    if not bvh.is_file():
        pytest.skip(f"CMU BVH mocap not available at {bvh.parent.parent}")
    clip = read_bvh(bvh)
    assert clip.fps == pytest.approx(120.0, abs=1e-3) and clip.num_frames == 2314
    assert set(clip.joint_names) == set(BVH_DAZ_TO_SMPL.values())
    for side in ("left", "right"):
        assert (clip.joint("head")[:, 1] > clip.joint(f"{side}_ankle")[:, 1] + 0.8).all()  # upright, sitting too
    lowest = min(clip.joint("left_ankle")[:, 1].min(), clip.joint("right_ankle")[:, 1].min())
    assert 0.0 < lowest < 0.12  # ankles just above the floor (y = 0)
    for a, b, low, high in (
        ("hip", "knee", 0.3, 0.5),
        ("knee", "ankle", 0.35, 0.5),
        ("shoulder", "elbow", 0.22, 0.35),
        ("elbow", "wrist", 0.2, 0.3),
    ):
        left, right = (
            np.linalg.norm(clip.joint(f"{s}_{a}") - clip.joint(f"{s}_{b}"), axis=1) for s in ("left", "right")
        )
        assert low < left.mean() < high and np.ptp(left) < 1e-4  # metres, rigid
        assert abs(left.mean() - right.mean()) < 1e-4  # left-right symmetric
    # Right-handed, y up, left named left: a walker faces the way it walks, forward = left x up.
    walk = read_bvh(bvh.parents[1] / "07" / "07_01.bvh")
    left, right = walk.joint("left_hip"), walk.joint("right_hip")
    facing = np.cross(left - right, [0.0, 1.0, 0.0]).mean(0)
    travel = (left + right)[-1] / 2 - (left + right)[0] / 2
    assert np.linalg.norm(travel) > 1.0 and np.dot(facing, travel) > 0.8 * np.linalg.norm(facing) * np.linalg.norm(
        travel
    )


# --- AMASS --------------------------------------------------------------------------------------


def test_amass_reads_smpl_parameters(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    poses, trans = rng.normal(size=(5, 156)), rng.normal(size=(5, 3))
    path = tmp_path / "walk_poses.npz"
    np.savez(path, poses=poses, trans=trans, betas=np.arange(16.0), mocap_framerate=np.array(60.0), gender="female")
    clip = read_mocap(path)
    assert isinstance(clip, AmassClip)
    assert clip.global_orient.shape == (5, 3) and clip.body_pose.shape == (5, 69) and clip.trans.shape == (5, 3)
    np.testing.assert_allclose(clip.global_orient, poses[:, :3], rtol=1e-6)
    np.testing.assert_allclose(clip.body_pose[:, :63], poses[:, 3:66], rtol=1e-6)
    assert not clip.body_pose[:, 63:].any()  # SMPL's two hand joints
    np.testing.assert_array_equal(clip.betas, np.arange(10.0))
    assert clip.fps == 60.0 and clip.gender == "female" and clip.name == "walk_poses"


def test_amass_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, poses=np.zeros((5, 156)), betas=np.zeros(16), mocap_framerate=60.0)
    with pytest.raises(InputError, match=r"bad\.npz: no 'trans' array"):
        read_amass(path)
    np.savez(path, poses=np.zeros((5, 30)), trans=np.zeros((5, 3)), betas=np.zeros(16), mocap_framerate=60.0)
    with pytest.raises(InputError, match=r"'poses' should be \(T, >= 66\)"):
        read_amass(path)
    write(path, "not a zip")
    with pytest.raises(InputError, match="not a readable .npz archive"):
        read_amass(path)


# --- errors -------------------------------------------------------------------------------------


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read BVH file: .*nope\.bvh \(no such file\)"):
        read_mocap(tmp_path / "nope.bvh")
    with pytest.raises(InputError, match=r"no skeleton for .*02_01\.amc"):
        read_mocap(tmp_path / "02_01.amc")
    with pytest.raises(InputError, match=r"cannot read AMASS file: .*nope\.npz \(no such file\)"):
        read_mocap(tmp_path / "nope.npz")
    with pytest.raises(InputError, match="unknown kind"):
        read_mocap(tmp_path / "clip.fbx")


def amc_error(asf: Path, text: str) -> str:
    with pytest.raises(InputError) as info:
        read_asf_amc(write(asf.parent / "07_09.amc", text), asf)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_amc_errors_name_file_line_and_problem(tiny_asf: Path) -> None:
    good = tiny_amc()
    unknown = amc_error(tiny_asf, good.replace("upper 0 0 90", "uper 0 0 90"))
    assert re.search(r"07_09\.amc: line 9: bone 'uper' is not in the skeleton 07\.asf$", unknown)
    truncated = amc_error(tiny_asf, good.replace("upper 90 0 90", "upper 90 0"))
    assert re.search(r"07_09\.amc: line 13: bone 'upper' has 2 values, expected 3$", truncated)
    garbage = amc_error(tiny_asf, good.replace("lower 90", "lower ninety"))
    assert re.search(r"07_09\.amc: line 14: bone 'lower': not a number: 'ninety'$", garbage)
    missing = amc_error(tiny_asf, good.rsplit("lower", 1)[0])  # file cut inside the last frame
    assert re.search(r"bone 'lower' is missing from frame 4$", missing)
    assert re.search(r"no frames", amc_error(tiny_asf, ""))


def test_asf_errors(tmp_path: Path) -> None:
    amc = write(tmp_path / "07_01.amc", tiny_amc())
    cases = {
        TINY_ASF.replace("length 2\n", "length two\n"): r"07\.asf: line 18: not a number in 'two'",
        TINY_ASF.replace("upper lower side", "upper lower sid"): r"bone 'sid' in :hierarchy has no :bonedata",
        TINY_ASF.replace("dof rx\n", "dof rx l\n"): r"line 31: bone 'lower': only distinct rx ry rz dofs",
        TINY_ASF.replace("axis 0 0 90 XYZ", "axis 0 0 90 XXZ"): r"line 30: rotation order must be a permutation",
    }
    for text, pattern in cases.items():
        with pytest.raises(InputError, match=pattern):
            read_asf_amc(amc, write(tmp_path / "07.asf", text))


def test_bvh_errors(tmp_path: Path) -> None:
    cases = {
        TINY_BVH.replace("0 90 0 90 0 0 0 90 0", "0 90 0 90 0 0 0 90"): r"line 20: 8 values, expected 9",
        TINY_BVH.replace("0 90 0 90 0 0 0 90 0", "0 90 0 90 0 0 0 x 0"): r"line 20: not a number: 'x'",
        TINY_BVH.replace("Frames: 4", "Frames: 5"): r"line 17: header says 5 frames, file has 4",
        TINY_BVH.replace("OFFSET 10 0 0", "OFFSET 10 0"): r"line 9: not a number: 'CHANNELS'",
        TINY_BVH.replace("Zrotation Xrotation Yrotation\n    End", "Zrot Xrotation Yrotation\n    End"): r"line 9: ",
        TINY_BVH.split("MOTION")[0]: r"no MOTION section",
    }
    for text, pattern in cases.items():
        with pytest.raises(InputError, match=r"walk\.bvh: .*" + pattern):
            read_bvh(write(tmp_path / "walk.bvh", text))


def test_euler_angles_give_back_the_rotation_in_every_order_and_at_gimbal_lock() -> None:
    rng = np.random.default_rng(0)
    for axes in ("xyz", "xzy", "yxz", "yzx", "zxy", "zyx"):
        angles = rng.uniform(-np.pi, np.pi, (200, 3))
        angles[:, 1] /= 2.01
        angles[:10, 1] = np.pi / 2  # gimbal lock
        angles[10:20, 1] = -np.pi / 2
        rotations = euler_matrices(angles, axes)
        back = matrix_to_euler(rotations, axes)
        np.testing.assert_allclose(euler_matrices(back, axes), rotations, atol=1e-12, err_msg=axes)
        np.testing.assert_allclose(
            back[20:], angles[20:], atol=1e-9, err_msg=axes
        )  # away from the lock, the same angles
