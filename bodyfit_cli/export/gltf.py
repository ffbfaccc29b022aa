"""A track's motion as an animated, skinned glTF 2.0 binary (.glb), written with numpy, struct and json.

The file holds the track's body at rest (SMPL's T-pose in the body's own frame: vertices, normals,
triangles), a node per SMPL joint under its parent, a skin (the joints, their inverse bind matrices, each
vertex's four strongest joint weights renormalised: glTF's JOINTS_0/WEIGHTS_0 take four), and one
animation: the root's translation and every joint's rotation (quaternions) at each frame, linearly
interpolated, the times in seconds of the clip (a track that starts later starts later). The world is
glTF's: y up, metres. Skinned, the mesh is the body model's own mesh up to the weights left out (1% of the
weight at most, on the default model) and the pose correctives that SMPL and SMPL-X have.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.export.bvh import BVH_JOINT_NAMES
from bodyfit_cli.export.motion import RestBody, TrackMotion
from bodyfit_cli.geometry.rotations import matrix_to_quaternion
from bodyfit_cli.render.scene import vertex_normals
from bodyfit_cli.vocabulary import SMPL_PARENTS

INFLUENCES = 4  # joints per vertex in JOINTS_0 / WEIGHTS_0
# glTF's numbers for component types, buffer view targets and GLB chunks.
FLOAT, UNSIGNED_BYTE, UNSIGNED_INT = 5126, 5121, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
GLB_MAGIC, GLB_JSON, GLB_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
_TYPES = {1: "SCALAR", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


class _Buffer:
    """The binary chunk, filled array by array, with a buffer view and an accessor for each."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, array: np.ndarray, component: int, target: int | None = None, bounds: bool = False) -> int:
        """Append `array` (count, width) or (count,); returns its accessor's index."""
        dtype = {FLOAT: np.float32, UNSIGNED_BYTE: np.uint8, UNSIGNED_INT: np.uint32}[component]
        array = np.ascontiguousarray(array, dtype=dtype)
        self.data.extend(b"\0" * (-len(self.data) % 4))  # every view starts 4-byte aligned
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": array.nbytes}
        if target is not None:
            view["target"] = target
        self.data.extend(array.tobytes())
        self.views.append(view)
        rows = array.reshape(len(array), -1)
        accessor = {
            "bufferView": len(self.views) - 1,
            "componentType": component,
            "count": len(array),
            "type": _TYPES[rows.shape[1]],
        }
        if bounds:  # required for positions and animation times
            accessor["min"], accessor["max"] = rows.min(0).tolist(), rows.max(0).tolist()
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def write_glb(path: Path, motion: TrackMotion, rest: RestBody, generator: str) -> None:
    """Write `motion`, skinning the body `rest`, to `path` (a temporary file: the caller renames it)."""
    n_joints = len(SMPL_PARENTS)
    buffer = _Buffer()
    joints, weights = strongest_weights(rest.weights)
    attributes = {
        "POSITION": buffer.add(rest.vertices, FLOAT, ARRAY_BUFFER, bounds=True),
        "NORMAL": buffer.add(unit_normals(rest.vertices, rest.faces), FLOAT, ARRAY_BUFFER),
        "JOINTS_0": buffer.add(joints, UNSIGNED_BYTE, ARRAY_BUFFER),
        "WEIGHTS_0": buffer.add(weights, FLOAT, ARRAY_BUFFER),
    }
    indices = buffer.add(rest.faces.reshape(-1), UNSIGNED_INT, ELEMENT_ARRAY_BUFFER)
    # At bind time every joint node is unturned, so its world transform is a move to its rest position.
    inverse_bind = np.tile(np.eye(4), (n_joints, 1, 1))
    inverse_bind[:, :3, 3] = -rest.joints
    inverse_bind_matrices = buffer.add(inverse_bind.transpose(0, 2, 1).reshape(n_joints, 16), FLOAT)  # column-major

    times = buffer.add(motion.start_time_s + np.arange(motion.num_frames) / motion.fps, FLOAT, bounds=True)
    samplers = [{"input": times, "output": buffer.add(motion.pelvis, FLOAT), "interpolation": "LINEAR"}]
    channels = [{"sampler": 0, "target": {"node": 0, "path": "translation"}}]
    for j, quaternions in enumerate(_quaternions(motion.rotations).transpose(1, 0, 2)):
        channels.append({"sampler": len(samplers), "target": {"node": j, "path": "rotation"}})
        samplers.append({"input": times, "output": buffer.add(quaternions, FLOAT), "interpolation": "LINEAR"})

    nodes: list[dict] = []
    for j in range(n_joints):
        parent = SMPL_PARENTS[j]
        node: dict = {"name": BVH_JOINT_NAMES[j]}
        node["translation"] = (rest.joints[j] - (rest.joints[parent] if parent >= 0 else 0.0)).tolist()
        kids = [c for c in range(n_joints) if SMPL_PARENTS[c] == j]
        if kids:
            node["children"] = kids
        nodes.append(node)
    name = f"track {motion.track_id}"
    nodes.append({"name": name, "mesh": 0, "skin": 0})
    document = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"name": name, "nodes": [0, n_joints]}],
        "nodes": nodes,
        "meshes": [{"name": name, "primitives": [{"attributes": attributes, "indices": indices, "mode": 4}]}],
        "skins": [
            {"name": name, "joints": list(range(n_joints)), "skeleton": 0, "inverseBindMatrices": inverse_bind_matrices}
        ],
        "animations": [{"name": name, "samplers": samplers, "channels": channels}],
        "buffers": [{"byteLength": len(buffer.data)}],
        "bufferViews": buffer.views,
        "accessors": buffer.accessors,
    }
    path.write_bytes(glb_bytes(document, bytes(buffer.data)))


def glb_bytes(document: dict, binary: bytes) -> bytes:
    """The GLB container: a 12-byte header, the JSON chunk (padded with spaces), the BIN chunk (with zeros)."""
    text = json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", GLB_MAGIC, 2, total),
            struct.pack("<II", len(text), GLB_JSON),
            text,
            struct.pack("<II", len(binary), GLB_BIN),
            binary,
        ]
    )


def strongest_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, 4) joint indices and (V, 4) weights: each vertex's four largest weights, summing to 1; joint 0 where
    the weight is 0 (what glTF asks of unused slots)."""
    joints = np.argsort(-weights, axis=1, kind="stable")[:, :INFLUENCES]
    kept = np.take_along_axis(weights, joints, 1)
    return np.where(kept > 0, joints, 0), kept / kept.sum(1, keepdims=True)


def unit_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals as the overlay draws them; a vertex on no face gets +y, since glTF asks for unit length."""
    normals = vertex_normals(vertices, faces)
    return np.where(np.any(normals != 0, axis=1, keepdims=True), normals, np.float32([0.0, 1.0, 0.0]))


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(F, J, 3, 3) -> (F, J, 4) glTF quaternions (x, y, z, w), each on the same side as the frame before, so
    that interpolating between two frames takes the short way."""
    q = matrix_to_quaternion(torch.as_tensor(rotations)).numpy()[..., [1, 2, 3, 0]]
    turns = np.where((q[1:] * q[:-1]).sum(-1) < 0, -1.0, 1.0)  # whether frame t flips side from frame t - 1
    sides = np.cumprod(np.concatenate([np.ones((1, q.shape[1])), turns]), axis=0)
    return q * sides[..., None]
