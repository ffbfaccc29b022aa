"""A track's motion as an AMASS-style `.npz`: SMPL parameters per frame, in AMASS's z-up world frame.

AMASS's keys: `poses` (F, 72) axis-angle of SMPL's 24 joints (root first, SMPL order), `trans` (F, 3),
`betas`, `mocap_framerate`, `gender` ("neutral": bodyfit's body models are the neutral ones). As in AMASS,
the world is z up (x, y, z of the y-up world are x, -z, y here) and `trans` is the body's translation, so
the pelvis is at the shape's rest pelvis + `trans`. bodyfit adds `body_model` (whose shape space `betas` are
in: SMPL's betas do not fit the default model), `frame` (F,) the clip frame of each row, `fitted` (F,) False
where a row was interpolated between two fits, and `camera_to_world` (4, 4), the camera frame to this one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.export.motion import RestBody, TrackMotion
from bodyfit_cli.geometry.rotations import matrix_to_axis_angle

# The y-up world to AMASS's z-up one: a quarter turn about x.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def write_amass(path: Path, motion: TrackMotion, rest: RestBody, body_model: str) -> None:
    """Write `motion` (shape `rest`) to `path` (a temporary file: the caller renames it)."""
    rotations = motion.rotations.copy()
    rotations[:, 0] = Y_UP_TO_Z_UP @ rotations[:, 0]
    poses = matrix_to_axis_angle(torch.as_tensor(rotations)).numpy().reshape(motion.num_frames, -1)
    to_z_up = np.eye(4)
    to_z_up[:3, :3] = Y_UP_TO_Z_UP
    with open(path, "wb") as f:
        np.savez(
            f,
            poses=poses,
            trans=motion.pelvis @ Y_UP_TO_Z_UP.T - rest.joints[0],
            betas=motion.betas,
            mocap_framerate=np.float64(motion.fps),
            gender=np.array("neutral"),
            body_model=np.array(body_model),
            frame=motion.frames,
            fitted=motion.fitted,
            camera_to_world=to_z_up @ motion.camera_to_world,
        )
