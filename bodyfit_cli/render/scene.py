"""What both render backends draw: meshes in the OpenCV camera frame, a pinhole camera, the lights.

The lights live here, not in a backend, so that the OpenGL and the software renderer shade a body
alike and a picture does not change look with the machine it was made on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Closest distance in front of the camera that is drawn (m); both backends clip there.
NEAR = 0.01

# Light travelling from the camera into the scene, and one from above and to the left of it, as
# (unit direction of travel in the OpenCV camera frame, strength); every face also gets AMBIENT.
LIGHTS: tuple[tuple[tuple[float, float, float], float], ...] = (
    ((0.0, 0.0, 1.0), 0.5),
    ((0.48, 0.8, 0.36), 0.6),
)
AMBIENT = 0.1

# Both backends write gamma-encoded colours: shading is computed on linear light.
GAMMA = 2.2


@dataclass
class Camera:
    """A pinhole camera in the OpenCV convention.

    A point (x, y, z) of the camera frame (x right, y down, z forward, metres) lands on pixel
    u = fx x / z + cx, v = fy y / z + cy, where integer (u, v) is the centre of a pixel, as in
    `cv2.projectPoints`.
    """

    focal: tuple[float, float]
    center: tuple[float, float]
    width: int
    height: int

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) camera-frame points in front of the camera -> (N, 2) pixel coordinates."""
        z = points[:, 2:3]
        return points[:, :2] / z * np.asarray(self.focal) + np.asarray(self.center)

    def shrunk(self, factor: float, width: int, height: int) -> Camera:
        """The camera of a copy of its image resized by `factor` on both axes (OpenCV's fx = fy = factor),
        width x height pixels: pixel centres are integers, so a point at u is at (u + 0.5) * factor - 0.5."""
        (fx, fy), (cx, cy) = self.focal, self.center
        center = ((cx + 0.5) * factor - 0.5, (cy + 0.5) * factor - 0.5)
        return Camera((fx * factor, fy * factor), center, width, height)


@dataclass
class MeshToDraw:
    """A triangle mesh and its colour.

    vertices: (V, 3) in metres, in the camera frame unless a pose is given to `render`.
    faces: (F, 3) vertex indices, counter-clockwise seen from outside: faces seen from behind are
        not drawn, as a closed body mesh hides them anyway.
    color: RGB in [0, 1].
    """

    vertices: np.ndarray
    faces: np.ndarray
    color: tuple[float, float, float] = (0.65, 0.74, 0.86)

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be (V, 3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {self.faces.shape}")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError(f"faces index past the {len(self.vertices)} vertices")


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float32 unit normals of a smooth surface: at each vertex, the mean of its faces' normals
    weighted by their areas (the sum of the faces' cross products). Worked out one axis at a time: a
    video's overlay computes them every frame."""
    axes = np.ascontiguousarray(vertices.T)  # (3, V)
    first, second, third = (axes.take(corner, axis=1) for corner in faces.T)
    a, b = second - first, third - first
    cross = a[[1, 2, 0]] * b[[2, 0, 1]] - a[[2, 0, 1]] * b[[1, 2, 0]]
    corners = faces.T.reshape(-1)  # every face's first corners, then their second, then their third
    summed = np.stack([np.bincount(corners, np.tile(c, 3), len(vertices)) for c in cross])
    length = np.sqrt((summed * summed).sum(axis=0))
    return np.ascontiguousarray((summed / np.maximum(length, 1e-12)).T, dtype=np.float32)
