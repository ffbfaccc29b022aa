"""One track's motion over a clip, in a y-up world frame: what the animation writers (BVH, glTF, AMASS) share.

A clip streams, but a track's animation is written once the clip is done, so `MotionRecorder` keeps what
each processed frame's fit says of each track (rotations, pelvis, shape: about a hundred numbers a person
a frame). At the end every track becomes a `TrackMotion` on a uniform time grid (the processed frames, from
the track's first to its last): the frames where the track was not fitted are filled by interpolation
(rotations along the shortest arc, the pelvis along a line) and marked in `fitted`.

A BVH skeleton or a glTF skin has one rest shape, so a track is exported with its final shape (the mean of
its frames' shapes, video/shape.py); each frame keeps its pose and its pelvis where the fit put it.

The camera frame (x right, y down, z forward) is turned into a y-up world frame (x right, y up, z towards
the camera): the turn of 180 degrees about x, tilted so that y is the direction of gravity the bodies show
(`gravity_up`: their trunks, and the line or plane their feet touch down on, for a camera that looks down
or up), then the floor found under the tracks' feet (`floor_frame`) moved to y = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from bodyfit_cli.vocabulary import NUM_SMPL_JOINTS, SMPL_JOINT_INDEX, SMPL_PARENTS

if TYPE_CHECKING:
    from bodyfit_cli.results import Fitted

# The camera frame turned to y up, z towards the camera (about its x axis by 180 degrees).
CAMERA_TO_Y_UP = np.diag([1.0, -1.0, -1.0])
# Which of a track's per-frame lowest points it is taken to stand on (percent, from below).
FLOOR_PERCENTILE = 20
# The bodies tell the direction of gravity when their trunks agree (the mean of the unit pelvis-to-neck
# directions is at least this long: upright most of the clip, not lying or tumbling) and it leans at most
# MAX_TILT_DEG from the camera's own up; otherwise the camera is taken to be level.
MIN_UPRIGHT = 0.8
MAX_TILT_DEG = 35.0
# Contact points spread along a line this far (RMS, metres) give a direction that must be level; spread this
# far across it too, a plane whose normal is up.
MIN_SPREAD_M = 0.3


@dataclass(frozen=True)
class RestBody:
    """A track's body at rest (SMPL's T-pose, the body's own y-up frame, metres), on SMPL's 24 joints."""

    joints: np.ndarray  # (24, 3)
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    weights: np.ndarray  # (V, 24) skinning weights, rows summing to 1


@dataclass(frozen=True)
class TrackMotion:
    """One track on the uniform grid of the processed frames: frame k is clip frame first_frame + k * step."""

    track_id: int
    first_frame: int
    step: int  # clip frames between two rows (--stride)
    fps: float  # rows per second: the clip's frame rate / step
    start_time_s: float  # the clip time of row 0
    betas: np.ndarray  # (S,) the track's final shape
    rotations: np.ndarray  # (F, 24, 3, 3) SMPL's local joint rotations, the root's in the world frame
    pelvis: np.ndarray  # (F, 3) world position of the root joint, metres
    fitted: np.ndarray  # (F,) bool: False where the row was interpolated
    camera_to_world: np.ndarray  # (4, 4): world point = camera_to_world @ camera point

    @property
    def num_frames(self) -> int:
        return len(self.pelvis)

    @property
    def frames(self) -> np.ndarray:
        """(F,) the clip frame of each row."""
        return self.first_frame + self.step * np.arange(self.num_frames)


def rest_body(model: BodyModel, betas: np.ndarray) -> RestBody:
    """The rest body of shape `betas`: the joint regressor's joints and the shaped mesh, with the skinning
    weights of joints outside SMPL's 24 (SMPL-X's fingers, face) given to the nearest of them up the chain,
    which bodyfit never turns apart from it (so skinning with them is exact)."""
    with torch.no_grad():
        device = model.v_template.device
        eye = torch.eye(3, device=device).expand(1, NUM_SMPL_JOINTS, 3, 3)
        b = torch.as_tensor(np.asarray(betas), dtype=torch.float32, device=device)[None]
        body = model.pose_rotations(eye, b, vertices=True)
    smpl = model.smpl_joints.tolist()
    owner = np.zeros((model.num_joints, NUM_SMPL_JOINTS))
    for j in range(model.num_joints):
        k = j
        while k not in smpl:
            k = model.parents[k]
        owner[j, smpl.index(k)] = 1.0
    return RestBody(
        joints=body.joints[0].cpu().numpy().astype(np.float64),
        vertices=body.vertices[0].cpu().numpy().astype(np.float64),
        faces=model.faces.cpu().numpy(),
        weights=model.weights.cpu().numpy().astype(np.float64) @ owner,
    )


def forward_kinematics(rest_joints: np.ndarray, rotations: np.ndarray, pelvis: np.ndarray) -> np.ndarray:
    """(F, 24, 3) posed joints of SMPL's chain from rest joints (24, 3), local rotations (F, 24, 3, 3) and the
    root's position (F, 3): what every exported file must give back."""
    world = np.empty_like(rotations)
    joints = np.empty((len(rotations), NUM_SMPL_JOINTS, 3))
    world[:, 0], joints[:, 0] = rotations[:, 0], pelvis
    for j in range(1, NUM_SMPL_JOINTS):
        p = SMPL_PARENTS[j]
        world[:, j] = world[:, p] @ rotations[:, j]
        joints[:, j] = joints[:, p] + world[:, p] @ (rest_joints[j] - rest_joints[p])
    return joints


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    poses: list[np.ndarray] = field(default_factory=list)  # (24, 3) axis-angle, camera frame root
    pelvis: list[np.ndarray] = field(default_factory=list)  # (3,) camera frame
    lowest: list[np.ndarray] = field(default_factory=list)  # (3,) the mesh's lowest vertex, camera frame
    trunk: list[np.ndarray] = field(default_factory=list)  # (3,) pelvis to neck, camera frame
    betas: np.ndarray | None = None  # the latest: the mean of all the track's fits so far


class MotionRecorder:
    """Collects the fits of a clip's tracks, frame by frame, and turns them into `TrackMotion`s at the end."""

    def __init__(self, step: int, fps: float) -> None:
        self.step, self.fps = step, fps
        self._tracks: dict[int, _Track] = {}

    def add(self, frame: int, time_s: float, ids: list[int], fitted: Fitted) -> None:
        """One frame's fitted people (with their meshes), ordered as their track ids."""
        p = fitted.params
        poses = torch.cat([p.global_orient[:, None], p.body_pose], 1).double().numpy()
        assert fitted.body.vertices is not None, "the video pipeline poses the meshes"
        heights = fitted.body.vertices.double().numpy() @ CAMERA_TO_Y_UP[1]
        lowest = fitted.body.vertices[torch.arange(len(ids)), torch.as_tensor(heights.argmin(1))]
        joints = fitted.body.joints.double().numpy()
        trunk = joints[:, SMPL_JOINT_INDEX["neck"]] - joints[:, 0]
        for i, tid in enumerate(ids):
            track = self._tracks.setdefault(tid, _Track())
            track.frames.append(frame)
            track.times.append(time_s)
            track.poses.append(poses[i])
            track.pelvis.append(fitted.body.joints[i, 0].double().numpy())
            track.lowest.append(lowest[i].double().numpy())
            track.trunk.append(trunk[i])
            track.betas = p.betas[i].double().numpy()

    def motions(self) -> list[TrackMotion]:
        """Every track, by track id, all in one world frame: the floor under all of them (`floor_frame`)."""
        if not self._tracks:
            return []
        tracks = self._tracks.values()
        to_world = floor_frame([np.stack(t.lowest) for t in tracks], [np.stack(t.trunk) for t in tracks])
        return [self._motion(tid, self._tracks[tid], to_world) for tid in sorted(self._tracks)]

    def _motion(self, tid: int, track: _Track, to_world: np.ndarray) -> TrackMotion:
        first = track.frames[0]
        rows = (np.asarray(track.frames) - first) // self.step
        rotations = axis_angle_to_matrix(torch.as_tensor(np.stack(track.poses))).numpy()
        pelvis = np.stack(track.pelvis)
        rotations[:, 0] = to_world[:3, :3] @ rotations[:, 0]
        pelvis = pelvis @ to_world[:3, :3].T + to_world[:3, 3]
        count = int(rows[-1]) + 1
        fitted = np.zeros(count, bool)
        fitted[rows] = True
        return TrackMotion(
            track_id=tid,
            first_frame=first,
            step=self.step,
            fps=self.fps / self.step,
            start_time_s=track.times[0],
            betas=track.betas,
            rotations=_fill_rotations(rows, rotations, count),
            pelvis=np.stack([np.interp(np.arange(count), rows, pelvis[:, c]) for c in range(3)], -1),
            fitted=fitted,
            camera_to_world=to_world,
        )


def floor_frame(lowest: list[np.ndarray], trunks: list[np.ndarray]) -> np.ndarray:
    """(4, 4) camera -> world: y up (`gravity_up`), shifted so that the floor is at y = 0. Per track (N, 3), camera
    frame: lowest, the body's lowest mesh point in each of its frames; trunks, its pelvis-to-neck vectors.

    Someone walking or standing has a foot down in most frames, so a track stands on a low percentile of those
    points' heights: frames in the air (a jump) count no more than fitting noise. The floor is the lowest of the
    tracks' (someone may stand on a box or a stage all along, nobody below the ground)."""
    turn = level_turn(gravity_up(np.concatenate(lowest) @ CAMERA_TO_Y_UP.T, np.concatenate(trunks) @ CAMERA_TO_Y_UP.T))
    to_world = np.eye(4)
    to_world[:3, :3] = turn @ CAMERA_TO_Y_UP
    to_world[1, 3] = -min(float(np.percentile(points @ to_world[1, :3], FLOOR_PERCENTILE)) for points in lowest)
    return to_world


def gravity_up(lowest: np.ndarray, trunks: np.ndarray) -> np.ndarray:
    """The unit up direction (3,) in the camera frame turned y up, from the bodies' lowest points and trunks
    (N, 3) there. Upright people's trunks point up, leaning a little the way they go; the points their feet
    touch down on lie on the floor: along a line (a walk), which must be level, so the trunks' lean along it
    is taken out; or over an area (walking about), whose plane's normal is up. Bodies that do not agree on
    an up, or whose up leans far from the camera's, leave the camera level: (0, 1, 0)."""
    level = np.array([0.0, 1.0, 0.0])
    mean = (trunks / np.linalg.norm(trunks, axis=1, keepdims=True).clip(1e-9)).mean(0)
    if np.linalg.norm(mean) < MIN_UPRIGHT:
        return level
    up = mean / np.linalg.norm(mean)
    heights = lowest @ up
    down = lowest[heights <= np.percentile(heights, 50)]  # the frames with a foot on the floor, not in the air
    spread, axes = np.linalg.svd(down - down.mean(0), full_matrices=False)[1:]
    spread = spread / np.sqrt(len(down))
    if len(down) >= 3 and spread[1] >= MIN_SPREAD_M:
        up = axes[2] * np.sign(axes[2] @ up)
    elif len(down) >= 2 and spread[0] >= MIN_SPREAD_M:
        up = up - (up @ axes[0]) * axes[0]
        up = up / np.linalg.norm(up)
    return up if np.degrees(np.arccos(np.clip(up @ level, -1.0, 1.0))) <= MAX_TILT_DEG else level


def level_turn(up: np.ndarray) -> np.ndarray:
    """(3, 3) the smallest rotation taking unit `up` to (0, 1, 0): no turn about the vertical."""
    axis = np.cross(up, [0.0, 1.0, 0.0])
    angle = np.arctan2(np.linalg.norm(axis), up[1])
    turn = axis / max(np.linalg.norm(axis), 1e-12) * angle
    return axis_angle_to_matrix(torch.as_tensor(turn[None])).numpy()[0]


def _fill_rotations(rows: np.ndarray, rotations: np.ndarray, count: int) -> np.ndarray:
    """(count, 24, 3, 3) with the fitted rows at `rows` and the rows between two of them turned from the one
    before towards the one after, in proportion to time (slerp)."""
    out = np.empty((count, *rotations.shape[1:]))
    out[rows] = rotations
    gaps = np.setdiff1d(np.arange(count), rows)
    if len(gaps):
        after = np.searchsorted(rows, gaps)
        a, b = rotations[after - 1], rotations[after]
        s = (gaps - rows[after - 1]) / (rows[after] - rows[after - 1])
        turn = matrix_to_axis_angle(torch.as_tensor(np.swapaxes(a, -1, -2) @ b))
        out[gaps] = a @ axis_angle_to_matrix(turn * torch.as_tensor(s)[:, None, None]).numpy()
    return out
