"""A track's motion as BVH: SMPL's skeleton with the track's rest offsets, in metres, y up.

The root (Pelvis) has six channels, its position then its rotation; every other joint three rotations. All
rotations are Euler angles in degrees, listed Z, X, Y and composed in that order about the moving axes
(R = Rz @ Rx @ Ry), the order of most BVH files; readers take the order from the CHANNELS lines. The root's OFFSET is zero, so its position
channels are where the pelvis is. SMPL's leaves (head, hands, feet) end in an End Site at the middle of
the part of the mesh they move, so a reader that draws bones from joint to child gives them a length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bodyfit_cli.export.motion import RestBody, TrackMotion
from bodyfit_cli.mocap.joint_maps import BVH_SMPL_TO_SMPL
from bodyfit_cli.mocap.types import matrix_to_euler
from bodyfit_cli.vocabulary import SMPL_JOINT_NAMES, SMPL_PARENTS

# SMPL's joints as BVH names them (the SMPL paper's figures), which bodyfit's BVH reader maps back one to one.
BVH_JOINT_NAMES: tuple[str, ...] = tuple({v: k for k, v in BVH_SMPL_TO_SMPL.items()}[n] for n in SMPL_JOINT_NAMES)
ROTATION_ORDER = "ZXY"
_DIGITS = 6  # micrometres and micro-degrees


def write_bvh(path: Path, motion: TrackMotion, rest: RestBody) -> None:
    """Write `motion` on the skeleton of `rest` to `path` (a temporary file: the caller renames it)."""
    children = {j: [c for c in range(len(SMPL_PARENTS)) if SMPL_PARENTS[c] == j] for j in range(len(SMPL_PARENTS))}
    order: list[int] = []  # joints in the file's order (depth first), which is the MOTION columns' order
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "\t" * depth
        order.append(j)
        parent = SMPL_PARENTS[j]
        offset = np.zeros(3) if parent < 0 else rest.joints[j] - rest.joints[parent]
        rotations = " ".join(f"{axis}rotation" for axis in ROTATION_ORDER)
        channels = f"6 Xposition Yposition Zposition {rotations}" if parent < 0 else f"3 {rotations}"
        lines.extend(
            [
                f"{pad}{'ROOT' if parent < 0 else 'JOINT'} {BVH_JOINT_NAMES[j]}",
                f"{pad}{{",
                f"{pad}\tOFFSET {_numbers(offset)}",
                f"{pad}\tCHANNELS {channels}",
            ]
        )
        for c in children[j]:
            joint(c, depth + 1)
        if not children[j]:
            lines.extend(
                [f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {_numbers(_end_site(rest, j))}", f"{pad}\t}}"]
            )
        lines.append(f"{pad}}}")

    joint(0, 0)
    angles = np.degrees(matrix_to_euler(motion.rotations[:, order], ROTATION_ORDER))  # (F, 24, 3)
    values = np.concatenate([motion.pelvis, angles.reshape(motion.num_frames, -1)], 1)
    lines += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {1.0 / motion.fps:.9f}"]
    lines += [_numbers(row) for row in values]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _end_site(rest: RestBody, j: int) -> np.ndarray:
    """Offset from leaf joint j to the middle of the vertices it moves most."""
    mine = rest.weights.argmax(1) == j
    return rest.vertices[mine].mean(0) - rest.joints[j] if mine.any() else np.zeros(3)


def _numbers(values: np.ndarray) -> str:
    return " ".join(f"{v:.{_DIGITS}f}" for v in values)
