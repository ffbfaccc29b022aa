"""The path of one image, top to bottom: read -> detect -> initialise -> refine -> export -> render."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel, BodyOutput
from bodyfit_cli.core.device import fitting_device
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.detection.types import PersonKeypoints, most_confident
from bodyfit_cli.fitting.registry import make_backend, make_init
from bodyfit_cli.geometry.camera import default_focal
from bodyfit_cli.io.atomic import ensure_dir, write_json_atomic, write_npz_atomic
from bodyfit_cli.io.images import read_image, write_image_atomic
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.io.mesh import write_mesh_atomic
from bodyfit_cli.options import Options, image_result_path
from bodyfit_cli.results import NAME_ARRAYS, Fitted, empty_arrays, person_arrays, person_records

if TYPE_CHECKING:
    from bodyfit_cli.render import Camera

# The longer side, in pixels, of the photo in an image's overlay: larger photos are drawn over a copy shrunk to it
# (a 12000x8000 photo's overlay, side view included, would take gigabytes to draw and long to encode as PNG).
OVERLAY_MAX_SIDE = 4096
# Distinct, colour-blind-friendly mesh colours, one per person.
PERSON_COLORS = [(0.55, 0.70, 0.95), (0.95, 0.65, 0.45), (0.55, 0.85, 0.60), (0.85, 0.60, 0.85), (0.95, 0.85, 0.45)]


def person_masks(people: list[PersonKeypoints], obs: Observations) -> torch.Tensor:
    """(B, M, M) each person's detected mask over the window `detection.masks` defines from `obs` (in image
    pixels; a mask kept at detection's resolution is sampled at the window's place in it, `mask_scale`)."""
    from bodyfit_cli.core.box import person_box
    from bodyfit_cli.detection.masks import crop_mask

    box = person_box(obs)
    crops = [
        crop_mask(p.mask, (float(c[0]) / p.mask_scale, float(c[1]) / p.mask_scale), float(s) / p.mask_scale)
        for p, c, s in zip(people, box.center.cpu(), box.size.cpu())
    ]
    return torch.tensor(np.stack(crops), device=obs.keypoints.device)


def people_observations(
    people: list[PersonKeypoints], focal: float, width: int, height: int, device: torch.device
) -> Observations:
    """What the fits see of detected people in a width x height image: keypoints, the camera (principal point
    the image centre), each person's scale (their box's diagonal, at least 10 px), and the masks and 3D world
    landmarks where every person has them."""
    n = len(people)
    kp = torch.tensor(np.stack([p.keypoints for p in people]), dtype=torch.float32)
    boxes = torch.tensor([p.bbox for p in people], dtype=torch.float32)
    scale = (boxes[:, 2:] - boxes[:, :2]).norm(dim=-1).clamp(min=10.0)
    obs = Observations(
        keypoints=kp.to(device),
        focal=torch.full((n, 2), float(focal), device=device),
        center=torch.tensor([[width / 2.0, height / 2.0]], device=device).expand(n, 2).clone(),
        scale=scale.to(device),
    )
    if all(p.mask is not None for p in people):
        obs.masks = person_masks(people, obs)
    if all(p.points3d is not None for p in people):
        obs.points3d = torch.tensor(np.stack([p.points3d for p in people]), dtype=torch.float32, device=device)
    return obs


class ImagePipeline:
    """Holds what loads once per process (body model, backend, detector) and fits image after image."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.device = fitting_device(opts.device)
        self.model = BodyModel(load_body_model(opts.body_model, opts.model_dir)).to(self.device)
        self.backend = make_backend(opts.method, self.model)
        self.initialiser = make_init(opts.init, self.model, self.backend)
        ensure_dir(opts.out)  # an unusable --out fails once, up front, not after fitting every input
        self._detector = None

    def result_path(self, item: InputItem) -> Path:
        return image_result_path(self.opts, item)

    def detect(self, image: np.ndarray, item: InputItem) -> list[PersonKeypoints]:
        if self.opts.keypoints is not None:
            from bodyfit_cli.detection.keypoint_files import read_keypoint_file

            h, w = image.shape[:2]
            people = read_keypoint_file(self.opts.keypoints, image_name=item.path.name, image_size=(w, h))
        else:
            if self._detector is None:
                from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector

                self._detector = MediaPipeDetector(max_people=self.opts.max_people, pose_model=self.opts.pose_model)
            people = self._detector.detect(image)
        people = most_confident(people, self.opts.max_people)
        return sorted(people, key=lambda p: p.bbox[0])  # ids left to right, stable across runs

    def observations(self, people: list[PersonKeypoints], width: int, height: int) -> Observations:
        return people_observations(people, self.opts.focal or default_focal(width, height), width, height, self.device)

    def initialise(self, obs: Observations) -> BodyParams:
        """The starting point of the refinement backend (`--init`)."""
        return self.initialiser(obs)

    def fit(
        self,
        people: list[PersonKeypoints],
        width: int,
        height: int,
        start: Callable[[Observations], BodyParams] | None = None,
    ) -> Fitted | None:
        """Fit the people of one image; `start` (observations -> parameters on the fitting device) replaces
        `--init`, e.g. to give a video's person their track's shape."""
        if not people:
            return None
        torch.manual_seed(self.opts.seed)
        obs = self.observations(people, width, height)
        params = self.backend.fit(obs, (start or self.initialise)(obs))
        with torch.no_grad():
            body = params.pose(self.model, vertices=True)

        def to_cpu(t: torch.Tensor) -> torch.Tensor:
            return t.detach().cpu()

        return Fitted(
            params=params.map(to_cpu),
            body=BodyOutput(to_cpu(body.joints), to_cpu(body.keypoints), to_cpu(body.vertices)),
            obs=obs.map(to_cpu),
            people=people,
        )

    def run(self, item: InputItem) -> dict:
        """Fit one image and write its results; returns the result JSON object."""
        t0 = time.perf_counter()
        timing: dict[str, float] = {}
        image = read_image(item.path)
        h, w = image.shape[:2]
        people = self.detect(image, item)
        timing["detect"] = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        fitted = self.fit(people, w, h)
        timing["fit"] = (time.perf_counter() - t1) * 1000

        out_dir = ensure_dir(self.result_path(item).parent)
        stem = item.path.stem
        result = {
            "input": str(item.path),
            "image_size": [w, h],
            "method": self.opts.method,
            "body_model": self.opts.body_model,
            "people": [],
        }
        if fitted is not None:
            result["people"] = self.export(fitted, out_dir, stem)
        else:
            write_npz_atomic(out_dir / f"{stem}.npz", **empty_arrays(self.model.num_betas))
        t2 = time.perf_counter()
        if self.opts.render:
            self.render(image, fitted, out_dir / f"{stem}_overlay.png")
        timing["render"] = (time.perf_counter() - t2) * 1000
        timing["total"] = (time.perf_counter() - t0) * 1000
        result["timing_ms"] = {k: round(v, 1) for k, v in timing.items()}
        # The JSON is written last: its presence marks the input as finished.
        write_json_atomic(out_dir / f"{stem}.json", result)
        return result

    def export(self, fitted: Fitted, out_dir: Path, stem: str) -> list[dict]:
        mesh_names = [f"{stem}_p{i}.{self.opts.mesh_format}" for i in range(len(fitted.people))]
        for i, name in enumerate(mesh_names):
            self.write_mesh(out_dir / name, fitted, i)
        write_npz_atomic(out_dir / f"{stem}.npz", **person_arrays(fitted), **NAME_ARRAYS)
        return person_records(fitted, self.model, mesh_names)

    def write_mesh(self, path: Path, fitted: Fitted, i: int) -> None:
        write_mesh_atomic(path, fitted.body.vertices[i].numpy(), self.model.faces.cpu().numpy())

    def render(self, image: np.ndarray, fitted: Fitted | None, path: Path) -> None:
        """The overlay of one photo; one longer than `OVERLAY_MAX_SIDE` is drawn over a copy shrunk to it."""
        h, w = image.shape[:2]
        if max(h, w) <= OVERLAY_MAX_SIDE:
            write_image_atomic(path, self.draw(image, fitted))
            return
        import cv2

        factor = OVERLAY_MAX_SIDE / max(h, w)
        small = cv2.resize(image, (0, 0), fx=factor, fy=factor, interpolation=cv2.INTER_AREA)  # one exact factor
        write_image_atomic(path, self.draw(small, fitted, camera=self.camera(w, h).shrunk(factor, *small.shape[1::-1])))

    def camera(self, width: int, height: int) -> Camera:
        """The camera of a width x height photo (or frame): `--focal` or the diagonal, centred."""
        from bodyfit_cli.render import Camera

        f = self.opts.focal or default_focal(width, height)
        return Camera(focal=(f, f), center=(width / 2.0, height / 2.0), width=width, height=height)

    def draw(
        self,
        image: np.ndarray,
        fitted: Fitted | None,
        side_view: bool = True,
        colors: list[int] | None = None,
        camera: Camera | None = None,
    ) -> np.ndarray:
        """The fitted meshes over `image`; `colors` picks each person's colour (default: their index); `camera`
        is the one `image` was taken with (default: the photo's, `camera(width, height)`)."""
        from bodyfit_cli.render import MeshToDraw, overlay

        h, w = image.shape[:2]
        camera = camera or self.camera(w, h)
        faces = self.model.faces.cpu().numpy()
        meshes = []
        if fitted is not None:
            keys = colors if colors is not None else list(range(len(fitted.people)))
            meshes = [
                MeshToDraw(fitted.body.vertices[i].numpy(), faces, PERSON_COLORS[keys[i] % len(PERSON_COLORS)])
                for i in range(len(fitted.people))
            ]
        return overlay(image, meshes, camera, side_view=side_view)
