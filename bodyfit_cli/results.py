"""Fitted people as the result files hold them: the `<stem>.npz` arrays and the JSON person fields of
CONTRACT.md, shared by the image and video pipelines and the exports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bodyfit_cli.body.model import BodyModel, BodyOutput
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.detection.types import PersonKeypoints
from bodyfit_cli.fitting.losses import reprojection_error_px
from bodyfit_cli.vocabulary import KEYPOINT_NAMES, SMPL_JOINT_NAMES


@dataclass
class Fitted:
    """Fitted people of one image, as tensors on the CPU."""

    params: BodyParams
    body: BodyOutput
    obs: Observations
    people: list[PersonKeypoints]


NAME_ARRAYS = {"keypoint_names": np.array(KEYPOINT_NAMES), "joint_names": np.array(SMPL_JOINT_NAMES)}


def empty_arrays(num_betas: int) -> dict[str, np.ndarray]:
    """The `<stem>.npz` arrays for an image with nobody in it: same keys, zero people."""
    shapes = {
        "global_orient": (3,),
        "body_pose": (69,),
        "betas": (num_betas,),
        "translation": (3,),
        "joints3d": (len(SMPL_JOINT_NAMES), 3),
        "keypoints3d": (len(KEYPOINT_NAMES), 3),
        "keypoints2d": (len(KEYPOINT_NAMES), 3),
        "focal": (2,),
        "center": (2,),
        "bbox": (4,),
        "score": (),
    }
    arrays = {k: np.zeros((0, *s), np.float32) for k, s in shapes.items()}
    return {**arrays, **NAME_ARRAYS}


def person_arrays(fitted: Fitted) -> dict[str, np.ndarray]:
    """The fitted people's parameters as (B, ...) arrays, keyed as in `<stem>.npz`."""
    p, body, obs = fitted.params, fitted.body, fitted.obs
    return {
        "global_orient": p.global_orient.numpy(),
        "body_pose": p.body_pose.reshape(len(fitted.people), -1).numpy(),
        "betas": p.betas.numpy(),
        "translation": p.transl.numpy(),
        "joints3d": body.joints.numpy(),
        "keypoints3d": body.keypoints.numpy(),
        "keypoints2d": obs.keypoints.numpy(),
        "focal": obs.focal.numpy(),
        "center": obs.center.numpy(),
        "bbox": np.array([q.bbox for q in fitted.people], np.float32),
        "score": np.array([q.score for q in fitted.people]),
    }


def person_records(fitted: Fitted, model: BodyModel, mesh_names: list[str | None]) -> list[dict]:
    """The fitted people as result-file JSON objects (CONTRACT.md's person fields)."""
    p, body, obs = fitted.params, fitted.body, fitted.obs
    err = reprojection_error_px(body.keypoints, obs)
    defined = model.keypoint_defined.cpu().numpy()
    return [
        {
            "id": i,
            "bbox": [round(float(x), 2) for x in person.bbox],
            "score": round(float(person.score), 4),
            "camera": {"focal": obs.focal[i].tolist(), "center": obs.center[i].tolist()},
            "translation": p.transl[i].tolist(),
            "global_orient": p.global_orient[i].tolist(),
            "body_pose": p.body_pose[i].reshape(-1).tolist(),
            "betas": p.betas[i].tolist(),
            "joints3d": body.joints[i].tolist(),
            "keypoints3d": {n: body.keypoints[i, k].tolist() for k, n in enumerate(KEYPOINT_NAMES) if defined[k]},
            "keypoints2d": person.as_dict(),
            "reprojection_error_px": round(float(err[i]), 2),
            "mesh": mesh_names[i],
        }
        for i, person in enumerate(fitted.people)
    ]
