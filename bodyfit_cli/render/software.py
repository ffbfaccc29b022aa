"""Renderer for machines with no OpenGL at all: painter's algorithm on OpenCV polygon fills.

Triangles are filled far to near, each in one Lambert-shaded colour. There is no depth buffer, so
triangles that cross each other can overlap wrongly; on a body mesh seen from outside that is rare,
and the price buys a renderer that needs nothing but numpy and OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

from bodyfit_cli.render.scene import AMBIENT, GAMMA, LIGHTS, NEAR, Camera, MeshToDraw

# Fractional bits of the fixed-point corners given to cv2.fillConvexPoly: sub-pixel placement.
_SHIFT = 4
# Corners are clamped here so the fixed-point coordinates fit in int32; with a 1000 px focal, only a
# corner over 600 m to the side at the near plane's 1 cm depth gets there.
_MAX_PIXEL = float(2 ** (30 - _SHIFT))


def render(meshes: list[MeshToDraw], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Draw camera-frame meshes: (rgb uint8 HxWx3, alpha float32 HxW, 1 on the meshes)."""
    corners, colors = [np.zeros((0, 3, 3))], [np.zeros((0, 3))]
    for mesh in meshes:
        tri = mesh.vertices[mesh.faces]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        facing = np.einsum("ij,ij->i", normal, tri[:, 0]) < 0
        corners.append(tri[facing])
        colors.append(_shade(normal[facing], mesh.color))
    polygons, depth, color = _clip_near(np.concatenate(corners), np.concatenate(colors))

    uv = camera.project(polygons.reshape(-1, 3)).reshape(len(polygons), 4, 2)
    lo, hi = uv.min(axis=1), uv.max(axis=1)
    on_image = (hi > -0.5).all(axis=1) & (lo[:, 0] < camera.width - 0.5) & (lo[:, 1] < camera.height - 0.5)
    fixed = np.round(np.clip(uv[on_image], -_MAX_PIXEL, _MAX_PIXEL) * (1 << _SHIFT)).astype(np.int32)
    rgba = np.concatenate([np.round(color[on_image] * 255), np.full((len(fixed), 1), 255.0)], axis=1)

    canvas = np.zeros((camera.height, camera.width, 4), np.uint8)
    order = np.argsort(-depth[on_image], kind="stable")
    for points, fill in zip(fixed[order], rgba[order].tolist()):
        cv2.fillConvexPoly(canvas, points, fill, cv2.LINE_8, _SHIFT)
    return np.ascontiguousarray(canvas[..., :3]), canvas[..., 3].astype(np.float32) / 255


def _shade(normals: np.ndarray, color: tuple[float, float, float]) -> np.ndarray:
    """Per-face colour in [0, 1] under the shared lights, gamma-encoded like the OpenGL output."""
    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    light = np.full(len(unit), AMBIENT)
    for direction, strength in LIGHTS:
        light += strength * np.clip(-(unit @ np.asarray(direction)), 0.0, None)
    linear = np.asarray(color, dtype=np.float64) ** GAMMA * light[:, None]
    return np.clip(linear, 0.0, 1.0) ** (1 / GAMMA)


def _clip_near(tri: np.ndarray, color: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut triangles at the near plane: (N, 4, 3) convex polygons, their depths and colours.

    A triangle cut by the plane leaves three or four corners; all polygons get four corners (a
    triangle repeats its last) so that one array holds them all. Depth is the mean corner z.
    """
    inside = tri[:, :, 2] > NEAR
    whole = inside.all(axis=1)
    polygons = [np.concatenate([tri[whole], tri[whole][:, 2:]], axis=1)]
    depths = [tri[whole][:, :, 2].mean(axis=1)]
    cut = np.flatnonzero(inside.any(axis=1) & ~whole)
    for i in cut:
        kept = []
        for a, b in zip(tri[i], np.roll(tri[i], -1, axis=0)):
            if a[2] > NEAR:
                kept.append(a)
            if (a[2] > NEAR) != (b[2] > NEAR):
                kept.append(a + (NEAR - a[2]) / (b[2] - a[2]) * (b - a))
        depths.append(np.array([np.mean([p[2] for p in kept])]))
        polygons.append(np.array([kept + kept[-1:] * (4 - len(kept))]))
    return np.concatenate(polygons), np.concatenate(depths), np.concatenate([color[whole], color[cut]])
