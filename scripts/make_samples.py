"""Render samples/: photos of the default body model in known poses, each with its true parameters.

Fitting accuracy can only be measured against people whose body is known, and real photos come
without one. These pictures are the body model itself, posed and placed in a simple room, so the
JSON beside each image holds the exact answer. Every picture is also run through MediaPipe here,
and the script fails if the detector misses someone or places their limbs far from the truth: a
sample the detector cannot read would test the detector, not the fitting.

Run from anywhere: `python scripts/make_samples.py` (deterministic: fixed seed, fixed scenes).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector
from bodyfit_cli.detection.types import PersonKeypoints
from bodyfit_cli.fitting.init import FACING_CAMERA
from bodyfit_cli.geometry.camera import default_focal
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from bodyfit_cli.io.atomic import write_json_atomic
from bodyfit_cli.io.images import write_image_atomic
from bodyfit_cli.render import Camera, MeshToDraw, render
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, LIMB_KEYPOINTS, SMPL_JOINT_INDEX, SMPL_JOINT_NAMES

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
SEED = 2024
JPEG_QUALITY = 90
# A sample is rejected when the median limb-joint detection error exceeds this share of the
# person's height in the image (the vertical extent of their true keypoints).
MAX_DETECTION_ERROR = 0.08

# A joint rotation as successive turns (axis of the body's rest frame, degrees), the first applied
# first. Body frame: y up, facing +z, the body's left at +x (SMPL's rest T-pose).
Turns = tuple[tuple[str, float], ...]
# Poses by joint name; joints not named stay at rest.
POSES: dict[str, dict[str, Turns]] = {
    "relaxed": {
        "left_shoulder": (("z", -72.0), ("x", -4.0)),
        "right_shoulder": (("z", 74.0), ("x", -6.0)),
        "left_elbow": (("y", -14.0),),
        "right_elbow": (("y", 18.0),),
        "left_hip": (("z", 4.0),),
        "right_hip": (("z", -3.0),),
        "head": (("y", 6.0),),
    },
    "walking": {
        "left_hip": (("x", -28.0),),
        "left_knee": (("x", 10.0),),
        "left_ankle": (("x", -8.0),),
        "right_hip": (("x", 16.0),),
        "right_knee": (("x", 38.0),),
        "right_ankle": (("x", 18.0),),
        "spine1": (("y", -5.0),),
        "left_shoulder": (("z", -76.0), ("x", 22.0)),
        "right_shoulder": (("z", 76.0), ("x", -26.0)),
        "left_elbow": (("y", -12.0),),
        "right_elbow": (("y", 38.0),),
    },
    "waving": {
        # Upper arm twisted a quarter turn so the bending elbow lifts the forearm upright.
        "left_shoulder": (("x", -90.0), ("z", 12.0)),
        "left_elbow": (("y", -100.0),),
        "right_shoulder": (("z", -58.0),),
        "right_elbow": (("y", 10.0),),
        "left_hip": (("z", 7.0),),
        "right_hip": (("z", -7.0),),
        "head": (("x", -8.0),),
    },
    "lunge": {
        "right_hip": (("x", -62.0),),
        "right_knee": (("x", 74.0),),
        "right_ankle": (("x", -10.0),),
        "left_hip": (("x", 22.0),),
        "left_knee": (("x", 50.0),),
        "left_ankle": (("x", 35.0),),
        "left_shoulder": (("z", -74.0), ("x", -20.0)),
        "right_shoulder": (("z", 74.0), ("x", 25.0)),
        "left_elbow": (("y", -40.0),),
        "right_elbow": (("y", 20.0),),
    },
    "arms_out": {
        "left_shoulder": (("z", -35.0), ("x", -10.0)),
        "right_shoulder": (("z", 40.0),),
        "left_elbow": (("y", -20.0),),
        "right_elbow": (("y", 25.0),),
        "left_hip": (("z", 5.0),),
        "right_hip": (("z", -5.0), ("x", -8.0)),
        "right_knee": (("x", 12.0),),
    },
}


@dataclass(frozen=True)
class PersonSpec:
    """One person of a scene.

    yaw: degrees the body is turned about the vertical from facing the camera (positive: towards
        its own left, so the camera sees more of its right side).
    spot: (x, z) of the pelvis over the floor, metres, in the level camera frame.
    betas: the named shape coefficients; the others are small seeded random values.
    """

    pose: str
    yaw: float
    spot: tuple[float, float]
    betas: dict[int, float]
    color: tuple[float, float, float]


@dataclass(frozen=True)
class SceneSpec:
    """One sample picture: image size, camera height above the floor and downward pitch, people."""

    name: str
    description: str
    size: tuple[int, int]
    camera_height: float
    pitch: float
    people: tuple[PersonSpec, ...]


SKIN_LIGHT = (0.86, 0.70, 0.60)
SKIN_MEDIUM = (0.74, 0.55, 0.42)
SKIN_DARK = (0.52, 0.37, 0.28)
SCENES: tuple[SceneSpec, ...] = (
    SceneSpec(
        "standing_front",
        "standing relaxed, front view, average build",
        (640, 800),
        1.25,
        6.0,
        (PersonSpec("relaxed", 0.0, (0.0, 3.2), {0: 0.0, 1: 0.0}, SKIN_LIGHT),),
    ),
    SceneSpec(
        "walking_30deg",
        "walking, turned 30 degrees, taller",
        (640, 800),
        1.2,
        5.0,
        (PersonSpec("walking", -30.0, (0.05, 3.4), {0: 1.5, 1: -0.5}, SKIN_MEDIUM),),
    ),
    SceneSpec(
        "waving_back",
        "waving with both arms raised, seen from behind",
        (640, 800),
        1.3,
        4.0,
        (PersonSpec("waving", 165.0, (0.0, 3.6), {0: -1.0, 1: 1.0}, SKIN_DARK),),
    ),
    SceneSpec(
        "lunge_side",
        "lunge, side view",
        (800, 640),
        1.0,
        3.0,
        (PersonSpec("lunge", -90.0, (0.0, 3.3), {0: 0.8, 1: 1.5}, SKIN_MEDIUM),),
    ),
    SceneSpec(
        "two_people",
        "two people side by side",
        (960, 720),
        1.2,
        5.0,
        (
            PersonSpec("waving", -10.0, (-0.65, 3.8), {0: -1.5, 1: -0.5}, SKIN_LIGHT),
            PersonSpec("arms_out", 20.0, (0.7, 3.9), {0: 2.0, 1: 1.0}, SKIN_DARK),
        ),
    ),
)


@dataclass
class PosedPerson:
    """A person as rendered: the parameters (axis-angle, camera frame) and the resulting geometry."""

    global_orient: np.ndarray  # (3,)
    body_pose: np.ndarray  # (69,)
    betas: np.ndarray  # (10,)
    translation: np.ndarray  # (3,)
    joints3d: np.ndarray  # (24, 3)
    keypoints3d: np.ndarray  # (21, 3)
    vertices: np.ndarray  # (V, 3)


def turns_matrix(turns: Turns) -> torch.Tensor:
    """(3, 3) rotation of successive turns about the body's axes, the first applied first."""
    matrix = torch.eye(3, dtype=torch.float64)
    for axis, degrees in turns:
        aa = torch.zeros(3, dtype=torch.float64)
        aa["xyz".index(axis)] = math.radians(degrees)
        matrix = axis_angle_to_matrix(aa) @ matrix
    return matrix


def body_pose(pose: dict[str, Turns]) -> torch.Tensor:
    """(23, 3) axis-angle SMPL body pose (joints 1..23) from turns by joint name."""
    aa = torch.zeros(len(SMPL_JOINT_NAMES) - 1, 3, dtype=torch.float64)
    for joint, turns in pose.items():
        aa[SMPL_JOINT_INDEX[joint] - 1] = matrix_to_axis_angle(turns_matrix(turns))
    return aa


def camera_tilt(pitch: float) -> torch.Tensor:
    """Level frame (y down, camera at the origin) -> frame of a camera pitched down by `pitch`."""
    return turns_matrix((("x", pitch),))


def pose_person(model: BodyModel, spec: PersonSpec, scene: SceneSpec, rng: np.random.Generator) -> PosedPerson:
    """Pose the body of `spec` and stand it on the floor at its spot; all quantities in the camera frame."""
    betas = np.round(rng.normal(0.0, 0.3, model.num_betas), 3)
    for index, value in spec.betas.items():
        betas[index] = value
    # Facing the camera, then turned about the level frame's vertical (y down: a negative turn
    # about y turns the body towards its own left).
    facing = axis_angle_to_matrix(torch.tensor(FACING_CAMERA, dtype=torch.float64))
    orient = matrix_to_axis_angle(camera_tilt(scene.pitch) @ turns_matrix((("y", -spec.yaw),)) @ facing)
    return stand(model, orient, body_pose(POSES[spec.pose]), betas, spec.spot, scene)


def stand(
    model: BodyModel,
    orient: torch.Tensor,
    pose: torch.Tensor,
    betas: np.ndarray,
    spot: tuple[float, float],
    scene: SceneSpec,
) -> PosedPerson:
    """The body with camera-frame orientation `orient` (3,), body pose (23, 3) axis-angle and `betas`, its
    lowest point on the floor and its pelvis over `spot` (level-frame x, z), in the camera frame."""
    tilt = camera_tilt(scene.pitch)
    params = dict(
        global_orient=orient.float()[None], body_pose=pose.float()[None], betas=torch.tensor(betas).float()[None]
    )

    def forward(transl: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = model(
            axis_angle_to_matrix(params["global_orient"]),
            axis_angle_to_matrix(params["body_pose"]),
            params["betas"],
            transl[None].float(),
            vertices=True,
        )
        return out.joints[0].double().numpy(), out.keypoints[0].double().numpy(), out.vertices[0].double().numpy()

    joints, _, vertices = forward(torch.zeros(3))
    level = vertices @ tilt.numpy()  # rows: level-frame points (tilt is orthonormal)
    root = joints[0] @ tilt.numpy()
    shift = np.array([spot[0] - root[0], scene.camera_height - level[:, 1].max(), spot[1] - root[2]])
    translation = np.round(tilt.numpy() @ shift, 6)
    joints, keypoints, vertices = forward(torch.tensor(translation))
    return PosedPerson(
        global_orient=orient.numpy(),
        body_pose=pose.reshape(-1).numpy(),
        betas=betas,
        translation=translation,
        joints3d=joints,
        keypoints3d=keypoints,
        vertices=vertices,
    )


def room(scene: SceneSpec, camera: Camera, people: list[PosedPerson], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 background: a plank floor meeting a plain wall, soft shadows under the people.

    Traced per pixel at twice the resolution and averaged down, so distant plank gaps do not alias.
    """
    scale = 2
    height, width = camera.height * scale, camera.width * scale
    v, u = np.mgrid[:height, :width].astype(np.float64)
    (fx, fy), (cx, cy) = camera.focal, camera.center
    rays = np.stack([((u + 0.5) / scale - 0.5 - cx) / fx, ((v + 0.5) / scale - 0.5 - cy) / fy, np.ones_like(u)], -1)
    rays = rays @ camera_tilt(scene.pitch).numpy()  # into the level frame
    wall_z = 6.5
    t_wall = wall_z / rays[..., 2]
    down = np.maximum(rays[..., 1], 1e-9)
    t_floor = np.where(rays[..., 1] > 0, scene.camera_height / down, np.inf)
    on_floor = t_floor < t_wall

    # Wall: warm grey, lighter towards the top, with a white skirting board along the floor.
    wall_y = t_wall * rays[..., 1]  # level-frame y on the wall (down positive)
    lift = np.clip((scene.camera_height - wall_y) / 3.0, 0.0, 1.0)[..., None]
    image = np.array([0.72, 0.70, 0.66]) + lift * np.array([0.18, 0.18, 0.17])
    skirting = (~on_floor) & (wall_y > scene.camera_height - 0.10)
    image[skirting] = (0.90, 0.89, 0.86)

    # Floor: planks running away from the camera, each its own shade of wood, thin dark gaps.
    t = np.where(on_floor, t_floor, 0.0)
    fx_, fz_ = t * rays[..., 0], t * rays[..., 2]
    plank_width = 0.16
    plank = np.floor(fx_ / plank_width).astype(np.int64)
    shades = rng.uniform(0.86, 1.08, 64)
    wood = np.array([0.60, 0.45, 0.32])[None, None] * shades[plank % 64][..., None]
    seam = (fx_ / plank_width - plank) < 0.04
    wood = np.where(seam[..., None], wood * 0.62, wood)
    # Shadows: a soft ellipse around where each body meets the floor.
    tilt = camera_tilt(scene.pitch).numpy()
    for person in people:
        level = person.vertices @ tilt
        low = level[level[:, 1] > scene.camera_height - 0.45]
        centre = low[:, [0, 2]].mean(0)
        spread = low[:, [0, 2]].std(0) + 0.12
        d2 = ((fx_ - centre[0]) / spread[0]) ** 2 + ((fz_ - centre[1]) / spread[1]) ** 2
        wood = wood * (1.0 - 0.45 * np.exp(-0.5 * d2))[..., None]
    # Further floor fades towards one mean tone, as haze and texture loss would.
    fade = np.clip((t - 2.0) / 10.0, 0.0, 0.6)[..., None]
    wood = wood * (1 - fade) + np.array([0.56, 0.43, 0.32]) * fade
    image = np.where(on_floor[..., None], wood, image)

    image = cv2.resize(image.astype(np.float32), (camera.width, camera.height), interpolation=cv2.INTER_AREA)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def make_scene(
    scene: SceneSpec, model: BodyModel, faces: np.ndarray, rng: np.random.Generator
) -> tuple[Camera, np.ndarray, list[PosedPerson]]:
    """Render one scene: its camera, the uint8 RGB image and the people as posed."""
    camera = scene_camera(scene)
    people = [pose_person(model, spec, scene, rng) for spec in scene.people]
    image = render_people(scene, camera, people, [spec.color for spec in scene.people], faces, rng)
    return camera, image, people


def scene_camera(scene: SceneSpec) -> Camera:
    """The scene's camera: focal length the image diagonal (bodyfit's default), principal point centred."""
    width, height = scene.size
    focal = default_focal(width, height)
    return Camera((focal, focal), (width / 2.0, height / 2.0), width, height)


def render_people(
    scene: SceneSpec,
    camera: Camera,
    people: list[PosedPerson],
    colors: list[tuple[float, float, float]],
    faces: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(H, W, 3) uint8 RGB: the posed people, each in its colour, in the scene's room."""
    meshes = [MeshToDraw(p.vertices, faces, color) for p, color in zip(people, colors)]
    rgb, alpha = render(meshes, camera)
    background = room(scene, camera, people, rng)
    image = background * (1.0 - alpha[..., None]) + rgb * alpha[..., None]
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def limb_error(detected: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Median limb-joint distance (px) between detected (K, 2+) and true (K, 2) keypoints, and that
    distance as a share of the person's height in the image (vertical extent of the true points)."""
    limbs = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]
    median = float(np.median(np.linalg.norm(detected[limbs, :2] - truth[limbs, :2], axis=1)))
    return median, median / float(np.ptp(truth[:, 1]))


def match_detections(found: list[PersonKeypoints], truths: list[np.ndarray]) -> list[tuple[float, float] | None]:
    """Each true person's (error px, share of height) against the closest unclaimed detection, or None."""
    errors = [[limb_error(p.keypoints, t) for p in found] for t in truths]
    pairs = sorted((errors[i][j][0], i, j) for i in range(len(truths)) for j in range(len(found)))
    result: list[tuple[float, float] | None] = [None] * len(truths)
    claimed: set[int] = set()
    for _, i, j in pairs:
        if result[i] is None and j not in claimed:
            result[i] = errors[i][j]
            claimed.add(j)
    return result


def sample_json(scene: SceneSpec, camera: Camera, people: list[PosedPerson]) -> dict:
    """The truth written beside the image (field names as in bodyfit's own results)."""

    def rounded(values: np.ndarray, digits: int = 6) -> list:
        return (np.round(values, digits) + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0

    return {
        "image": f"{scene.name}.jpg",
        "description": scene.description,
        "body_model": "default",
        "image_size": [camera.width, camera.height],
        "camera": {"focal": list(camera.focal), "center": list(camera.center)},
        "people": [
            {
                "global_orient": rounded(p.global_orient),
                "body_pose": rounded(p.body_pose),
                "betas": rounded(p.betas),
                "translation": rounded(p.translation),
                "joints3d": rounded(p.joints3d),
                "keypoints3d": {n: rounded(p.keypoints3d[k]) for k, n in enumerate(KEYPOINT_NAMES)},
                "keypoints2d": {n: rounded(uv, 3) for n, uv in zip(KEYPOINT_NAMES, camera.project(p.keypoints3d))},
            }
            for p in people
        ],
    }


def main() -> int:
    """Render, check with MediaPipe and write every scene; exit status 1 if any sample failed."""
    rng = np.random.default_rng(SEED)
    data = load_body_model("default")
    model = BodyModel(data)
    failures: list[str] = []
    with torch.no_grad(), MediaPipeDetector(max_people=4) as detector:
        for scene in SCENES:
            camera, image, people = make_scene(scene, model, data.faces, rng)
            truths = [camera.project(p.keypoints3d) for p in people]
            results = match_detections(detector.detect(image), truths)
            problems = []
            for i, result in enumerate(results):
                if result is None:
                    problems.append(f"person {i} not detected")
                elif result[1] > MAX_DETECTION_ERROR:
                    problems.append(f"person {i} limbs {result[0]:.1f} px off ({100 * result[1]:.1f}% of height)")
            summary = ", ".join("missed" if r is None else f"{r[0]:.1f} px ({100 * r[1]:.1f}%)" for r in results)
            print(f"{scene.name}: {camera.width}x{camera.height}, median limb detection error {summary}")
            if problems:
                failures.append(f"{scene.name}: " + "; ".join(problems))
                continue
            write_image_atomic(SAMPLES_DIR / f"{scene.name}.jpg", image, jpeg_quality=JPEG_QUALITY)
            write_json_atomic(SAMPLES_DIR / f"{scene.name}.json", sample_json(scene, camera, people))
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
