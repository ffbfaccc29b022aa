"""OpenGL renderer: pyrender, headless through EGL when there is no display.

One offscreen renderer, hence one GL context, serves the whole process, and one scene with its lights
and camera: each call only swaps the meshes in and sets the camera. A context costs far more than a
frame, and a video is thousands of frames of one size; the viewport is resized when the image size
changes (which only reallocates its framebuffers).
"""

from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import Any

import numpy as np

from bodyfit_cli.render.scene import AMBIENT, GAMMA, LIGHTS, NEAR, Camera, MeshToDraw, vertex_normals

# OpenCV camera frame -> OpenGL camera frame (y up, z backward): a half turn about x.
_CV_TO_GL = np.array([1.0, -1.0, -1.0])


# What CPU rasterisers call themselves in GL_RENDERER: Mesa's (llvmpipe, softpipe, swrast) and SwiftShader.
_CPU_RASTERISERS = ("llvmpipe", "softpipe", "swrast", "swiftshader")


class GLUnavailable(Exception):
    """OpenGL cannot render on this machine; the message says why, on one line."""


class _Context:
    """The process's one renderer and scene, and whether OpenGL turned out to work here.

    A failure before the first frame ever drawn means OpenGL does not work on this machine, and is
    remembered so that later calls do not retry the slow setup; a failure after it is a bug and
    propagates as is.
    """

    def __init__(self) -> None:
        self._renderer: Any = None
        self._scene: Any = None
        self._camera: Any = None
        self._device = ""
        self._materials: dict[tuple[float, ...], Any] = {}  # one per colour, made once
        self._failure: str | None = None
        self._drawn = False
        self._lock = threading.Lock()  # one frame at a time through the one context and scene

    def device(self) -> str:
        """What draws OpenGL's pictures here (GL_RENDERER: a GPU's name, or a CPU rasteriser's)."""
        with self._lock:
            self._start(1, 1)
            return self._device

    def render(self, meshes: list[MeshToDraw], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            pyrender = self._start(camera.width, camera.height)
            try:
                self._set_scene(pyrender, meshes, camera)
                self._renderer.viewport_width, self._renderer.viewport_height = camera.width, camera.height
                try:
                    rgba, _ = self._renderer.render(self._scene, flags=pyrender.RenderFlags.RGBA)
                except Exception as error:
                    if self._drawn:
                        raise
                    raise self._unavailable(error) from error
            finally:  # this call's meshes out again; their GL buffers are freed at the next render
                for node in list(self._scene.mesh_nodes):
                    self._scene.remove_node(node)
            self._drawn = True
        alpha = rgba[..., 3].astype(np.float32) / 255
        # Multisampled edges come back blended with the transparent black background.
        covered = alpha[..., None] > 0
        straight = np.zeros(alpha.shape + (3,), np.float32)
        np.divide(rgba[..., :3], alpha[..., None], out=straight, where=covered)
        return np.clip(np.round(straight), 0, 255).astype(np.uint8), alpha

    def _start(self, width: int, height: int) -> ModuleType:
        """pyrender, with the renderer and scene made on the first call; raises GLUnavailable."""
        if self._failure is not None:
            raise GLUnavailable(self._failure)
        try:
            pyrender = _import_pyrender()
            if self._renderer is None:
                self._renderer = pyrender.OffscreenRenderer(width, height)  # its context is now current
                from OpenGL.GL import GL_RENDERER, glGetString

                self._device = glGetString(GL_RENDERER).decode(errors="replace")
                self._scene, self._camera = _empty_scene(pyrender)
        except Exception as error:
            raise self._unavailable(error) from error
        return pyrender

    def _set_scene(self, pyrender: ModuleType, meshes: list[MeshToDraw], camera: Camera) -> None:
        """This call's meshes into the scene, and the camera set to `camera`."""
        for mesh in meshes:
            if len(mesh.faces) == 0:
                continue
            vertices = mesh.vertices * _CV_TO_GL
            primitive = pyrender.Primitive(
                positions=vertices.astype(np.float32),
                normals=vertex_normals(vertices, mesh.faces),
                indices=mesh.faces,
                material=self._material(pyrender, mesh.color),
            )
            self._scene.add(pyrender.Mesh([primitive]))
        (fx, fy), (cx, cy) = camera.focal, camera.center
        # pyrender counts pixels from their corner, OpenCV from their centre.
        self._camera.fx, self._camera.fy, self._camera.cx, self._camera.cy = fx, fy, cx + 0.5, cy + 0.5
        self._camera.zfar = max([2 * NEAR] + [1.5 * m.vertices[:, 2].max() for m in meshes if len(m.vertices)])

    def _material(self, pyrender: ModuleType, color: tuple[float, float, float]) -> Any:
        key = tuple(float(c) for c in color)
        if key not in self._materials:
            # The shader works on linear colours and gamma-encodes its output.
            self._materials[key] = pyrender.MetallicRoughnessMaterial(
                baseColorFactor=(*(np.asarray(key) ** GAMMA), 1.0), metallicFactor=0.0, roughnessFactor=0.6
            )
        return self._materials[key]

    def _unavailable(self, error: Exception) -> GLUnavailable:
        self._failure = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        return GLUnavailable(self._failure)


_CONTEXT = _Context()


def render(meshes: list[MeshToDraw], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Draw camera-frame meshes: (rgb uint8 HxWx3, alpha float32 HxW); raises GLUnavailable."""
    return _CONTEXT.render(meshes, camera)


def on_cpu() -> bool:
    """Whether OpenGL draws on the CPU here (Mesa's llvmpipe where there is no GPU, ...): there the built-in
    renderer is faster (15 against 50-70 ms for a person in a 1080p frame, 2-core x86_64 CPU). Raises
    GLUnavailable."""
    device = _CONTEXT.device().lower()
    return any(name in device for name in _CPU_RASTERISERS)


def _import_pyrender() -> ModuleType:
    """pyrender, told to use EGL (no window system needed) when there is no display to open."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender

    return pyrender


def _empty_scene(pyrender: ModuleType) -> tuple[Any, Any]:
    """A scene with the shared lights and a camera to set per call, and that camera."""
    import trimesh  # pyrender's own dependency: imported with it, not with this module (the software renderer)

    scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(AMBIENT, AMBIENT, AMBIENT))
    camera = pyrender.IntrinsicsCamera(1.0, 1.0, 0.0, 0.0, znear=NEAR, zfar=2 * NEAR)
    scene.add(camera)
    for direction, strength in LIGHTS:
        # A directional light shines along its node's -z; the shader divides diffuse light by pi.
        pose = trimesh.geometry.align_vectors([0.0, 0.0, -1.0], np.asarray(direction) * _CV_TO_GL)
        scene.add(pyrender.DirectionalLight(intensity=strength * np.pi), pose=pose)
    return scene, camera
