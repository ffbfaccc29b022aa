"""Renderer for machines without a GPU's OpenGL: a depth-buffered triangle rasteriser in numpy.

It draws what the OpenGL backend draws, at the same pixel centres: every triangle covers the pixels whose
centres lie inside it (on an edge two triangles share, both claim the pixel, so a closed mesh has no gaps),
the nearest surface wins each pixel, and each pixel is lit with the normal interpolated from the mesh's
vertex normals, as OpenGL's fragment shader does. No Python loop runs per triangle or per pixel: every step
works on all the triangles, all their rows of pixels, or all their pixels at once, so a body of 27,000
triangles in a 1080p frame takes milliseconds, where one fill call per triangle took tens of them.
Edges are not smoothed (OpenGL's are, by multisampling).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bodyfit_cli.render.scene import AMBIENT, GAMMA, LIGHTS, NEAR, Camera, MeshToDraw, vertex_normals

# Candidate pixels (a triangle's pixels, before depth testing) handled at once: bounds the memory that a few
# triangles covering the whole image take (a floor reaching to the camera) to about 100 bytes each.
_CHUNK = 1 << 20


@dataclass
class _Triangles:
    """Triangles facing the camera, one column per triangle: the corners' pixel rows v and 1 / z (3, T), their
    normals (3 corners, 3 axes, T), which mesh each triangle is of (T,), and its edges and area (`_edges`)."""

    v: np.ndarray
    inv_z: np.ndarray
    normals: np.ndarray
    mesh: np.ndarray
    edges: np.ndarray
    area: np.ndarray


def render(meshes: list[MeshToDraw], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Draw camera-frame meshes: (rgb uint8 HxWx3, alpha float32 HxW, 1 on the meshes)."""
    width, height = camera.width, camera.height
    parts = [_triangles(mesh, i, camera) for i, mesh in enumerate(meshes)]
    tri = _Triangles(*(np.concatenate([getattr(p, k) for p in [_NONE, *parts]], axis=-1) for k in _FIELDS))
    edges = tri.edges
    # Across triangle t, a quantity with corner values q (3, T) is sum_k q_k E_k(x, y) / area: a plane
    # (coefficients of x, y, 1). 1 / z is one (the nearest surface has the largest); normal / z three: the
    # perspective-correct normal up to a positive scale, which normalising removes.
    weight = tri.inv_z / tri.area
    depth = sum(edges[k] * weight[k] for k in range(3))
    normal = [sum(edges[k] * (tri.normals[k, d] * weight[k]) for k in range(3)) for d in range(3)]
    nearest = np.full(width * height, -np.inf)  # 1 / z of the nearest surface so far
    winner = np.full(width * height, -1)  # its triangle
    for t, x, y in _pixels(tri.v, edges, width, height):
        pixel = y * width + x
        near = _at(depth, t, x, y)
        np.maximum.at(nearest, pixel, near)
        won = near >= nearest.take(pixel)
        winner[pixel[won]] = t[won]
    covered = np.flatnonzero(winner >= 0)
    t = winner.take(covered)
    y, x = np.divmod(covered, width)
    level = _light(np.stack([_at(plane, t, x, y) for plane in normal]))
    mesh = tri.mesh.take(t)
    rgb = np.zeros((3, height * width), np.uint8)
    for channel, values in zip(rgb, np.array([m.color for m in meshes], np.float64).reshape(-1, 3).T):
        channel[covered] = np.round(np.minimum(values.take(mesh) * level, 1.0) * 255)
    alpha = np.zeros(height * width, np.float32)
    alpha[covered] = 1.0
    return np.ascontiguousarray(rgb.T).reshape(height, width, 3), alpha.reshape(height, width)


_FIELDS = ("v", "inv_z", "normals", "mesh", "edges", "area")
_NONE = _Triangles(
    np.zeros((3, 0)), np.zeros((3, 0)), np.zeros((3, 3, 0)), np.zeros(0, np.int64), np.zeros((3, 3, 0)), np.zeros(0)
)


def _at(plane: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each triangle's plane (3, T) at pixels (x, y) of triangles t."""
    return plane[0].take(t) * x + plane[1].take(t) * y + plane[2].take(t)


def _triangles(mesh: MeshToDraw, index: int, camera: Camera) -> _Triangles:
    """The triangles of mesh number `index` that face the camera, in front of its near plane: those wholly in
    front as they are, one the plane cuts as the one or two triangles of its part in front (normals
    interpolated along the cut)."""
    vertices, faces = mesh.vertices, mesh.faces
    normals = vertex_normals(vertices, faces).T.astype(np.float64)  # (3, V)
    in_front = vertices[:, 2] > NEAR
    corners_in_front = in_front.take(faces.T).sum(axis=0)
    z = np.where(in_front, vertices[:, 2], 1.0)  # vertices behind are used by cut triangles only, below
    u, v = np.ascontiguousarray(camera.project(np.concatenate([vertices[:, :2], z[:, None]], axis=1)).T)
    whole = faces[corners_in_front == 3].T  # (3, T): each corner's vertex
    edges, area = _edges(u.take(whole), v.take(whole))
    facing = np.flatnonzero(area > _THIN)
    whole = whole[:, facing]
    columns = [
        (
            v.take(whole),
            1 / z.take(whole),
            np.stack([n.take(whole) for n in normals], 1),
            edges.take(facing, axis=2),
            area.take(facing),
        )
    ]
    for face in faces[(corners_in_front > 0) & (corners_in_front < 3)]:
        points = np.concatenate([vertices[face], normals[:, face].T], axis=1)  # a corner and its normal, cut alike
        polygon = []
        for a, b in zip(points, np.roll(points, -1, axis=0)):
            if a[2] > NEAR:
                polygon.append(a)
            if (a[2] > NEAR) != (b[2] > NEAR):
                polygon.append(a + (NEAR - a[2]) / (b[2] - a[2]) * (b - a))
        fan = np.array([[polygon[0], polygon[k], polygon[k + 1]] for k in range(1, len(polygon) - 1)]).T
        fan_u, fan_v = camera.project(fan[:3].reshape(3, -1).T).T.reshape(2, 3, -1)  # fan: (6, 3 corners, n)
        edges, area = _edges(fan_u, fan_v)
        facing = area > _THIN
        fan_normals = fan[3:, :, facing].swapaxes(0, 1)
        columns.append((fan_v[:, facing], 1 / fan[2][:, facing], fan_normals, edges[..., facing], area[facing]))
    v, inv_z, corner_normals, edges, area = (np.ascontiguousarray(np.concatenate(c, axis=-1)) for c in zip(*columns))
    return _Triangles(v, inv_z, corner_normals, np.full(len(area), index), edges, area)


# Twice the area, in square pixels, that a triangle must have to be drawn: one seen edge on or from behind
# has none.
_THIN = 1e-12


def _edges(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each triangle's edge functions and twice its area: (3 edges, 3, T) with edge k's (a, b, c), the edge
    across from corner k, and (T,) the area, positive for a triangle facing the camera. E_k(x, y) =
    a x + b y + c is positive inside a facing triangle, and the area at corner k, 0 on the other two.

    The edge between two triangles gets in one the exact negation of its coefficients in the other: a pixel
    centre on it is inside both, never neither."""
    u1, v1, u2, v2 = u[[1, 2, 0]], v[[1, 2, 0]], u[[2, 0, 1]], v[[2, 0, 1]]
    # E_k as the line through the other two corners would have it is negative inside a face seen from its
    # front (corners counter-clockwise on the screen, as from outside, y pointing down): negated, exactly.
    edges = np.stack([v2 - v1, u1 - u2, u2 * v1 - u1 * v2], axis=1)
    area = edges[0, 0] * u[0] + edges[0, 1] * v[0] + edges[0, 2]
    return edges, area


def _pixels(v: np.ndarray, edges: np.ndarray, width: int, height: int) -> Iterator[tuple[np.ndarray, ...]]:
    """The pixels the triangles cover, in chunks: (triangle, x, y) each.

    On each row of pixel centres it spans, a triangle covers one run of pixels: from the largest bound its
    edges set on the left to the smallest they set on the right. Edge k holds where a x + b y + c >= 0: for
    a > 0 right of x = -b/a y - c/a, for a < 0 left of it (the two triangles sharing an edge compute the same
    line); an edge along the rows (a = 0) holds on every row the triangle spans."""
    top = np.clip(np.ceil(v.min(axis=0)), 0, height)
    bottom = np.clip(np.floor(v.max(axis=0)), -1, height - 1)
    rows = np.maximum(bottom - top + 1, 0).astype(np.int64)
    t = np.repeat(np.arange(v.shape[1]), rows)
    y = np.repeat(top, rows) + _ranks(rows)
    left, right = np.full(len(t), -np.inf), np.full(len(t), np.inf)
    for a, b, c in edges:
        with np.errstate(divide="ignore", invalid="ignore"):
            slope, offset = -b / a, -c / a
        for side, bounds, outside in ((a > 0, left, -np.inf), (a < 0, right, np.inf)):
            line = np.where(side, slope, 0.0).take(t) * y + np.where(side, offset, outside).take(t)
            (np.maximum if outside < 0 else np.minimum)(bounds, line, out=bounds)
    first = np.maximum(np.ceil(left), 0)
    counts = np.maximum(np.minimum(np.floor(right), width - 1) - first + 1, 0).astype(np.int64)
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        stop = max(int(np.searchsorted(ends, ends[start] - counts[start] + _CHUNK, side="right")), start + 1)
        n = counts[start:stop]
        x = np.repeat(first[start:stop].astype(np.int64), n) + _ranks(n)
        yield np.repeat(t[start:stop], n), x, np.repeat(y[start:stop].astype(np.int64), n)
        start = stop


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., counts[i] - 1 for each i in turn, concatenated."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def _light(normals: np.ndarray) -> np.ndarray:
    """(3, N) normals (any length) -> (N,) light under the shared lights (Lambert), gamma-encoded like the
    OpenGL output: a colour c shows as (c^gamma light)^(1/gamma) = c light^(1/gamma), clipped to 1."""
    unit = normals / np.maximum(np.sqrt((normals * normals).sum(axis=0)), 1e-12)
    light = np.full(unit.shape[1], AMBIENT)
    for direction, strength in LIGHTS:
        light += strength * np.maximum(-(np.asarray(direction) @ unit), 0.0)
    return light ** (1 / GAMMA)
