"""Per-track animation files of a clip (`bodyfit video --export`): BVH, animated glTF binary, AMASS-style .npz.

Each track's motion (export/motion.py) is written once the clip is done, into a folder the caller renames
into place, on the track's own rest body (its final shape).
"""

from __future__ import annotations

from pathlib import Path

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.export.amass import write_amass
from bodyfit_cli.export.bvh import write_bvh
from bodyfit_cli.export.gltf import write_glb
from bodyfit_cli.export.motion import MotionRecorder, rest_body
from bodyfit_cli.options import animation_name


def write_animations(
    folder: Path, stem: str, recorder: MotionRecorder, model: BodyModel, exports: tuple[str, ...]
) -> None:
    """Write every recorded track in each of `exports` ("bvh", "glb", "amass") to `folder`."""
    from bodyfit_cli import __version__

    for motion in recorder.motions():
        rest = rest_body(model, motion.betas)
        for export in exports:
            path = folder / animation_name(stem, motion.track_id, export)
            if export == "bvh":
                write_bvh(path, motion, rest)
            elif export == "glb":
                write_glb(path, motion, rest, generator=f"bodyfit {__version__}")
            else:
                write_amass(path, motion, rest, model.name)
