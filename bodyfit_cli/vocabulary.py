"""Names and index tables, declared once by name (see CONTRACT.md).

Every other module refers to keypoints and joints through these tables, never through bare
index lists.
"""

from __future__ import annotations

# The keypoint vocabulary of CONTRACT.md, in this order everywhere arrays are indexed by keypoint.
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_big_toe",
    "right_big_toe",
)
KEYPOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# The rigid parts between keypoints: limbs, feet, and the torso's four sides.
SEGMENTS: tuple[tuple[str, str], ...] = tuple(
    (f"{side}_{a}", f"{side}_{b}")
    for side in ("left", "right")
    for a, b in (
        ("shoulder", "elbow"),
        ("elbow", "wrist"),
        ("hip", "knee"),
        ("knee", "ankle"),
        ("ankle", "big_toe"),
        ("shoulder", "hip"),
    )
) + (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"))

# The 12 limb joints accuracy is reported on.
LIMB_KEYPOINTS: tuple[str, ...] = (
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

# The torso corners: where body orientation and translation are read from first.
TORSO_KEYPOINTS: tuple[str, ...] = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")

# SMPL's 24 joints and kinematic tree (parent of each joint; -1 for the root).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
SMPL_JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
SMPL_PARENTS: tuple[int, ...] = (
    -1,
    0,
    0,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    9,
    9,
    12,
    13,
    14,
    16,
    17,
    18,
    19,
    20,
    21,
)
NUM_SMPL_JOINTS = len(SMPL_JOINT_NAMES)


def mirror_name(name: str) -> str:
    """The name of the same point on the other side of the body (itself on the midline)."""
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


def indices(names: tuple[str, ...] | list[str], table: dict[str, int]) -> list[int]:
    """Indices of `names` in a name table (raises KeyError on an unknown name)."""
    return [table[n] for n in names]


# Choices the command line lists in --help; their owners (body.loaders, core.device, io.mesh) take them from here.
BODY_MODEL_NAMES = ("default", "smpl", "smplx")
DEVICES = ("auto", "cpu", "cuda")
MESH_FORMATS = ("obj", "ply", "glb")
