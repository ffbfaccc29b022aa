"""Rendering: draw fitted meshes over the photos they were fitted to, and body models on their own.

Two backends: pyrender (OpenGL, headless through EGL), used where a GPU draws OpenGL, and a built-in
software renderer, used where OpenGL draws on the CPU (it is faster there) or is unavailable;
BODYFIT_RENDERER=pyrender|software forces one.
"""

from bodyfit_cli.render.api import look_at_camera, overlay, render
from bodyfit_cli.render.scene import Camera, MeshToDraw

__all__ = ["Camera", "MeshToDraw", "look_at_camera", "overlay", "render"]
