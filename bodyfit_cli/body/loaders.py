"""The body-model registry: `--body-model` names -> loaders of `BodyModelData`.

Search order for model files: `--model-dir`, then `$BODYFIT_MODEL_DIR`, then the shipped models folder
(`bodyfit_cli.shipped.models_dir()`: the repository's `models/`, installed as `bodyfit_models`), each
following smplx's layout (`smpl/SMPL_NEUTRAL.pkl`, `smplx/SMPLX_NEUTRAL.npz`).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bodyfit_cli.body.model import BodyModelData
from bodyfit_cli.errors import BodyModelError
from bodyfit_cli.shipped import models_dir
from bodyfit_cli.vocabulary import (
    BODY_MODEL_NAMES,
    KEYPOINT_INDEX,
    KEYPOINT_NAMES,
    LIMB_KEYPOINTS,
    SMPL_JOINT_INDEX,
)

DEFAULT_MODEL_FILE = "default_body.npz"

# Surface landmarks of the SMPL and SMPL-X meshes, by vertex id (the ids the SMPL family's own
# tools use for the OpenPose face and foot points).
SMPL_SURFACE_VERTICES = {
    "nose": 332,
    "left_eye": 2800,
    "right_eye": 6260,
    "left_ear": 583,
    "right_ear": 4071,
    "left_heel": 3387,
    "right_heel": 6787,
    "left_big_toe": 3216,
    "right_big_toe": 6617,
}
SMPLX_SURFACE_VERTICES = {
    "nose": 9120,
    "left_eye": 9448,
    "right_eye": 9929,
    "left_ear": 6,
    "right_ear": 616,
    "left_heel": 8846,
    "right_heel": 8635,
    "left_big_toe": 5770,
    "right_big_toe": 8463,
}
# SMPL-X joints that stand in for SMPL's hand joints (the middle finger's first joints).
SMPLX_HAND_JOINTS = {"left_hand": 28, "right_hand": 43}

WHERE_TO_GET = {
    "smpl": "download SMPL from https://smpl.is.tue.mpg.de (registration required)",
    "smplx": "download SMPL-X from https://smpl-x.is.tue.mpg.de (registration required)",
}


def search_dirs(model_dir: Path | None) -> list[Path]:
    dirs = [model_dir] if model_dir else []
    if os.environ.get("BODYFIT_MODEL_DIR"):
        dirs.append(Path(os.environ["BODYFIT_MODEL_DIR"]))
    dirs.append(models_dir())
    return dirs


def _find(relative: list[str], model_dir: Path | None, what: str) -> Path:
    for d in search_dirs(model_dir):
        for rel in relative:
            if (d / rel).is_file():
                return d / rel
            if d.is_file() and d.name == Path(rel).name:
                return d
    first = search_dirs(model_dir)[0] / relative[0]
    hint = WHERE_TO_GET.get(what, "rebuild it with: python -m bodyfit_cli.body.build_default")
    raise BodyModelError(f"{what} body model not found: expected {first}; {hint} and pass --model-dir")


def load_default(model_dir: Path | None = None) -> BodyModelData:
    """bodyfit's open default model (built from anny by `bodyfit_cli.body.build_default`)."""
    path = _find([DEFAULT_MODEL_FILE], model_dir, "default")
    d = _load_npz(path)
    try:
        return BodyModelData(
            name="default",
            v_template=d["v_template"],
            shapedirs=d["shapedirs"],
            J_regressor=d["J_regressor"],
            weights=d["weights"],
            parents=d["kintree_table"][0],
            faces=d["f"],
            landmark_ids=d["landmark_ids"],
            landmark_weights=d["landmark_weights"],
        )
    except KeyError as e:
        raise BodyModelError(f"malformed body model {path}: missing array {e.args[0]}") from None


def load_smpl(model_dir: Path | None = None) -> BodyModelData:
    """An official SMPL (or SMPL-H) .pkl/.npz, read without chumpy."""
    path = _find(["smpl/SMPL_NEUTRAL.pkl", "smpl/SMPL_NEUTRAL.npz", "SMPL_NEUTRAL.pkl"], model_dir, "smpl")
    d = read_smpl_pickle(path) if path.suffix == ".pkl" else _load_npz(path)
    return _smpl_family(path, d, "smpl", SMPL_SURFACE_VERTICES)


def load_smplx(model_dir: Path | None = None) -> BodyModelData:
    """An official SMPL-X .npz/.pkl, body joints only (hands and face at rest)."""
    path = _find(["smplx/SMPLX_NEUTRAL.npz", "smplx/SMPLX_NEUTRAL.pkl", "SMPLX_NEUTRAL.npz"], model_dir, "smplx")
    d = read_smpl_pickle(path) if path.suffix == ".pkl" else _load_npz(path)
    data = _smpl_family(path, d, "smplx", SMPLX_SURFACE_VERTICES)
    n = len(data.parents)
    if n < 55:
        raise BodyModelError(f"malformed SMPL-X model {path}: {n} joints, expected 55")
    data.smpl_joints = np.array(list(range(22)) + [SMPLX_HAND_JOINTS["left_hand"], SMPLX_HAND_JOINTS["right_hand"]])
    data.pose_joints = np.array(list(range(1, 22)) + [-1, -1])
    return data


BODY_MODELS: dict[str, Callable[[Path | None], BodyModelData]] = dict(
    zip(BODY_MODEL_NAMES, (load_default, load_smpl, load_smplx), strict=True)
)


def load_body_model(name: str, model_dir: Path | None = None) -> BodyModelData:
    if name not in BODY_MODELS:
        raise BodyModelError(f"unknown body model '{name}' (choose from {', '.join(BODY_MODELS)})")
    return BODY_MODELS[name](model_dir)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise BodyModelError(f"malformed body model {path}: {e}") from None


class _ChumpyStandIn:
    """Receives a pickled chumpy object's state; its value lives in the attribute `x`."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _NoChumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle protocol)
        if module.split(".")[0] == "chumpy":
            return _ChumpyStandIn
        return super().find_class(module, name)


def read_smpl_pickle(path: Path) -> dict[str, np.ndarray]:
    """Load an SMPL-family .pkl (Python 2, latin1, chumpy arrays) into plain numpy arrays."""
    try:
        with open(path, "rb") as f:
            raw = _NoChumpyUnpickler(f, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as e:
        raise BodyModelError(f"malformed body model {path}: {e}") from None
    if not isinstance(raw, dict):
        raise BodyModelError(f"malformed body model {path}: not a dictionary of arrays")
    out = {}
    for key, value in raw.items():
        if isinstance(value, _ChumpyStandIn):
            if "x" not in value.__dict__:
                raise BodyModelError(f"malformed body model {path}: '{key}' is a chumpy expression, not an array")
            value = value.x
        if hasattr(value, "toarray"):  # scipy.sparse J_regressor
            value = value.toarray()
        out[key] = value if isinstance(value, str) else np.asarray(value)
    return out


def _smpl_family(path: Path, d: dict[str, np.ndarray], name: str, surface: dict[str, int]) -> BodyModelData:
    try:
        v_template = np.asarray(d["v_template"], np.float64)
        j_reg = np.asarray(d["J_regressor"], np.float64)
        parents = np.asarray(d["kintree_table"])[0].astype(np.int64)
        data = BodyModelData(
            name=name,
            v_template=v_template,
            shapedirs=np.asarray(d["shapedirs"], np.float64),
            J_regressor=j_reg,
            weights=np.asarray(d["weights"], np.float64),
            parents=parents,
            faces=np.asarray(d["f"]).astype(np.int64),
            landmark_ids=np.zeros((len(KEYPOINT_NAMES), 1), np.int64),
            landmark_weights=np.zeros((len(KEYPOINT_NAMES), 1)),
            posedirs=_posedirs(d, v_template.shape[0]),
        )
    except (KeyError, IndexError, ValueError) as e:
        raise BodyModelError(f"malformed {name} model {path}: {e}") from None
    n_v = v_template.shape[0]
    if j_reg.shape[1] != n_v or data.weights.shape[0] != n_v or max(surface.values()) >= n_v:
        raise BodyModelError(f"malformed {name} model {path}: arrays disagree on the vertex count ({n_v})")
    data.landmark_ids, data.landmark_weights = _joint_landmarks(j_reg, surface)
    return data


def _posedirs(d: dict[str, np.ndarray], n_verts: int) -> np.ndarray | None:
    if "posedirs" not in d:
        return None
    p = np.asarray(d["posedirs"], np.float64)
    return p.reshape(n_verts * 3, -1).T  # (V, 3, P) -> (P, V*3), SMPL's pose-corrective layout


def _joint_landmarks(j_reg: np.ndarray, surface: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Limb keypoints as the model's own joint regressor rows, the rest as single surface vertices."""
    rows = {name: j_reg[SMPL_JOINT_INDEX[name]] for name in LIMB_KEYPOINTS}
    width = max(int((r > 0).sum()) for r in rows.values())
    ids = np.zeros((len(KEYPOINT_NAMES), width), np.int64)
    weights = np.zeros((len(KEYPOINT_NAMES), width))
    for name, row in rows.items():
        nz = np.flatnonzero(row > 0)
        k = KEYPOINT_INDEX[name]
        ids[k, : len(nz)] = nz
        weights[k, : len(nz)] = row[nz] / row[nz].sum()
    for name, vid in surface.items():
        ids[KEYPOINT_INDEX[name], 0] = vid
        weights[KEYPOINT_INDEX[name], 0] = 1.0
    return ids, weights
