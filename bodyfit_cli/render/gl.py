"""OpenGL renderer: pyrender, headless through EGL when there is no display.

One offscreen renderer, hence one GL context, serves the whole process and is resized when the
image size changes (which only reallocates its framebuffers): a context costs far more than a
frame, and a video is thousands of frames of one size.
"""

from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import Any

import numpy as np
import trimesh

from bodyfit_cli.render.scene import AMBIENT, GAMMA, LIGHTS, NEAR, Camera, MeshToDraw

# OpenCV camera frame -> OpenGL camera frame (y up, z backward): a half turn about x.
_CV_TO_GL = np.array([1.0, -1.0, -1.0])


class GLUnavailable(Exception):
    """OpenGL cannot render on this machine; the message says why, on one line."""


class _Context:
    """The process's one renderer, and whether OpenGL turned out to work here.

    A failure before the first frame ever drawn means OpenGL does not work on this machine, and is
    remembered so that later calls do not retry the slow setup; a failure after it is a bug and
    propagates as is.
    """

    def __init__(self) -> None:
        self._renderer: Any = None
        self._failure: str | None = None
        self._drawn = False
        self._lock = threading.Lock()  # a GL context is current in one thread at a time

    def render(self, meshes: list[MeshToDraw], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._failure is not None:
                raise GLUnavailable(self._failure)
            try:
                pyrender = _import_pyrender()
                if self._renderer is None:
                    self._renderer = pyrender.OffscreenRenderer(camera.width, camera.height)
            except Exception as error:
                raise self._unavailable(error) from error
            scene = _scene(pyrender, meshes, camera)
            self._renderer.viewport_width, self._renderer.viewport_height = camera.width, camera.height
            try:
                rgba, _ = self._renderer.render(scene, flags=pyrender.RenderFlags.RGBA)
            except Exception as error:
                if self._drawn:
                    raise
                raise self._unavailable(error) from error
            self._drawn = True
        alpha = rgba[..., 3].astype(np.float32) / 255
        # Multisampled edges come back blended with the transparent black background.
        covered = alpha[..., None] > 0
        straight = np.divide(rgba[..., :3], alpha[..., None], out=np.zeros(alpha.shape + (3,)), where=covered)
        return np.clip(np.round(straight), 0, 255).astype(np.uint8), alpha

    def _unavailable(self, error: Exception) -> GLUnavailable:
        self._failure = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        return GLUnavailable(self._failure)


_CONTEXT = _Context()


def render(meshes: list[MeshToDraw], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Draw camera-frame meshes: (rgb uint8 HxWx3, alpha float32 HxW); raises GLUnavailable."""
    return _CONTEXT.render(meshes, camera)


def _import_pyrender() -> ModuleType:
    """pyrender, told to use EGL (no window system needed) when there is no display to open."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender

    return pyrender


def _scene(pyrender: ModuleType, meshes: list[MeshToDraw], camera: Camera) -> Any:
    scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(AMBIENT, AMBIENT, AMBIENT))
    for mesh in meshes:
        if len(mesh.faces) == 0:
            continue
        # The shader works on linear colours and gamma-encodes its output.
        material = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=(*(np.asarray(mesh.color) ** GAMMA), 1.0), metallicFactor=0.0, roughnessFactor=0.6
        )
        shape = trimesh.Trimesh(mesh.vertices * _CV_TO_GL, mesh.faces, process=False)
        scene.add(pyrender.Mesh.from_trimesh(shape, material=material, smooth=True))
    (fx, fy), (cx, cy) = camera.focal, camera.center
    far = max([2 * NEAR] + [1.5 * m.vertices[:, 2].max() for m in meshes if len(m.vertices)])
    # pyrender counts pixels from their corner, OpenCV from their centre.
    scene.add(pyrender.IntrinsicsCamera(fx, fy, cx + 0.5, cy + 0.5, znear=NEAR, zfar=far))
    for direction, strength in LIGHTS:
        # A directional light shines along its node's -z; the shader divides diffuse light by pi.
        pose = trimesh.geometry.align_vectors([0.0, 0.0, -1.0], np.asarray(direction) * _CV_TO_GL)
        scene.add(pyrender.DirectionalLight(intensity=strength * np.pi), pose=pose)
    return scene
