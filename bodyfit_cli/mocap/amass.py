"""AMASS `.npz` reading. AMASS stores SMPL-H/SMPL-X parameters, not joint positions, so it gets its own type.

AMASS's world frame is z-up (the SMPL body's own frame is y-up and AMASS tilts it with
`global_orient`); the values are kept exactly as stored, so `global_orient` and `trans` are z-up.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bodyfit_cli.errors import InputError

BODY_JOINTS = 21  # SMPL-H/SMPL-X body joints after the root; SMPL has 23 (two more for the hands)
NUM_BETAS = 10
FRAMERATE_KEYS = ("mocap_framerate", "mocap_frame_rate")  # AMASS's SMPL-H and SMPL-X releases


@dataclass(frozen=True)
class AmassClip:
    """SMPL parameters per frame, in AMASS's z-up world frame."""

    name: str
    global_orient: np.ndarray  # (T, 3) axis-angle of the pelvis
    body_pose: np.ndarray  # (T, 69) SMPL layout: 21 body joints from AMASS, then 2 zero hand joints
    betas: np.ndarray  # (10,) shape; zero-padded if the file has fewer
    trans: np.ndarray  # (T, 3)
    fps: float
    gender: str | None
    source: str


def read_amass(path: Path) -> AmassClip:
    """Read one AMASS motion file (raises InputError on missing keys or wrong shapes)."""
    path = Path(path)
    data = _load(path)
    poses = _array(path, data, "poses", lambda a: a.ndim == 2 and a.shape[1] >= 3 * (1 + BODY_JOINTS), "(T, >= 66)")
    frames = len(poses)
    trans = _array(path, data, "trans", lambda a: a.shape == (frames, 3), f"({frames}, 3)")
    betas = _array(path, data, "betas", lambda a: a.ndim == 1, "(B,)")[:NUM_BETAS]
    key = next((k for k in FRAMERATE_KEYS if k in data), FRAMERATE_KEYS[0])
    fps = float(_array(path, data, key, lambda a: a.size == 1 and a.item() > 0, "one positive number").item())
    hands = np.zeros((frames, 6), np.float32)
    return AmassClip(
        name=path.stem,
        global_orient=poses[:, :3].astype(np.float32),
        body_pose=np.concatenate([poses[:, 3 : 3 * (1 + BODY_JOINTS)].astype(np.float32), hands], axis=1),
        betas=np.pad(betas.astype(np.float32), (0, NUM_BETAS - len(betas))),
        trans=trans.astype(np.float32),
        fps=fps,
        gender=_text(data["gender"]) if "gender" in data else None,
        source=str(path),
    )


def _load(path: Path) -> dict[str, np.ndarray]:
    """All arrays of the archive, read now so that a corrupt member fails here with the file's name."""
    try:
        archive = np.load(path, allow_pickle=False)
        if isinstance(archive, np.lib.npyio.NpzFile):
            with archive:
                return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise InputError(f"cannot read AMASS file: {path} (no such file)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read AMASS file: {path} (not a readable .npz archive: {exc})") from exc
    raise InputError(f"cannot read AMASS file: {path} (a single array, not an .npz archive)")


def _text(array: np.ndarray) -> str:
    """A string stored as a 0-d array, as str or bytes (AMASS has both)."""
    value = array.item()
    return value.decode() if isinstance(value, bytes) else str(value)


def _array(
    path: Path, data: dict[str, np.ndarray], key: str, valid: Callable[[np.ndarray], bool], shape: str
) -> np.ndarray:
    """data[key] as a number array passing `valid`, or an InputError naming the key and expected shape."""
    if key not in data:
        raise InputError(f"{path}: no {key!r} array (has {', '.join(sorted(data)) or 'nothing'})")
    array = data[key]
    if not np.issubdtype(array.dtype, np.number) or not valid(array):
        raise InputError(f"{path}: {key!r} should be {shape} numbers, got {array.dtype} {array.shape}")
    return array
