"""BVH (Biovision hierarchy) reading and forward kinematics.

A joint's rotation channels compose in the order listed, about the joint's moving axes
(R = R_first @ R_second @ R_third); its world rotation is parent @ R and its origin is
parent origin + parent rotation @ (OFFSET + position channels). BVH is taken to be y-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bodyfit_cli.mocap.joint_maps import bvh_joint_map
from bodyfit_cli.mocap.types import MocapClip, euler_matrices, parse_error, read_text
from bodyfit_cli.vocabulary import SMPL_JOINT_INDEX

CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
# BVH has no units. Candidate units, metres per file unit; the guess is the one that makes the rest
# pose's largest extent (height, or arm span in a T-pose: about the same) closest to 1.7 m.
UNIT_GUESSES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "CMU (inch / 0.45)": 0.0254 / 0.45}
TYPICAL_HEIGHT = 1.7


@dataclass(frozen=True)
class Joint:
    """One ROOT, JOINT or End Site (named "<parent>_end"; no channels)."""

    name: str
    parent: int  # index into the joint list, -1 for a root
    offset: np.ndarray  # (3,) file units
    channels: tuple[str, ...]


def read_bvh(path: Path, *, scale: float | None = None, raw: bool = False) -> MocapClip:
    """A clip of SMPL-named joints (raw=True: every joint and end site under its BVH name).

    `scale` is metres per file unit; None guesses it from the rest pose's size among m, cm, mm,
    inches and CMU's units (see UNIT_GUESSES), which is reliable for whole-body skeletons only.
    """
    path = Path(path)
    lines = read_text(path, "BVH file").splitlines()
    joints, motion_line = _hierarchy(path, lines)
    values, fps = _motion(path, lines, motion_line, sum(len(j.channels) for j in joints))
    scale = _guess_scale(joints) if scale is None else scale
    positions = forward_kinematics(joints, values) * scale
    names = tuple(j.name for j in joints)
    if not raw:
        smpl = {target: names.index(src) for src, target in bvh_joint_map(names).items()}
        names = tuple(sorted(smpl, key=SMPL_JOINT_INDEX.__getitem__))
        positions = positions[:, [smpl[n] for n in names]]
    return MocapClip(path.stem, names, positions.astype(np.float32), fps, str(path))


# --- HIERARCHY ----------------------------------------------------------------------------------


def _hierarchy(path: Path, lines: list[str]) -> tuple[list[Joint], int]:
    """The joints in file order (parents first) and the index of the MOTION line."""
    motion = next((i for i, line in enumerate(lines) if line.strip() == "MOTION"), None)
    if motion is None:
        raise parse_error(path, None, "no MOTION section (not a BVH file, or truncated)")
    spaced = (line.replace("{", " { ").replace("}", " } ").split() for line in lines[:motion])
    tokens = [(n, t) for n, words in enumerate(spaced, 1) for t in words]
    if not tokens or tokens[0][1] != "HIERARCHY":
        raise parse_error(path, tokens[0][0] if tokens else 1, "not a BVH file (does not start with HIERARCHY)")
    joints: list[Joint] = []
    stack: list[int] = []  # open joints; -2 marks an open End Site
    i = 1
    while i < len(tokens):
        number, word = tokens[i]
        if word in ("ROOT", "JOINT", "End"):
            i = _open_joint(path, tokens, i, joints, stack)
        elif word == "}" and stack:
            stack.pop()
            i += 1
        else:
            raise parse_error(path, number, f"unexpected {word!r} in HIERARCHY")
    if stack or not joints:
        raise parse_error(path, motion + 1, "MOTION before the hierarchy is complete")
    return joints, motion


def _open_joint(path: Path, tokens: list[tuple[int, str]], i: int, joints: list[Joint], stack: list[int]) -> int:
    """Read 'ROOT|JOINT name { OFFSET x y z [CHANNELS n ...]' or 'End Site { OFFSET x y z'."""
    number, word = tokens[i]
    parent = next((j for j in reversed(stack) if j >= 0), -1)
    if (word == "ROOT") != (not stack) or (stack and stack[-1] == -2):
        raise parse_error(path, number, f"{word} {'inside' if stack else 'outside'} a joint")
    name = _take(path, tokens, i + 1)
    if word == "End":
        if name != "Site":
            raise parse_error(path, number, f"expected 'End Site', got 'End {name}'")
        name = f"{joints[parent].name}_end"
    i = _expect(path, tokens, i + 2, "{")
    i = _expect(path, tokens, i, "OFFSET")
    offset = np.array([_number(path, *_at(path, tokens, i + k)) for k in range(3)])
    i += 3
    channels: tuple[str, ...] = ()
    if word != "End":
        i = _expect(path, tokens, i, "CHANNELS")
        count_line, count = _at(path, tokens, i)
        if not count.isdigit():
            raise parse_error(path, count_line, f"CHANNELS count must be a whole number, got {count!r}")
        channels = tuple(_take(path, tokens, i + 1 + k) for k in range(int(count)))
        bad = [c for c in channels if c not in CHANNELS]
        if bad or len(set(channels)) != len(channels):
            raise parse_error(path, count_line, f"joint {name!r}: channels must be distinct of {CHANNELS}, got {bad}")
        i += 1 + int(count)
    joints.append(Joint(name, parent, offset, channels))
    stack.append(-2 if word == "End" else len(joints) - 1)
    return i


def _at(path: Path, tokens: list[tuple[int, str]], i: int) -> tuple[int, str]:
    if i >= len(tokens):
        raise parse_error(path, tokens[-1][0], "file ends inside HIERARCHY")
    return tokens[i]


def _take(path: Path, tokens: list[tuple[int, str]], i: int) -> str:
    return _at(path, tokens, i)[1]


def _expect(path: Path, tokens: list[tuple[int, str]], i: int, word: str) -> int:
    number, got = _at(path, tokens, i)
    if got != word:
        raise parse_error(path, number, f"expected {word!r}, got {got!r}")
    return i + 1


def _number(path: Path, number: int, token: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise parse_error(path, number, f"not a number: {token!r}") from None


# --- MOTION -------------------------------------------------------------------------------------


def _motion(path: Path, lines: list[str], start: int, width: int) -> tuple[np.ndarray, float]:
    """(T, width) channel values and the frame rate, from 'MOTION / Frames: T / Frame Time: dt / rows'."""
    header = [(n, line.split()) for n, line in enumerate(lines[start + 1 :], start + 2) if line.strip()]
    if len(header) < 2 or header[0][1][:1] != ["Frames:"] or header[1][1][:2] != ["Frame", "Time:"]:
        raise parse_error(path, start + 1, "MOTION must be followed by 'Frames: T' and 'Frame Time: dt'")
    (frames_line, frames_tokens), (time_line, time_tokens) = header[:2]
    if len(frames_tokens) != 2 or not frames_tokens[1].isdigit():
        raise parse_error(path, frames_line, "'Frames:' needs one whole number")
    frame_time = _number(path, time_line, time_tokens[2] if len(time_tokens) == 3 else "")
    if frame_time <= 0:
        raise parse_error(path, time_line, f"Frame Time must be positive, got {frame_time}")
    rows = header[2:]
    if len(rows) != int(frames_tokens[1]):
        raise parse_error(path, frames_line, f"header says {frames_tokens[1]} frames, file has {len(rows)}")
    for number, row in rows:
        if len(row) != width:
            raise parse_error(path, number, f"{len(row)} values, expected {width} (one per channel)")
    try:
        values = np.array([row for _, row in rows], dtype=np.float64).reshape(len(rows), width)
    except ValueError:
        number, bad = next((n, t) for n, row in rows for t in row if not _is_number(t))
        raise parse_error(path, number, f"not a number: {bad!r}") from None
    return values, 1.0 / frame_time


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# --- forward kinematics -------------------------------------------------------------------------


def forward_kinematics(joints: list[Joint], values: np.ndarray) -> np.ndarray:
    """(T, J, 3) world positions, in file units, of every joint from (T, channels) values (degrees)."""
    frames = len(values)
    rotations = np.empty((frames, len(joints), 3, 3))
    positions = np.empty((frames, len(joints), 3))
    column = 0
    for j, joint in enumerate(joints):
        local = values[:, column : column + len(joint.channels)]
        column += len(joint.channels)
        offset = joint.offset + _translation(joint.channels, local)
        rotation = _rotation(joint.channels, local)
        if joint.parent < 0:
            rotations[:, j], positions[:, j] = rotation, offset
        else:
            parent_rotation = rotations[:, joint.parent]
            rotations[:, j] = parent_rotation @ rotation
            positions[:, j] = positions[:, joint.parent] + (parent_rotation @ offset[..., None])[..., 0]
    return positions


def _translation(channels: tuple[str, ...], values: np.ndarray) -> np.ndarray:
    """(T, 3) from the position channels (0 for absent ones)."""
    out = np.zeros((len(values), 3))
    for k, channel in enumerate(channels):
        if channel.endswith("position"):
            out[:, "XYZ".index(channel[0])] = values[:, k]
    return out


def _rotation(channels: tuple[str, ...], values: np.ndarray) -> np.ndarray:
    """(T, 3, 3) from the rotation channels, composed in the listed order."""
    picks = [k for k, c in enumerate(channels) if c.endswith("rotation")]
    axes = "".join(channels[k][0] for k in picks)
    return euler_matrices(np.radians(values[:, picks]), axes)


def _guess_scale(joints: list[Joint]) -> float:
    """Metres per file unit from the rest pose's largest extent (see UNIT_GUESSES)."""
    rest = forward_kinematics(joints, np.zeros((1, sum(len(j.channels) for j in joints))))[0]
    extent = float((rest.max(0) - rest.min(0)).max())
    if extent <= 0:
        return 1.0
    return min(UNIT_GUESSES.values(), key=lambda s: abs(np.log(extent * s / TYPICAL_HEIGHT)))
