"""Which point of each mocap skeleton stands for which SMPL joint, declared once per convention, by name.

Only points whose anatomy matches the SMPL joint well are listed; the rest (SMPL's spine1-3, collars and
hands in most conventions) are left out rather than approximated, so a fit is not pulled towards a
systematically wrong spot.
"""

from __future__ import annotations

# CMU's 31-bone Acclaim skeleton. Key = the bone whose END point is the joint ("root" = the root's
# position, the middle of the pelvis where both hip bones start). Choices that need a reason:
# * left_wrist is the end of `lwrist`, not of `lradius`: `lwrist` only twists about its own axis
#   (dof ry), so lradius + lwrist is one straight forearm, and the wrist's flexion (lhand rx rz) and
#   the thumb pivot at lwrist's end. (lradius alone is ~0.19 m, too short for an adult forearm.)
# * neck is the end of `lowerneck`: `thorax` ends where the clavicles start, ~5 cm below the
#   shoulders, which is SMPL's collar level; SMPL's neck joint sits above the shoulders.
# * head is the end of `upperneck` (the base of the skull, where the head bone pivots).
CMU_ASF_TO_SMPL: dict[str, str] = {
    "root": "pelvis",
    "lhipjoint": "left_hip",
    "rhipjoint": "right_hip",
    "lfemur": "left_knee",
    "rfemur": "right_knee",
    "ltibia": "left_ankle",
    "rtibia": "right_ankle",
    "lfoot": "left_foot",
    "rfoot": "right_foot",  # the ball of the foot, where the toes bend
    "lowerneck": "neck",
    "upperneck": "head",
    "lclavicle": "left_shoulder",
    "rclavicle": "right_shoulder",
    "lhumerus": "left_elbow",
    "rhumerus": "right_elbow",
    "lwrist": "left_wrist",
    "rwrist": "right_wrist",
}

# BVH: a joint's position is its own origin. Several naming conventions exist and they disagree
# ("LeftShoulder" is the clavicle in Mixamo but the shoulder in Biovision's), so each has its own
# table and `bvh_joint_map` picks the one that matches the file best.

# Mixamo, and rigs named like it (LAFAN1, many game/MotionBuilder exports). "LeftShoulder" is the
# clavicle and Spine/Spine1/Spine2 sit at rig-dependent heights, so they are left out.
BVH_MIXAMO_TO_SMPL: dict[str, str] = {
    "Hips": "pelvis",
    "LeftUpLeg": "left_hip",
    "RightUpLeg": "right_hip",
    "LeftLeg": "left_knee",
    "RightLeg": "right_knee",
    "LeftFoot": "left_ankle",
    "RightFoot": "right_ankle",
    "LeftToeBase": "left_foot",
    "RightToeBase": "right_foot",
    "LeftToe": "left_foot",
    "RightToe": "right_foot",
    "Neck": "neck",
    "Head": "head",
    "LeftArm": "left_shoulder",
    "RightArm": "right_shoulder",
    "LeftForeArm": "left_elbow",
    "RightForeArm": "right_elbow",
    "LeftHand": "left_wrist",
    "RightHand": "right_wrist",
}

# The BVH conversions of the CMU database (Hips, LHipJoint, LeftUpLeg, ..., Neck, Neck1, Head,
# LeftHand, LeftFingerBase, LThumb): one BVH joint per ASF bone, so the choices of CMU_ASF_TO_SMPL
# carry over: "Neck" starts at thorax's end (collar level) and "Neck1" at lowerneck's end;
# "LeftHand" is the lwrist bone, which starts mid-forearm, and "LeftFingerBase" starts at the wrist.
BVH_CMU_TO_SMPL: dict[str, str] = {
    "Hips": "pelvis",
    "LeftUpLeg": "left_hip",
    "RightUpLeg": "right_hip",
    "LeftLeg": "left_knee",
    "RightLeg": "right_knee",
    "LeftFoot": "left_ankle",
    "RightFoot": "right_ankle",
    "LeftToeBase": "left_foot",
    "RightToeBase": "right_foot",
    "Neck1": "neck",
    "Head": "head",
    "LeftArm": "left_shoulder",
    "RightArm": "right_shoulder",
    "LeftForeArm": "left_elbow",
    "RightForeArm": "right_elbow",
    "LeftFingerBase": "left_wrist",
    "RightFingerBase": "right_wrist",
}

# The "Daz-friendly" BVH conversion of the CMU database (hip, abdomen, chest, neck, head, lCollar, lShldr,
# lForeArm, lHand, lButtock, lThigh, lShin, lFoot): every subject's motion on one fixed skeleton, in
# centimetres. Its root `hip` sits between and slightly below the hip joints, not at SMPL's pelvis
# (about 9 cm above them), and `abdomen`/`chest` at rig heights, so those three are left out.
BVH_DAZ_TO_SMPL: dict[str, str] = {
    "lThigh": "left_hip",
    "rThigh": "right_hip",
    "lShin": "left_knee",
    "rShin": "right_knee",
    "lFoot": "left_ankle",
    "rFoot": "right_ankle",
    "neck": "neck",
    "head": "head",
    "lShldr": "left_shoulder",
    "rShldr": "right_shoulder",
    "lForeArm": "left_elbow",
    "rForeArm": "right_elbow",
    "lHand": "left_wrist",
    "rHand": "right_wrist",
}

# Biovision's original convention (Hips, LeftHip, LeftKnee, LeftAnkle, Chest, LeftCollar,
# LeftShoulder, LeftElbow, LeftWrist, Neck, Head).
BVH_BIOVISION_TO_SMPL: dict[str, str] = {
    "Hips": "pelvis",
    "LeftHip": "left_hip",
    "RightHip": "right_hip",
    "LeftKnee": "left_knee",
    "RightKnee": "right_knee",
    "LeftAnkle": "left_ankle",
    "RightAnkle": "right_ankle",
    "LeftToe": "left_foot",
    "RightToe": "right_foot",
    "Neck": "neck",
    "Head": "head",
    "LeftShoulder": "left_shoulder",
    "RightShoulder": "right_shoulder",
    "LeftElbow": "left_elbow",
    "RightElbow": "right_elbow",
    "LeftWrist": "left_wrist",
    "RightWrist": "right_wrist",
}

# BVH exported from SMPL itself (joint names as in the SMPL paper's figures): an exact match.
BVH_SMPL_TO_SMPL: dict[str, str] = {
    "Pelvis": "pelvis",
    "L_Hip": "left_hip",
    "R_Hip": "right_hip",
    "Spine1": "spine1",
    "L_Knee": "left_knee",
    "R_Knee": "right_knee",
    "Spine2": "spine2",
    "L_Ankle": "left_ankle",
    "R_Ankle": "right_ankle",
    "Spine3": "spine3",
    "L_Foot": "left_foot",
    "R_Foot": "right_foot",
    "Neck": "neck",
    "L_Collar": "left_collar",
    "R_Collar": "right_collar",
    "Head": "head",
    "L_Shoulder": "left_shoulder",
    "R_Shoulder": "right_shoulder",
    "L_Elbow": "left_elbow",
    "R_Elbow": "right_elbow",
    "L_Wrist": "left_wrist",
    "R_Wrist": "right_wrist",
    "L_Hand": "left_hand",
    "R_Hand": "right_hand",
}

# In order of preference when two tables match a file equally well (CMU before Mixamo: a CMU file
# matches both, a Mixamo file lacks CMU's "Neck1" and "LeftFingerBase").
BVH_TABLES: tuple[dict[str, str], ...] = (
    BVH_CMU_TO_SMPL,
    BVH_MIXAMO_TO_SMPL,
    BVH_BIOVISION_TO_SMPL,
    BVH_SMPL_TO_SMPL,
    BVH_DAZ_TO_SMPL,
)


def bvh_base_name(name: str) -> str:
    """A BVH joint name without its namespace ("mixamorig:LeftArm" -> "LeftArm")."""
    return name.rsplit(":", 1)[-1]


def bvh_joint_map(joint_names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """{BVH joint name as in the file: SMPL joint name} under the convention that matches most names."""
    base = {bvh_base_name(n): n for n in joint_names}
    table = max(BVH_TABLES, key=lambda t: len(base.keys() & t.keys()))  # max keeps the first of ties
    return {base[src]: smpl for src, smpl in table.items() if src in base}
