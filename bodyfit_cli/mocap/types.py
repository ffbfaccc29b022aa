"""What the motion-capture readers return, and the pieces both skeletal readers share.

Positions are float32 metres in a right-handed, y-up world frame (the convention of CMU's ASF/AMC and
of BVH), so clips from any reader can be fitted by joint name without further conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bodyfit_cli.errors import InputError


@dataclass(frozen=True)
class MocapClip:
    """Joint trajectories of one trial: `positions[t, j]` is joint `joint_names[j]` at frame t."""

    name: str  # trial name, e.g. "02_01"
    joint_names: tuple[str, ...]  # SMPL joint names (or the source's own names when read raw)
    positions: np.ndarray  # (T, J, 3) float32, metres, y-up
    fps: float
    source: str  # the file the motion came from

    def __post_init__(self) -> None:
        if self.positions.shape[1:] != (len(self.joint_names), 3):
            raise ValueError(f"positions {self.positions.shape} do not match {len(self.joint_names)} joint names")

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    def joint(self, name: str) -> np.ndarray:
        """(T, 3) trajectory of one joint, by name (KeyError names the joints that exist)."""
        if name not in self.joint_names:
            raise KeyError(f"joint {name!r} not in clip {self.name} (has {', '.join(self.joint_names)})")
        return self.positions[:, self.joint_names.index(name)]

    def subsample(self, step: int) -> MocapClip:
        """Every `step`-th frame, e.g. 120 fps CMU data down to 30 fps with step 4."""
        if step < 1:
            raise ValueError(f"subsample step must be >= 1, got {step}")
        return replace(self, positions=self.positions[::step], fps=self.fps / step)


def read_text(path: Path, kind: str) -> str:
    """The file's text, or an InputError in the project's 'cannot read <kind>' form."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"cannot read {kind}: {path} (no such file)") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {kind}: {path} (is a directory)") from None
    except OSError as exc:
        raise InputError(f"cannot read {kind}: {path} ({exc.strerror or exc})") from exc


def parse_error(path: Path, line: int | None, message: str) -> InputError:
    """One-line, compiler-style error pointing at a line of a mocap file (or the whole file)."""
    return InputError(f"{path}: line {line}: {message}" if line is not None else f"{path}: {message}")


def euler_matrices(angles: np.ndarray, axes: str) -> np.ndarray:
    """(..., k) angles in radians about `axes` (e.g. "zxy") -> (..., 3, 3) = R_axes[0] @ R_axes[1] @ ...

    This is the intrinsic (moving-axes) reading, BVH's convention. Rotations about fixed axes applied
    in the listed order (Acclaim's) are the same call with both `angles` and `axes` reversed.
    """
    out = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3))
    for k, axis in enumerate(axes.lower()):
        out = out @ _axis_rotation(angles[..., k], "xyz".index(axis))
    return out


def _axis_rotation(angle: np.ndarray, axis: int) -> np.ndarray:
    """(...,) radians -> (..., 3, 3) right-handed rotation about coordinate axis 0, 1 or 2."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    m = np.zeros((*np.shape(angle), 3, 3))
    m[..., axis, axis] = 1.0
    m[..., i, i], m[..., i, j] = c, -s
    m[..., j, i], m[..., j, j] = s, c
    return m


def matrix_to_euler(m: np.ndarray, axes: str) -> np.ndarray:
    """The inverse of `euler_matrices` for three distinct axes (e.g. "zxy"): (..., 3, 3) -> (..., 3) radians,
    the middle angle within [-90, 90] degrees. At +-90 (gimbal lock) only the sum or difference of the outer
    two is defined; the last is then 0."""
    i, j, k = ("xyz".index(a) for a in axes.lower())
    if len({i, j, k}) != 3:
        raise ValueError(f"axes must be three distinct axes, got {axes!r}")
    sign = 1.0 if (j - i) % 3 == 1 else -1.0  # +1 for cyclic orders (xyz, yzx, zxy)
    # R = R_i(a) R_j(b) R_k(c): row i holds sin b at k and cos b times (cos c, -sign sin c) at (i, j).
    cos_b = np.hypot(m[..., i, i], m[..., i, j])
    b = np.arctan2(sign * m[..., i, k], cos_b)
    free = cos_b > 1e-9
    a = np.where(free, np.arctan2(-sign * m[..., j, k], m[..., k, k]), np.arctan2(sign * m[..., k, j], m[..., j, j]))
    c = np.where(free, np.arctan2(-sign * m[..., i, j], m[..., i, i]), 0.0)
    return np.stack([a, b, c], -1)
