"""Acclaim ASF (skeleton) + AMC (motion) reading and forward kinematics, as used by the CMU database.

Acclaim's kinematics: a bone's `direction` is given in world axes for the rest pose, and its `axis`
angles define the bone's own frame C. The AMC's angles rotate the bone in that frame, so the bone's
global rotation is G = G_parent @ C @ M @ C^-1, and its end is start + G @ (direction * length).
Angle lists (axis, dof, root order) are rotations about fixed axes applied in the listed order, so
"XYZ" means Rz @ Ry @ Rx. Everything is converted to metres and radians while reading.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bodyfit_cli.mocap.joint_maps import CMU_ASF_TO_SMPL
from bodyfit_cli.mocap.types import MocapClip, euler_matrices, parse_error, read_text
from bodyfit_cli.vocabulary import SMPL_JOINT_INDEX

INCH = 0.0254  # metres; Acclaim lengths are inches divided by the `:units length` multiplier
ROTATION_DOFS = ("rx", "ry", "rz")
ROOT_CHANNELS = ("tx", "ty", "tz", "rx", "ry", "rz")
CMU_FPS = 120.0


@dataclass(frozen=True)
class Bone:
    """One ASF bone, in metres and radians."""

    name: str
    direction: np.ndarray  # (3,) unit vector in world axes, rest pose
    length: float
    frame: np.ndarray  # (3, 3) C: the bone's own axes, from its `axis` angles
    dofs: tuple[str, ...]  # subset of rx ry rz, in the order the AMC lists the values
    limits: tuple[tuple[float, float], ...]  # one (min, max) per dof, radians


@dataclass(frozen=True)
class Skeleton:
    """An ASF file: the root's placement and channels, the bones, and who hangs from whom."""

    name: str  # file name, for messages
    meters_per_unit: float
    angles_in_degrees: bool
    root_channels: tuple[str, ...]  # AMC order of the root's values, e.g. tx ty tz rx ry rz
    root_position: np.ndarray  # (3,) metres
    root_frame: np.ndarray  # (3, 3) from the root's `orientation` in its `axis` order
    bones: dict[str, Bone]
    children: dict[str, tuple[str, ...]]  # "root" and bone names -> child bone names

    def parent_first(self) -> Iterator[tuple[str, str]]:
        """(parent, bone) pairs with every parent before its children."""
        stack = ["root"]
        while stack:
            parent = stack.pop()
            for child in self.children.get(parent, ()):
                yield parent, child
                stack.append(child)


# --- ASF ----------------------------------------------------------------------------------------


def read_asf(path: Path) -> Skeleton:
    """Parse an ASF skeleton file (raises InputError naming the line on anything malformed)."""
    path = Path(path)
    sections = _sections(path, read_text(path, "skeleton file"))
    meters, degrees = _units(path, sections.get("units", []))
    to_rad = np.pi / 180.0 if degrees else 1.0
    root = _root(path, sections.get("root", []), meters, to_rad)
    bones = {b.name: b for b in _bones(path, sections.get("bonedata", []), meters, to_rad)}
    children = _hierarchy(path, sections.get("hierarchy", []), bones)
    return Skeleton(path.name, meters, degrees, *root, bones, children)


Line = tuple[int, list[str]]  # (line number, tokens)


def _sections(path: Path, text: str) -> dict[str, list[Line]]:
    """Lines of each `:keyword` section; the keyword line's own tokens (after it) open the section."""
    sections: dict[str, list[Line]] = {}
    current: list[Line] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        if tokens[0].startswith(":"):
            current = sections.setdefault(tokens[0][1:].lower(), [])
            if tokens[1:]:
                current.append((number, tokens[1:]))
        elif current is None:
            raise parse_error(path, number, f"expected a ':keyword' section, got {raw.strip()!r}")
        else:
            current.append((number, tokens))
    if "bonedata" not in sections and "root" not in sections:
        raise parse_error(path, None, "not an ASF skeleton (no :root or :bonedata section)")
    return sections


def _units(path: Path, lines: list[Line]) -> tuple[float, bool]:
    """(metres per file unit, angles in degrees?) from `length` and `angle`; `mass` plays no part here.

    `length` is a multiplier: file value = inches * length, so CMU's `length 0.45` makes a unit
    1/0.45 inch. Without a `:units` section, lengths are inches and angles degrees.
    """
    meters, degrees = INCH, True
    for number, tokens in lines:
        key, value = tokens[0].lower(), tokens[1].lower() if len(tokens) > 1 else ""
        if key == "angle":
            if value not in ("deg", "rad"):
                raise parse_error(path, number, f"angle unit must be deg or rad, got {value!r}")
            degrees = value == "deg"
        elif key == "length":
            length = _floats(path, number, tokens[1:], 1)[0]
            if length <= 0:
                raise parse_error(path, number, f"length unit must be positive, got {length}")
            meters = INCH / length
    return meters, degrees


def _root(
    path: Path, lines: list[Line], meters: float, to_rad: float
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(channels, position in metres, frame) of the `:root` section."""
    fields = {tokens[0].lower(): (number, tokens[1:]) for number, tokens in lines}
    number, channels = fields.get("order", (1, []))
    channels = tuple(c.lower() for c in channels)
    bad = [c for c in channels if c not in ROOT_CHANNELS]
    if bad or len(set(channels)) != len(channels):
        raise parse_error(path, number, f"root order must list distinct channels of TX TY TZ RX RY RZ, got {bad}")
    number, axis = fields.get("axis", (1, ["XYZ"]))
    axis = axis[0] if axis else ""
    _check_axis_order(path, number, axis)
    position = np.array(_floats(path, *fields.get("position", (1, ["0", "0", "0"])), 3)) * meters
    orientation = np.array(_floats(path, *fields.get("orientation", (1, ["0", "0", "0"])), 3)) * to_rad
    return channels, position, _fixed_axes_rotation(orientation, axis)


def _bones(path: Path, lines: list[Line], meters: float, to_rad: float) -> list[Bone]:
    """The `begin ... end` blocks of `:bonedata`."""
    bones, block = [], None
    for number, tokens in lines:
        key = tokens[0].lower()
        if key == "begin":
            block = {"_line": number}
        elif block is None:
            raise parse_error(path, number, f"{tokens[0]!r} outside a begin ... end bone block")
        elif key == "end":
            bones.append(_bone(path, block, meters, to_rad))
            if any(b.name == bones[-1].name for b in bones[:-1]):
                raise parse_error(path, block["_line"], f"bone {bones[-1].name!r} is defined twice")
            block = None
        elif key == "limits" or key.startswith("("):
            block.setdefault("limits", []).append((number, tokens[1:] if key == "limits" else tokens))
        else:
            block[key] = (number, tokens[1:])
    if block is not None:
        raise parse_error(path, block["_line"], "bone block without 'end'")
    return bones


def _bone(path: Path, block: dict, meters: float, to_rad: float) -> Bone:
    start = block["_line"]
    for key in ("name", "direction", "length"):
        if key not in block:
            raise parse_error(path, start, f"bone has no {key!r}")
    name = block["name"][1][0]
    direction = np.array(_floats(path, *block["direction"], 3))
    norm = np.linalg.norm(direction)
    length = _floats(path, *block["length"], 1)[0] * meters
    if norm == 0 and length != 0:
        raise parse_error(path, block["direction"][0], f"bone {name!r} has a zero direction")
    number, axis_tokens = block.get("axis", (start, ["0", "0", "0", "XYZ"]))
    if len(axis_tokens) != 4:
        raise parse_error(path, number, f"bone {name!r}: axis needs 3 angles and an order, e.g. '0 0 20 XYZ'")
    _check_axis_order(path, number, axis_tokens[3])
    frame = _fixed_axes_rotation(np.array(_floats(path, number, axis_tokens[:3], 3)) * to_rad, axis_tokens[3])
    number, dofs = block.get("dof", (start, []))
    dofs = tuple(d.lower() for d in dofs)
    if any(d not in ROTATION_DOFS for d in dofs) or len(set(dofs)) != len(dofs):
        raise parse_error(path, number, f"bone {name!r}: only distinct rx ry rz dofs are supported, got {dofs}")
    return Bone(name, direction / (norm or 1.0), length, frame, dofs, _limits(path, name, block, to_rad))


def _limits(path: Path, name: str, block: dict, to_rad: float) -> tuple[tuple[float, float], ...]:
    """One (min, max) pair per dof from lines like '(-160.0 20.0)'; empty if the bone has none."""
    pairs = []
    for number, tokens in block.get("limits", []):
        values = " ".join(tokens).replace("(", " ").replace(")", " ").split()
        lo, hi = _floats(path, number, values, 2)
        pairs.append((lo * to_rad, hi * to_rad))
    dofs = block.get("dof", (0, []))[1]
    if pairs and len(pairs) != len(dofs):
        raise parse_error(path, block["limits"][0][0], f"bone {name!r} has {len(pairs)} limits for {len(dofs)} dofs")
    return tuple(pairs)


def _hierarchy(path: Path, lines: list[Line], bones: dict[str, Bone]) -> dict[str, tuple[str, ...]]:
    """Parent -> children from `:hierarchy`; every bone must hang from the root exactly once."""
    children: dict[str, tuple[str, ...]] = {}
    parent_of: dict[str, str] = {}
    for number, tokens in lines:
        if tokens[0].lower() in ("begin", "end"):
            continue
        for name in tokens:
            if name != "root" and name not in bones:
                raise parse_error(path, number, f"bone {name!r} in :hierarchy has no :bonedata entry")
        for child in tokens[1:]:
            if child in parent_of or child == "root":
                raise parse_error(path, number, f"bone {child!r} is given a second parent")
            parent_of[child] = tokens[0]
        children[tokens[0]] = children.get(tokens[0], ()) + tuple(tokens[1:])
    for name in bones:
        ancestor, seen = name, set()
        while ancestor != "root":
            if ancestor not in parent_of or ancestor in seen:
                raise parse_error(path, None, f"bone {name!r} is not connected to the root in :hierarchy")
            seen.add(ancestor)
            ancestor = parent_of[ancestor]
    return children


def _check_axis_order(path: Path, number: int, order: str) -> None:
    if sorted(order.lower()) != ["x", "y", "z"]:
        raise parse_error(path, number, f"rotation order must be a permutation of XYZ, got {order!r}")


def _floats(path: Path, number: int, tokens: list[str], count: int) -> list[float]:
    """Exactly `count` numbers from `tokens`, or an InputError naming the line."""
    if len(tokens) < count:
        raise parse_error(path, number, f"expected {count} numbers, got {len(tokens)}")
    try:
        return [float(t) for t in tokens[:count]]
    except ValueError:
        raise parse_error(path, number, f"not a number in {' '.join(tokens[:count])!r}") from None


def _fixed_axes_rotation(angles: np.ndarray, order: str) -> np.ndarray:
    """Acclaim's convention: rotate about fixed world axes in the listed order ("XYZ" -> Rz Ry Rx)."""
    return euler_matrices(angles[..., ::-1], order[::-1])


# --- AMC ----------------------------------------------------------------------------------------


def read_amc(path: Path, skeleton: Skeleton) -> dict[str, np.ndarray]:
    """Per-frame values of each moving bone: {"root": (T, len(root channels)), bone: (T, len(dofs))}.

    Angles come back in radians and root translations in metres. Only fully specified motion is
    supported (every moving bone on every frame), which is what CMU's files are.
    """
    path = Path(path)
    expected = {"root": len(skeleton.root_channels)} | {n: len(b.dofs) for n, b in skeleton.bones.items() if b.dofs}
    rows: dict[str, list[list[str]]] = {name: [] for name in expected}
    lines: dict[str, list[int]] = {name: [] for name in expected}
    degrees, frames = skeleton.angles_in_degrees, 0
    for number, raw in enumerate(read_text(path, "motion file").splitlines(), 1):
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        head = tokens[0]
        if head.startswith(":"):
            degrees = {":DEGREES": True, ":RADIANS": False}.get(head.upper(), degrees)
        elif len(tokens) == 1 and head.isdigit():
            _check_frame_complete(path, number, rows, frames)
            frames += 1
        elif frames == 0 and head in expected:
            raise parse_error(path, number, f"bone {head!r} before the first frame number")
        elif head not in expected:
            reason = "has no degrees of freedom in" if head in skeleton.bones else "is not in the skeleton"
            raise parse_error(path, number, f"bone {head!r} {reason} {skeleton.name}")
        elif len(tokens) - 1 != expected[head]:
            raise parse_error(path, number, f"bone {head!r} has {len(tokens) - 1} values, expected {expected[head]}")
        else:
            rows[head].append(tokens[1:])
            lines[head].append(number)
    if frames == 0:
        raise parse_error(path, None, "no frames (not an AMC motion file?)")
    _check_frame_complete(path, number, rows, frames)
    return _to_si(path, skeleton, rows, lines, np.pi / 180.0 if degrees else 1.0)


def _check_frame_complete(path: Path, number: int, rows: dict[str, list], frames: int) -> None:
    """Every moving bone must have had exactly one line in each of the first `frames` frames."""
    for name, values in rows.items():
        if len(values) != frames:
            problem = "is missing from" if len(values) < frames else "appears twice in"
            raise parse_error(path, number, f"bone {name!r} {problem} frame {frames}")


def _to_si(
    path: Path, skeleton: Skeleton, rows: dict[str, list[list[str]]], lines: dict[str, list[int]], to_rad: float
) -> dict[str, np.ndarray]:
    """Parse the collected strings as numbers, then angles to radians and root translations to metres."""
    root_scale = np.array([skeleton.meters_per_unit if c[0] == "t" else to_rad for c in skeleton.root_channels])
    motion = {}
    for name, values in rows.items():
        try:
            numbers = np.array(values, dtype=np.float64).reshape(len(values), -1)
        except ValueError:
            number, bad = _first_non_number(values, lines[name])
            raise parse_error(path, number, f"bone {name!r}: not a number: {bad!r}") from None
        motion[name] = numbers * (root_scale if name == "root" else to_rad)
    return motion


def _first_non_number(values: list[list[str]], lines: list[int]) -> tuple[int, str]:
    for row, number in zip(values, lines):
        for token in row:
            try:
                float(token)
            except ValueError:
                return number, token
    raise AssertionError("numpy rejected values that float() accepts")


# --- forward kinematics -------------------------------------------------------------------------


def forward_kinematics(skeleton: Skeleton, motion: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """World positions (T, 3) in metres: "root" -> the root, each bone name -> that bone's end point."""
    rotation, position = _root_pose(skeleton, motion["root"])
    rotations, positions = {"root": rotation}, {"root": position}
    for parent, name in skeleton.parent_first():
        bone = skeleton.bones[name]
        rotations[name] = rotations[parent]
        if bone.dofs:
            turn = _fixed_axes_rotation(motion[name], "".join(d[1] for d in bone.dofs))
            rotations[name] = rotations[parent] @ bone.frame @ turn @ bone.frame.T
        positions[name] = positions[parent] + rotations[name] @ (bone.direction * bone.length)
    return positions


def _root_pose(skeleton: Skeleton, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3, 3) rotation and (T, 3) position of the root from its AMC channels (missing ones are 0)."""
    channels = skeleton.root_channels
    translation = np.zeros((len(values), 3))
    for i, channel in enumerate(channels):
        if channel.startswith("t"):
            translation[:, "xyz".index(channel[1])] = values[:, i]
    rotation_idx = [i for i, c in enumerate(channels) if c.startswith("r")]
    motion = _fixed_axes_rotation(values[:, rotation_idx], "".join(channels[i][1] for i in rotation_idx))
    rotation = skeleton.root_frame @ motion @ skeleton.root_frame.T
    return rotation, translation + skeleton.root_position


# --- clips --------------------------------------------------------------------------------------


def read_asf_amc(amc_path: Path, asf_path: Path, *, fps: float = CMU_FPS, raw: bool = False) -> MocapClip:
    """A clip of SMPL-named joints (or, with raw=True, "root" and every bone's end point).

    AMC files do not store their frame rate; CMU's are captured at 120 fps.
    """
    amc_path, asf_path = Path(amc_path), Path(asf_path)
    skeleton = read_asf(asf_path)
    points = forward_kinematics(skeleton, read_amc(amc_path, skeleton))
    if raw:
        names = tuple(points)
    else:
        smpl = {CMU_ASF_TO_SMPL[src]: src for src in points if src in CMU_ASF_TO_SMPL}
        names = tuple(sorted(smpl, key=SMPL_JOINT_INDEX.__getitem__))
        points = {name: points[smpl[name]] for name in names}
    positions = np.stack([points[n] for n in names], axis=1).astype(np.float32)
    return MocapClip(amc_path.stem, names, positions, fps, str(amc_path))
