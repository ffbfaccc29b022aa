"""Render docs/body_model.png: the default body model at rest from three sides, and posed at several shapes.

The README shows it so users see what bodyfit fits before they run it. Poses come from
make_samples.py, so the picture and the sample photos show the same bodies.

Run from anywhere: `python scripts/render_model_picture.py`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from make_samples import POSES, body_pose

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.io.images import write_image_atomic
from bodyfit_cli.render import Camera, MeshToDraw, look_at_camera, render

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "body_model.png"
WIDTH = 1200
ROW_HEIGHT = 400
BACKGROUND = np.array([247, 247, 245], dtype=np.float64)
LABEL_HEIGHT = 32
# Share of the half image the framed bodies may take, leaving a margin.
FILL = 0.92
INK = (60, 60, 60)
LINE = (222, 222, 218)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.55

# Top row: (label, view) of the rest pose at the mean shape.
REST_VIEWS = (("T-pose, front", "front"), ("T-pose, three-quarter", "three_quarter"), ("T-pose, side", "side"))
# Bottom row: (label, pose from make_samples, view, betas by index).
POSED = (
    ("relaxed, beta0=-2", "relaxed", "front", {0: -2.0}),
    ("walking, beta0=0", "walking", "three_quarter", {}),
    ("waving, beta0=+2", "waving", "front", {0: 2.0}),
    ("arms out, beta1=+2", "arms_out", "front", {1: 2.0}),
)


def body_mesh(model: BodyModel, faces: np.ndarray, pose: str | None, betas: dict[int, float]) -> MeshToDraw:
    """The body in its own frame (y up, facing +z), standing with its lowest point at y = 0.

    A common floor lets one framing show the bodies' heights side by side.
    """
    shape = torch.zeros(1, model.num_betas)
    for index, value in betas.items():
        shape[0, index] = value
    aa = body_pose(POSES[pose]).float() if pose else torch.zeros(23, 3)
    with torch.no_grad():
        out = model(torch.eye(3)[None], axis_angle_to_matrix(aa)[None], shape, vertices=True)
    vertices = out.vertices[0].double().numpy()
    vertices[:, 1] -= vertices[:, 1].min()
    return MeshToDraw(vertices, faces)


def shared_poses(meshes: list[MeshToDraw], rotations: list[np.ndarray], camera: Camera) -> list[np.ndarray]:
    """World-to-camera poses that show each mesh, turned by its rotation, at one common distance.

    Each mesh is centred across its panel and all stand on one floor line; the distance is the
    least at which the widest and the tallest of them fit with a margin, so sizes compare across
    panels (look_at_camera's bounding sphere would leave tall narrow panels mostly empty).
    """
    turned = [m.vertices @ r.T for m, r in zip(meshes, rotations)]
    lows = np.min([v.min(0) for v in turned], axis=0)
    highs = np.max([v.max(0) for v in turned], axis=0)
    half_width = max(float(np.ptp(v[:, 0])) / 2 for v in turned)
    half_height = float(highs[1] - lows[1]) / 2
    half_depth = max(float(np.ptp(v[:, 2])) / 2 for v in turned)
    (fx, fy), (cx, cy) = camera.focal, camera.center
    distance = half_depth + max(half_width * fx / (FILL * cx), half_height * fy / (FILL * cy))
    poses = []
    for vertices, rotation in zip(turned, rotations):
        centre = np.array(
            [
                (vertices[:, 0].min() + vertices[:, 0].max()) / 2,
                (lows[1] + highs[1]) / 2,
                (vertices[:, 2].min() + vertices[:, 2].max()) / 2,
            ]
        )
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = np.array([0.0, 0.0, distance]) - centre
        poses.append(pose)
    return poses


def row(meshes: list[MeshToDraw], views: list[str], labels: list[str]) -> np.ndarray:
    """One row of equal panels, one mesh each, framed alike, each labelled underneath."""
    width = WIDTH // len(meshes)
    # look_at_camera supplies the camera and each view's rotation; shared_poses the distance.
    framings = [look_at_camera(meshes, width, ROW_HEIGHT - LABEL_HEIGHT, view) for view in views]
    camera = framings[0][0]
    poses = shared_poses(meshes, [pose[:3, :3] for _, pose in framings], camera)
    panels = []
    for mesh, pose, label in zip(meshes, poses, labels):
        rgb, alpha = render([mesh], camera, pose)
        picture = BACKGROUND * (1 - alpha[..., None]) + rgb * alpha[..., None]
        panel = np.empty((ROW_HEIGHT, width, 3), dtype=np.uint8)
        panel[:] = BACKGROUND
        panel[: camera.height] = np.clip(np.round(picture), 0, 255)
        (text_width, _), _ = cv2.getTextSize(label, FONT, FONT_SCALE, 1)
        cv2.putText(panel, label, ((width - text_width) // 2, ROW_HEIGHT - 12), FONT, FONT_SCALE, INK, 1, cv2.LINE_AA)
        panel[:, -1] = LINE  # between panels
        panels.append(panel)
    return np.concatenate(panels, axis=1)


def main() -> None:
    data = load_body_model("default")
    model = BodyModel(data)
    rest = body_mesh(model, data.faces, None, {})
    top = row([rest] * len(REST_VIEWS), [view for _, view in REST_VIEWS], [label for label, _ in REST_VIEWS])
    posed = [body_mesh(model, data.faces, pose, betas) for _, pose, _, betas in POSED]
    bottom = row(posed, [view for _, _, view, _ in POSED], [label for label, *_ in POSED])
    separator = np.full((2, WIDTH, 3), LINE, dtype=np.uint8)
    write_image_atomic(OUTPUT, np.concatenate([top, separator, bottom], axis=0))
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
