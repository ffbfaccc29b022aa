"""Floor, penetration and foot skating of `bodyfit video --export`'s motion, on motion capture with a known floor.

    python benchmarks/bench_floor.py [--trials 02_01,02_02] [--frames 90] [--method smplify] [--pitch 0]
                                     [--noise 0.01] [--seed 0] [--detect]

Each CMU trial (30 fps, its first --frames frames) is retargeted to the body model (the truth: the mocap's
ground is y = 0) and seen by one static camera, 1 m above the ground, level (or looking down by --pitch
degrees), beside the walk so that all of it stays in the image. Its keypoints are projected with detector
noise (--noise: sigma as a fraction of the person's box diagonal, per frame) and fitted frame by frame as
`bodyfit video` fits a track (`track_start`, `track_settled` with smoothing); the fits go through the
export's `MotionRecorder`, whose floor estimate and world frame (y up, floor at y = 0) they are measured in.

With --detect the keypoints are a real detector's instead: each frame is rendered (the default body model
posed as the truth, in `scripts/make_samples.py`'s room, seen by the same camera, JPEG-compressed as a
video's frames are) and MediaPipe follows the person through the frames in order as `bodyfit video` does
(`VideoPeopleFinder`: tracking mode, box searches, a full search every 30 frames), at --render-scale times
1280 x 960 (default half: 640 x 480, the focal length scaled alike).
Frames where it finds nobody are missed: not fitted, left out of the fit's penetration and skating (and of
the frame pairs these count), as `bodyfit video` leaves them out of the export. One track follows the whole
trial. Also printed: how many frames were detected, and the detections' median limb-joint error (share of
the person's height in the image, `make_samples.limb_error`). Needs mediapipe; about 0.4 s a frame
on 2 CPU cores.

Per trial, for the fit and for the truth: the floor error (mm: how far above the true ground the export put the
floor, under the person's feet; for the truth, the export's floor estimate given the true bodies), its tilt
(degrees between the export's up and the true one), penetration (mm the mesh's lowest point is below y = 0, mean and 95th percentile over frames) and foot
skating (between two frames, the mean horizontal move of a foot's vertices, those of its ankle and foot
joints, that are within --contact of the floor in both; averaged over the frame pairs where a foot has such
vertices: mm per frame and cm/s; "contact" is the share of frame pairs, per foot, that have them).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel, BodyOutput
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector
from bodyfit_cli.evaluation.benchmark import mocap_params
from bodyfit_cli.export.motion import CAMERA_TO_Y_UP, MotionRecorder, floor_frame, rest_body
from bodyfit_cli.fitting.registry import make_backend, make_init
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from bodyfit_cli.io.video import Frame
from bodyfit_cli.pipeline import people_observations
from bodyfit_cli.render import Camera
from bodyfit_cli.results import Fitted
from bodyfit_cli.synthetic.projection import box_diagonal
from bodyfit_cli.video.people import VideoPeopleFinder
from bodyfit_cli.video.pipeline import TrackFit, track_settled, track_start
from bodyfit_cli.vocabulary import SMPL_JOINT_INDEX

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # for --detect: make_samples' room
from make_samples import JPEG_QUALITY, SKIN_MEDIUM, PosedPerson, SceneSpec, limb_error, render_people  # noqa: E402

MOCAP = Path(__file__).resolve().parents[2] / "shared" / "mocap" / "cmu"
FPS = 30.0
IMAGE = (1280, 960)  # W, H pixels
FOV_DEG = 45.0  # vertical
CAMERA_HEIGHT = 1.0  # metres above the ground


def static_camera(pelvis: np.ndarray, pitch_deg: float) -> tuple[np.ndarray, np.ndarray, float]:
    """World -> camera rotation (3, 3), translation (3,) and focal (px) of a camera beside a walk (pelvis (T, 3),
    y up): looking across the walk's main direction from far enough that the walk fits the image."""
    xz = pelvis[:, [0, 2]] - pelvis[:, [0, 2]].mean(0)
    walk = np.linalg.svd(xz, full_matrices=False)[2][0]  # the walk's main horizontal direction
    across = np.array([-walk[1], 0.0, walk[0]])
    half = np.abs(xz @ walk).max() + 0.6  # half the walk's length, plus a body's half width
    focal = IMAGE[1] / 2 / np.tan(np.radians(FOV_DEG) / 2)
    distance = max(half * focal / (IMAGE[0] / 2), 2.2 * focal / (IMAGE[1] / 2)) + np.abs(xz @ across[[0, 2]]).max()
    up, p = np.array([0.0, 1.0, 0.0]), np.radians(pitch_deg)
    forward = np.cos(p) * across - np.sin(p) * up
    down = forward @ up * forward - up
    down /= np.linalg.norm(down)
    rotation = np.stack([np.cross(down, forward), down, forward])
    target = np.array([pelvis[:, 0].mean(), CAMERA_HEIGHT, pelvis[:, 2].mean()])
    centre = target - distance * across
    return rotation, -rotation @ centre, float(focal)


def observe(points: torch.Tensor, focal: float, noise: float, seed: int) -> list[Observations]:
    """Per frame, what a detector would report of camera-frame keypoints (T, K, 3): Gaussian noise of `noise`
    box diagonals, the synthetic benchmark's confidence for it."""
    n = len(points)
    fc = torch.full((n, 2), focal)
    center = torch.tensor([IMAGE[0] / 2, IMAGE[1] / 2]).expand(n, 2)
    uv = project(points, fc, center)
    everything = torch.ones(points.shape[:2], dtype=torch.bool)
    draw = torch.randn(*points.shape[:2], 2, generator=torch.Generator().manual_seed(seed))
    seen = uv + noise * box_diagonal(uv, everything)[:, None, None] * draw
    conf = 0.5 + 0.5 * torch.exp(-draw.square().sum(-1) / 4)
    keypoints = torch.cat([seen, conf[..., None]], -1)
    scale = box_diagonal(seen, everything).clamp(min=10.0)
    return [Observations(keypoints[t : t + 1], fc[t : t + 1], center[t : t + 1], scale[t : t + 1]) for t in range(n)]


def camera_frames(
    params: BodyParams, world: BodyOutput, rotation: np.ndarray, translation: np.ndarray
) -> Iterator[PosedPerson]:
    """Each frame's true body (world-frame `params` and their posed body) as `make_samples` poses people: in the
    static camera's frame, for its `render_people`."""
    r, shift = torch.from_numpy(rotation), torch.from_numpy(translation)
    orient = matrix_to_axis_angle(r @ axis_angle_to_matrix(params.global_orient.double()))
    # The body turns about its rest pelvis, which transl moves: the camera-frame transl moves it to the seen pelvis.
    rest_root = (world.joints[:, 0] - params.transl).double()
    joints, keypoints, vertices = (
        (x.double() @ r.T + shift).numpy() for x in (world.joints, world.keypoints, world.vertices)
    )
    for t in range(len(params.transl)):
        yield PosedPerson(
            global_orient=orient[t].numpy(),
            body_pose=params.body_pose[t].reshape(-1).double().numpy(),
            betas=params.betas[t].double().numpy(),
            translation=joints[t, 0] - rest_root[t].numpy(),
            joints3d=joints[t],
            keypoints3d=keypoints[t],
            vertices=vertices[t],
        )


def detect(
    faces: np.ndarray,
    params: BodyParams,
    truth: BodyOutput,
    view: tuple[np.ndarray, np.ndarray, float],
    pitch: float,
    finder: VideoPeopleFinder,
    scale: float,
) -> tuple[list[Observations | None], list[float]]:
    """Per frame, what MediaPipe finds (followed from frame to frame by `finder`) in a render of the true body
    (`params` posed as `truth`) seen by the static camera (`view`: rotation, translation, focal), its image
    `scale` times `IMAGE`'s size (focal too): its `Observations` in the render's pixels as `bodyfit video` builds
    them (None: nobody found); and each detection's median limb-joint error, a share of the person's height in
    the image."""
    rotation, translation, focal = view
    size = (round(IMAGE[0] * scale), round(IMAGE[1] * scale))
    focal *= size[1] / IMAGE[1]
    scene = SceneSpec("bench_floor", "", size, CAMERA_HEIGHT, pitch, ())
    camera = Camera((focal, focal), (size[0] / 2, size[1] / 2), *size)
    finder.reset()
    frames: list[Observations | None] = []
    errors = []
    for t, person in enumerate(camera_frames(params, truth, rotation, translation)):
        # The same seed every frame: the same floor planks, as a static camera sees them.
        rgb = render_people(scene, camera, [person], [SKIN_MEDIUM], faces, np.random.default_rng(0))
        jpeg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1]
        found = finder.find(Frame(t, t / FPS, np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])))
        if not found:
            frames.append(None)
            continue
        frames.append(people_observations(found[:1], focal, *size, torch.device("cpu")))
        errors.append(limb_error(found[0].keypoints, camera.project(person.keypoints3d))[1])
    return frames, errors


def fit_track(model: BodyModel, method: str, frames: list[Observations | None]) -> tuple[np.ndarray, np.ndarray]:
    """Fit the frames as `bodyfit video` fits one track; the fitted vertices (T, V, 3) in the export's world
    frame (NaN for frames without observations, which are not fitted) and its camera -> world transform (4, 4)."""
    backend = make_backend(method, model)
    init = make_init("auto", model, backend)
    fits, recorder, vertices = [TrackFit()], MotionRecorder(1, FPS), []
    for t, obs in enumerate(frames):
        if obs is None:
            vertices.append(np.full((model.num_vertices, 3), np.nan))
            continue
        start = track_start(model, init(obs).detach(), fits)
        fit = backend.fit(obs, start).detach()
        with torch.no_grad():
            fit = track_settled(model, fit, obs.keypoints[..., 2].mean(-1).tolist(), fits, t / FPS, smooth=True)
            body = fit.pose(model, vertices=True)
        recorder.add(t, t / FPS, [0], Fitted(fit, body, obs, []))
        vertices.append(body.vertices[0].double().numpy())
    to_world = recorder.motions()[0].camera_to_world
    return np.stack(vertices) @ to_world[:3, :3].T + to_world[:3, 3], to_world


def ground_y(rotation: np.ndarray, translation: np.ndarray, camera_points: np.ndarray) -> np.ndarray:
    """The camera-frame y of the true ground (world y = 0) at the x, z of camera points (N, 3)."""
    r = rotation[:, 1]  # world y of a camera point c is r @ (c - translation)
    return (r @ translation - r[0] * camera_points[:, 0] - r[2] * camera_points[:, 2]) / r[1]


def floor_error(to_world: np.ndarray, ground: np.ndarray) -> float:
    """How far (m) the export's floor (y = 0) lies above the true ground, mean over true ground points (N, 3),
    camera frame."""
    return -float(np.mean(ground @ to_world[1, :3] + to_world[1, 3]))


def tilt_deg(to_world: np.ndarray, rotation: np.ndarray) -> float:
    """Degrees between the export's up and the true up (the world's y axis in the camera frame)."""
    return float(np.degrees(np.arccos(np.clip(to_world[1, :3] @ rotation[:, 1], -1.0, 1.0))))


def contact_metrics(vertices: np.ndarray, feet: list[np.ndarray], contact: float) -> dict[str, float]:
    """Penetration and foot skating of meshes (T, V, 3) in a y-up frame with the floor at y = 0; feet: each
    foot's vertex indices. Frames of NaN (not fitted) count in neither, nor do the frame pairs they are in."""
    below = np.maximum(0.0, -vertices[..., 1].min(1)) * 1000
    fitted = np.isfinite(vertices[:, 0, 0])
    steps = []
    for foot in feet:
        v = vertices[:, foot]
        down = (v[1:, :, 1] < contact) & (v[:-1, :, 1] < contact)  # (T - 1, foot vertices)
        moved = np.linalg.norm(np.diff(v[..., [0, 2]], axis=0), axis=-1)
        pairs = down.any(1)
        steps.append((moved * down).sum(1)[pairs] / down.sum(1)[pairs])
    skate = float(np.concatenate(steps).mean() * 1000) if sum(map(len, steps)) else float("nan")
    return {
        "pen_mean": float(below[fitted].mean()),
        "pen_p95": float(np.percentile(below[fitted], 95)),
        "skate_mm": skate,
        "skate_cms": skate * FPS / 10,
        "contact": float(np.mean([len(s) for s in steps]) / (fitted[1:] & fitted[:-1]).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", default="02_01,02_02")
    ap.add_argument("--frames", type=int, default=90, help="at most this many frames per trial (30 fps)")
    ap.add_argument("--method", default="smplify")
    ap.add_argument("--pitch", type=float, default=0.0, help="degrees the camera looks down")
    ap.add_argument("--noise", type=float, default=0.01, help="keypoint noise sigma, fraction of the box diagonal")
    ap.add_argument("--contact", type=float, default=0.02, help="metres above the floor a foot vertex counts as down")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detect", action="store_true", help="MediaPipe's keypoints on renders, not noisy projections")
    ap.add_argument("--render-scale", type=float, default=0.5, help="with --detect: render size, share of 1280 x 960")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_body_model("default")
    model = BodyModel(data)
    seen = f"MediaPipe on renders x{args.render_scale}" if args.detect else f"noise {args.noise}"
    print(
        f"machine: {platform.machine()}, CPU, 1 torch thread; method {args.method}, static camera "
        f"{CAMERA_HEIGHT} m up, pitch {args.pitch} deg, {seen}, contact < {args.contact * 100:.0f} cm"
    )
    print(
        f"{'trial':6s} {'frames':>6s} {'side':6s} {'floor mm':>8s} {'tilt':>6s} {'pen mean':>8s} {'pen p95':>8s} "
        f"{'skate mm/f':>10s} {'cm/s':>6s} {'contact':>7s}"
    )
    with ExitStack() as stack:
        finder = None
        if args.detect:  # one person, followed as `bodyfit video --max-people 1` follows them
            finder = VideoPeopleFinder(stack.enter_context(MediaPipeDetector(max_people=1, video=True)), 1)
        for i, trial in enumerate(args.trials.split(",")):
            run_trial(model, data.faces, trial, i, finder, args)


def run_trial(
    model: BodyModel, faces: np.ndarray, trial: str, i: int, finder: VideoPeopleFinder | None, args: argparse.Namespace
) -> None:
    """Fit one trial (the `i`-th asked for) and print its rows; with a `finder`, on MediaPipe's detections."""
    t0 = time.perf_counter()
    params, _ = mocap_params(MOCAP / trial[:2] / f"{trial}.amc", model, FPS)
    params = params.select(torch.arange(min(args.frames, len(params.transl))))
    with torch.no_grad():
        truth = params.pose(model, vertices=True)
    weights = rest_body(model, params.betas[0].numpy()).weights
    feet = [
        np.flatnonzero(weights[:, [SMPL_JOINT_INDEX[f"{s}_ankle"], SMPL_JOINT_INDEX[f"{s}_foot"]]].sum(1) > 0.5)
        for s in ("left", "right")
    ]
    world = truth.vertices.double().numpy()
    view = static_camera(truth.joints[:, 0].double().numpy(), args.pitch)
    rotation, translation, focal = view
    camera_vertices = world @ rotation.T + translation
    if finder is None:
        keypoints = torch.from_numpy(truth.keypoints.double().numpy() @ rotation.T + translation).float()
        frames = observe(keypoints, focal, args.noise, args.seed + i)
    else:
        frames, errors = detect(faces, params, truth, view, args.pitch, finder, args.render_scale)
        detected = sum(f is not None for f in frames)
        print(
            f"{trial:6s} detected in {detected} of {len(frames)} frames ({detected / len(frames):.0%}), median "
            f"limb-joint error {np.median(errors) if errors else np.nan:.1%} of the person's height"
        )
        if not detected:
            return
    fitted, to_world = fit_track(model, args.method, frames)
    # The floor under the feet: where the true ground is, in the camera frame, at the true lowest points.
    lowest = camera_vertices[np.arange(len(world)), (camera_vertices @ CAMERA_TO_Y_UP[1]).argmin(1)]
    ground = lowest.copy()
    ground[:, 1] = ground_y(rotation, translation, lowest)
    joints = truth.joints.double().numpy()
    trunks = (joints[:, SMPL_JOINT_INDEX["neck"]] - joints[:, 0]) @ rotation.T
    estimated = floor_frame([lowest], [trunks])
    rows = {
        "fit": (
            floor_error(to_world, ground),
            tilt_deg(to_world, rotation),
            contact_metrics(fitted, feet, args.contact),
        ),
        "truth": (
            floor_error(estimated, ground),
            tilt_deg(estimated, rotation),
            contact_metrics(world, feet, args.contact),
        ),
    }
    for side, (floor, tilt, m) in rows.items():
        print(
            f"{trial:6s} {len(world):6d} {side:6s} {floor * 1000:8.1f} {tilt:6.1f} {m['pen_mean']:8.1f} "
            f"{m['pen_p95']:8.1f} {m['skate_mm']:10.1f} {m['skate_cms']:6.1f} {m['contact']:7.0%}"
        )
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
