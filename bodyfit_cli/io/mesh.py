"""Writing fitted body meshes as OBJ, PLY or GLB, the format following the file suffix.

OBJ, the default, is written here, as trimesh writes it (the same bytes): importing trimesh (scipy,
networkx) takes longer than fitting a photo. PLY and GLB go through trimesh, imported when first asked for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bodyfit_cli.io.atomic import write_bytes_atomic
from bodyfit_cli.vocabulary import MESH_FORMATS

MESH_SUFFIXES: frozenset[str] = frozenset(f".{f}" for f in MESH_FORMATS)
# trimesh's OBJ header line, kept so the files stay what they were when trimesh wrote them.
_OBJ_HEADER = "# https://github.com/mikedh/trimesh"


def write_mesh_atomic(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh atomically, keeping vertex order so indices match the body model.

    trimesh must not `process` the mesh: merging or reordering vertices would break any
    per-vertex correspondence downstream tools rely on.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise ValueError(f"unknown mesh format '{path.suffix}' for {path} (use .obj, .ply or .glb)")
    vertices, faces = np.asarray(vertices), np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"expected (N, 3) vertices and (M, 3) faces, got {vertices.shape} and {faces.shape}")
    if suffix == ".obj" and len(vertices) and len(faces):
        write_bytes_atomic(path, obj_text(vertices, faces).encode("utf-8"))
        return
    import trimesh

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    if suffix == ".obj":
        # No normals and no .mtl: a bare mesh is what other tools expect, with one file per mesh.
        data = mesh.export(file_type="obj", include_normals=False, include_color=False, include_texture=False)
    else:
        data = mesh.export(file_type=suffix[1:])
    write_bytes_atomic(path, data.encode("utf-8") if isinstance(data, str) else data)


def obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    """A bare OBJ (vertices with 8 decimals, 1-based triangles; no normals, colours or .mtl), character for
    character what trimesh's `export(file_type="obj", include_normals=False, include_color=False,
    include_texture=False)` gives for a mesh made with `process=False`."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64) + 1
    v_lines = ("v {:.8f} {:.8f} {:.8f}\n" * len(v)).format(*v.ravel().tolist())
    f_lines = ("f {} {} {}\n" * len(f)).format(*f.ravel().tolist())
    return f"{_OBJ_HEADER}\n{v_lines}{f_lines}\n"
