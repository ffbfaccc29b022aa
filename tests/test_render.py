"""Rendering checked on real renders of simple meshes, through both backends.

Each test runs once per backend (BODYFIT_RENDERER); the OpenGL run is skipped only where no
OpenGL context can be made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh
from test_samples import SAMPLES, posed

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.errors import DeviceError
from bodyfit_cli.pipeline import PERSON_COLORS
from bodyfit_cli.render import Camera, MeshToDraw, api, gl, look_at_camera, overlay, render, software
from bodyfit_cli.render.api import SIDE_BACKGROUND

# Off-centre principal point and unequal focals, so that a mix-up of any of them shows.
CAMERA = Camera(focal=(500.0, 520.0), center=(300.0, 260.0), width=640, height=480)


def sphere(centre: tuple[float, float, float], radius: float = 0.3, color=(0.9, 0.4, 0.3)) -> MeshToDraw:
    shape = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    return MeshToDraw(shape.vertices + np.asarray(centre), shape.faces, color)


def box(extents: tuple[float, float, float], transform: np.ndarray | None = None, color=(0.3, 0.4, 0.9)) -> MeshToDraw:
    shape = trimesh.creation.box(extents=extents, transform=transform)
    return MeshToDraw(shape.vertices, shape.faces, color)


def translation(x: float, y: float, z: float) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = (x, y, z)
    return matrix


def centroid(weight: np.ndarray) -> np.ndarray:
    """Weighted mean pixel (u, v) of a mask."""
    v, u = np.mgrid[: weight.shape[0], : weight.shape[1]]
    return np.array([(u * weight).sum(), (v * weight).sum()]) / weight.sum()


def half_extents(mask: np.ndarray) -> np.ndarray:
    """Half the width and height, in pixels, of the covered pixels of a mask."""
    v, u = np.nonzero(mask)
    return np.array([u.max() - u.min() + 1, v.max() - v.min() + 1]) / 2


def two_shapes() -> list[MeshToDraw]:
    return [sphere((0.0, 0.0, 3.0)), box((0.6, 1.4, 0.3), translation(0.5, 0.2, 3.5))]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(params=["software", "pyrender"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BODYFIT_RENDERER", request.param)
    if request.param == "pyrender":
        try:
            render([sphere((0.0, 0.0, 3.0))], CAMERA)
        except DeviceError as error:
            pytest.skip(f"no OpenGL context can be made here: {error}")
    return request.param


def test_sphere_lands_on_its_projection_with_its_projected_size(backend: str) -> None:
    centre, radius = np.array([0.0, 0.0, 3.0]), 0.3
    rgb, alpha = render([sphere(tuple(centre), radius)], CAMERA)
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
    assert alpha.shape == (480, 640) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() == 1.0
    # A sphere on the optical axis projects to a centred ellipse of half-axes f r / sqrt(z^2 - r^2).
    assert np.abs(centroid(alpha) - CAMERA.project(centre[None])[0]).max() < 0.5
    expected = np.asarray(CAMERA.focal) * radius / np.sqrt(centre[2] ** 2 - radius**2)
    assert np.abs(half_extents(alpha > 0.5) - expected).max() < 2.0
    assert rgb[alpha == 0].max() == 0 and rgb[alpha == 1].mean() > 60


def test_small_sphere_off_axis_lands_on_its_projection(backend: str) -> None:
    centre = np.array([0.5, -0.3, 2.5])
    _, alpha = render([sphere(tuple(centre), 0.08)], CAMERA)
    assert np.abs(centroid(alpha) - CAMERA.project(centre[None])[0]).max() < 2.0


SIDES = [((0.8, 0.0), "right"), ((-0.8, 0.0), "left"), ((0.0, 0.6), "lower"), ((0.0, -0.6), "upper")]


@pytest.mark.parametrize(("offset", "side"), SIDES)
def test_opencv_axes(backend: str, offset: tuple[float, float], side: str) -> None:
    _, alpha = render([sphere((offset[0], offset[1], 3.0))], CAMERA)
    v, u = np.nonzero(alpha)
    half = {"right": u >= 320, "left": u < 320, "lower": v >= 240, "upper": v < 240}[side]
    assert len(u) > 1000 and half.all()


def test_pose_is_applied_to_vertices_first(backend: str) -> None:
    turn = trimesh.transformations.rotation_matrix(np.radians(30), [0, 1, 0])
    pose = translation(0.2, 0.1, 3.0) @ turn
    _, posed = render([box((0.8, 0.5, 0.3))], CAMERA, pose)
    _, moved = render([box((0.8, 0.5, 0.3), pose)], CAMERA)
    assert posed.sum() > 1000
    assert iou(posed > 0.5, moved > 0.5) > 0.99


def test_geometry_behind_the_camera_is_clipped(backend: str) -> None:
    _, empty = render([], CAMERA)
    _, behind = render([sphere((0.0, 0.0, -3.0))], CAMERA)
    assert empty.max() == 0 and behind.max() == 0
    # A floor slab under the camera running from behind it to far ahead: only its front part shows.
    _, floor = render([box((2.0, 0.1, 8.0), translation(0.0, 1.0, 2.0))], CAMERA)
    v, _ = np.nonzero(floor > 0.5)
    assert len(v) > 10_000 and v.min() > CAMERA.center[1]


def test_backends_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    scene = [
        sphere((0.0, 0.0, 3.0)),
        box((0.6, 1.4, 0.3), translation(0.5, 0.2, 3.5)),
        box((2.0, 0.1, 8.0), translation(0.0, 1.0, 2.0)),
    ]
    masks = {}
    for name in ("software", "pyrender"):
        monkeypatch.setenv("BODYFIT_RENDERER", name)
        try:
            _, alpha = render(scene, CAMERA)
        except DeviceError as error:
            pytest.skip(f"no OpenGL context can be made here: {error}")
        masks[name] = alpha > 0.5
    assert iou(masks["software"], masks["pyrender"]) > 0.98


def test_drawing_only_the_meshes_window_changes_no_pixel(backend: str) -> None:
    """`render` draws the window the meshes can cover (a fraction of a video frame) and pastes it: the same
    image as drawing the whole frame, up to a rounding step on an edge pixel or two."""
    scene = two_shapes()
    rgb, alpha = render(scene, CAMERA)
    whole_rgb, whole_alpha = api._backend()(scene, CAMERA)  # the backend on the whole image
    x0, y0, x1, y1 = api.render_window(scene, CAMERA)[0]
    assert (x1 - x0) * (y1 - y0) < 0.25 * CAMERA.width * CAMERA.height
    assert np.abs(rgb.astype(int) - whole_rgb).max() <= 1 and (rgb != whole_rgb).any(axis=2).sum() < 20
    np.testing.assert_allclose(alpha, whole_alpha, atol=1 / 255)
    assert whole_alpha[alpha == 0].max() == 0  # nothing drawn outside the window
    # Off the image, or behind the camera: no window; reaching behind the camera: the whole image.
    assert api.render_window([sphere((9.0, 0.0, 3.0))], CAMERA)[0] is None
    assert api.render_window([sphere((0.0, 0.0, -3.0))], CAMERA)[0] is None
    assert api.render_window([box((2.0, 0.1, 8.0), translation(0.0, 1.0, 2.0))], CAMERA)[0] == (0, 0, 640, 480)


FRESH_SCRIPT = """
import sys
import numpy as np
from test_render import CAMERA, two_shapes
from bodyfit_cli.render import gl
rgb, alpha = gl.render(two_shapes(), CAMERA)
np.savez(sys.argv[1], rgb=rgb, alpha=alpha)
"""


def test_reused_renderer_draws_what_a_fresh_one_draws(backend: str, tmp_path: Path) -> None:
    """The OpenGL backend keeps one renderer and one scene for the process and swaps the meshes in: a frame
    drawn after others (other meshes, colours, image size) is the frame a new process's renderer draws.
    (A second renderer cannot be made and dropped in one process: pyrender's cleanup ends EGL for all.)"""
    if backend != "pyrender":
        pytest.skip("the software renderer keeps nothing between calls")
    scene = two_shapes()
    first = gl.render(scene, CAMERA)
    gl.render([sphere((0.2, 0.1, 2.0), color=(0.1, 0.9, 0.1))], Camera((300.0, 300.0), (100.0, 80.0), 200, 160))
    again = gl.render(scene, CAMERA)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
    done = subprocess.run(
        [sys.executable, "-c", FRESH_SCRIPT, str(tmp_path / "fresh.npz")],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "fresh.npz") as fresh:
        np.testing.assert_array_equal(again[0], fresh["rgb"])
        np.testing.assert_array_equal(again[1], fresh["alpha"])
    np.testing.assert_array_equal(again[0], first[0])
    assert again[1].sum() > 1000


def test_overlay_keeps_the_photo_outside_the_meshes(backend: str) -> None:
    photo = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    meshes = [sphere((0.3, 0.2, 3.0))]
    _, alpha = render(meshes, CAMERA)
    plain = overlay(photo, meshes, CAMERA, side_view=False)
    both = overlay(photo, meshes, CAMERA)
    assert plain.shape == (480, 640, 3) and plain.dtype == np.uint8
    assert both.shape == (480, 1280, 3) and both.dtype == np.uint8
    np.testing.assert_array_equal(both[:, :640], plain)
    outside = alpha == 0
    np.testing.assert_array_equal(plain[outside], photo[outside])
    inside = alpha == 1
    assert np.abs(plain[inside].astype(int) - photo[inside]).mean() > 20
    nobody = overlay(photo, [], CAMERA)
    np.testing.assert_array_equal(nobody[:, :640], photo)
    assert (nobody[:, 640:] == SIDE_BACKGROUND).all()
    with pytest.raises(ValueError):
        overlay(photo[:100], meshes, CAMERA)


def test_side_view_turns_meshes_about_the_vertical_and_fits_them(backend: str) -> None:
    # Wide, short and thin: face on it is wide; turned a quarter about the vertical, narrow.
    meshes = [box((1.2, 0.4, 0.1), translation(0.5, 0.2, 4.0))]
    photo = np.zeros((480, 640, 3), np.uint8)
    panel = overlay(photo, meshes, CAMERA)[:, 640:]
    covered = np.any(panel != SIDE_BACKGROUND, axis=2)
    width, height = half_extents(covered)
    assert height > 3 * width
    v, u = np.nonzero(covered)
    assert u.min() > 0 and v.min() > 0 and u.max() < 639 and v.max() < 479
    # Centred up to perspective: the box's near end, off the optical axis, projects further out.
    assert np.abs(centroid(covered) - (319.5, 239.5)).max() < 20


def test_look_at_camera_frames_a_y_up_body(backend: str) -> None:
    body = box((1.0, 1.8, 0.3), color=(0.2, 0.2, 1.0))
    head = sphere((0.0, 1.1, 0.0), 0.15, color=(1.0, 0.1, 0.1))
    left_hand = sphere((0.7, 0.0, 0.0), 0.1, color=(0.1, 1.0, 0.1))
    meshes = [body, head, left_hand]
    widths = {}
    for view in ("front", "three_quarter", "side"):
        camera, pose = look_at_camera(meshes, 300, 400, view)
        rgb, alpha = render(meshes, camera, pose)
        covered = alpha > 0.5
        v, u = np.nonzero(covered)
        assert u.min() > 0 and v.min() > 0 and u.max() < 299 and v.max() < 399
        widths[view] = half_extents(covered)[0]
        colour = {c: covered & (rgb.argmax(axis=2) == i) & (np.ptp(rgb, axis=2) > 30) for i, c in enumerate("rgb")}
        assert centroid(colour["r"])[1] < centroid(colour["b"])[1] - 50  # the head is up
        if view != "side":  # facing the body, its left (+x) is on the image's right
            assert centroid(colour["g"])[0] > centroid(colour["b"])[0] + 10
    assert widths["front"] > widths["three_quarter"] > widths["side"]
    with pytest.raises(ValueError):
        look_at_camera(meshes, 300, 400, "top")


def test_unknown_renderer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BODYFIT_RENDERER", "vulkan")
    with pytest.raises(DeviceError, match="BODYFIT_RENDERER"):
        render([sphere((0.0, 0.0, 3.0))], CAMERA)


FALLBACK_SCRIPT = """
import os
from bodyfit_cli.errors import DeviceError
from bodyfit_cli.render import Camera, MeshToDraw, render
import trimesh
shape = trimesh.creation.icosphere(radius=0.3)
mesh = MeshToDraw(shape.vertices + [0, 0, 3], shape.faces)
camera = Camera((500.0, 500.0), (320.0, 240.0), 640, 480)
for _ in range(2):
    print("covered", int((render([mesh], camera)[1] > 0).sum()))
os.environ["BODYFIT_RENDERER"] = "pyrender"
try:
    render([mesh], camera)
except DeviceError:
    print("forced: DeviceError")
"""


def test_falls_back_to_software_once_with_one_notice() -> None:
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "BODYFIT_RENDERER")}
    # An EGL device that does not exist: OpenGL fails here as it would on a machine without it.
    env.update(PYOPENGL_PLATFORM="egl", EGL_DEVICE_ID="99", PYTHONPATH=str(root))
    done = subprocess.run(
        [sys.executable, "-c", FALLBACK_SCRIPT], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    covered = [int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("covered")]
    assert len(covered) == 2 and covered[0] == covered[1] > 5000
    assert "forced: DeviceError" in done.stdout
    notices = [line for line in done.stderr.splitlines() if "using the built-in software renderer" in line]
    assert len(notices) == 1 and notices[0].startswith("OpenGL unavailable (")


def test_quiet_silences_the_software_renderer_notice(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "BODYFIT_RENDERER", "BODYFIT_MODEL_DIR")}
    env.update(PYOPENGL_PLATFORM="egl", EGL_DEVICE_ID="99")
    args = [
        sys.executable,
        "-m",
        "bodyfit_cli",
        "image",
        str(root / "samples" / "standing_front.jpg"),
        "--out",
        str(tmp_path),
    ]
    loud = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert loud.returncode == 0, loud.stderr
    assert "bodyfit: OpenGL unavailable (" in loud.stderr and (tmp_path / "standing_front_overlay.png").is_file()
    quiet = subprocess.run(
        [*args, "--overwrite", "--quiet"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_a_shrunk_camera_sees_a_point_where_the_shrunk_image_has_it() -> None:
    """Resizing an image by f moves the pixel centre u to (u + 0.5) f - 0.5 (OpenCV's fx = fy = f)."""
    points = np.array([[0.1, -0.2, 2.0], [-0.5, 0.3, 4.0], [0.0, 0.0, 1.0]])
    factor = 0.3
    small = CAMERA.shrunk(factor, 192, 144)
    assert (small.width, small.height) == (192, 144)
    np.testing.assert_allclose(small.project(points), (CAMERA.project(points) + 0.5) * factor - 0.5, atol=1e-9)


@pytest.fixture(scope="module", params=["two_people", "lunge_side"])
def sample_bodies(request: pytest.FixtureRequest) -> tuple[list[MeshToDraw], Camera]:
    """The true bodies of a rendered sample (the default model posed with its parameters), as an overlay
    draws fitted bodies, and the sample's camera."""
    sample = json.loads((SAMPLES / f"{request.param}.json").read_text())
    model = BodyModel(load_body_model("default"))
    meshes = []
    for i, person in enumerate(sample["people"]):
        body = posed(model, person, vertices=True)
        meshes.append(MeshToDraw(body.vertices[0].numpy(), model.faces.numpy(), PERSON_COLORS[i]))
    width, height = sample["image_size"]
    return meshes, Camera(tuple(sample["camera"]["focal"]), tuple(sample["camera"]["center"]), width, height)


def filled_triangles(meshes: list[MeshToDraw], camera: Camera) -> np.ndarray:
    """The pixels the meshes' camera-facing triangles cover, each triangle filled on its own by OpenCV, as the
    previous software renderer filled them (with the same sub-pixel corners): the meshes' silhouette."""
    mask = np.zeros((camera.height, camera.width), np.uint8)
    for mesh in meshes:
        tri = mesh.vertices[mesh.faces]
        facing = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), tri[:, 0]) < 0
        corners = camera.project(tri[facing].reshape(-1, 3)).reshape(-1, 3, 2)
        for points in np.round(corners * 16).astype(np.int32):
            cv2.fillConvexPoly(mask, points, 1, cv2.LINE_8, 4)
    return mask > 0


def test_built_in_renderer_draws_a_body_where_its_triangles_project(sample_bodies) -> None:
    """The built-in renderer covers the pixels the previous one (a fill per triangle) covered, so the overlay
    sits where it did; each person keeps their own colour."""
    meshes, camera = sample_bodies
    rgb, alpha = software.render(meshes, camera)
    drawn, reference = alpha > 0, filled_triangles(meshes, camera)
    assert drawn.sum() > 5000
    assert iou(drawn, reference) > 0.97
    # OpenCV fills the pixels an edge passes near, not only those whose centres are inside: the previous
    # silhouette was a little larger, and off by up to half a pixel (below, OpenGL's is not).
    assert np.abs(centroid(drawn) - centroid(reference)).max() < 1.0
    assert rgb[~drawn].max() == 0 and rgb[drawn].min(axis=1).max() > 0
    if len(meshes) == 2:  # each person's colour where they alone are drawn, at least
        alone = [software.render([m], camera)[1] > 0 for m in meshes]
        hue = rgb[drawn] / rgb[drawn].max(axis=1, keepdims=True)
        for mesh, mask in zip(meshes, alone):
            theirs = np.abs(hue - np.divide(mesh.color, max(mesh.color))).max(axis=1) < 0.05
            assert theirs.sum() >= mask.sum() - (alone[0] & alone[1]).sum() > 5000


def test_built_in_renderer_looks_as_opengl_draws_a_body(sample_bodies, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where OpenGL draws on the CPU, the overlay now comes from the built-in renderer: the same silhouette
    and the same smooth shading (the lights, the vertex normals), up to OpenGL's smoothed edges."""
    meshes, camera = sample_bodies
    monkeypatch.setenv("BODYFIT_RENDERER", "pyrender")
    try:
        gl_rgb, gl_alpha = render(meshes, camera)
    except DeviceError as error:
        pytest.skip(f"no OpenGL context can be made here: {error}")
    rgb, alpha = software.render(meshes, camera)
    assert iou(alpha > 0.5, gl_alpha > 0.5) > 0.98
    assert np.abs(centroid(alpha) - centroid(gl_alpha)).max() < 0.1
    inside = (alpha > 0) & (gl_alpha == 1)
    assert np.abs(rgb[inside].astype(int) - gl_rgb[inside]).mean() < 6


def test_nearest_surface_wins_where_triangles_cross() -> None:
    """Two squares crossing in depth over the same pixels: each is in front on its own side of the crossing,
    as a depth buffer has it (filling whole triangles far to near, one would cover the other)."""
    square = np.array([[0, 1, 2], [0, 2, 3]])

    def tilted(near_x: float, color: tuple[float, float, float]) -> MeshToDraw:
        corners = [(-0.5, -0.5), (-0.5, 0.5), (0.5, 0.5), (0.5, -0.5)]  # counter-clockwise seen from the camera
        return MeshToDraw([(x, y, 3.0 + 0.8 * x * np.sign(-near_x)) for x, y in corners], square, color)

    # Both have their normals towards the camera; the red one's left side is nearer, the blue one's right.
    meshes = [tilted(-1.0, (1.0, 0.0, 0.0)), tilted(1.0, (0.0, 0.0, 1.0))]
    rgb, alpha = software.render(meshes, CAMERA)
    assert (alpha > 0).sum() > 10_000
    crossing = CAMERA.project(np.array([[0.0, 0.0, 3.0]]))[0, 0]
    v, u = np.nonzero(alpha > 0)
    red = rgb[v, u, 0] > rgb[v, u, 2]
    assert red[u < crossing - 1].all() and not red[u > crossing + 1].any()


def test_built_in_renderer_in_chunks_draws_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pixels are depth-tested a chunk at a time to bound memory (a floor reaching to the camera covers much of
    the image): small chunks change no pixel."""
    scene = [*two_shapes(), box((2.0, 0.1, 8.0), translation(0.0, 1.0, 2.0))]
    whole = software.render(scene, CAMERA)
    monkeypatch.setattr(software, "_CHUNK", 1000)
    chunked = software.render(scene, CAMERA)
    assert whole[1].sum() > 50_000
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])


def test_opengl_on_the_cpu_gives_way_to_the_built_in_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without BODYFIT_RENDERER: OpenGL where a GPU draws it, the built-in renderer where OpenGL draws on the CPU
    (Mesa's llvmpipe is three to five times slower at a person in a video frame)."""
    monkeypatch.delenv("BODYFIT_RENDERER", raising=False)
    drawn = []
    monkeypatch.setattr(gl, "render", lambda meshes, camera: drawn.append("gl") or software.render(meshes, camera))
    scene = two_shapes()
    for on_cpu, expected in ((True, []), (False, ["gl"])):
        monkeypatch.setattr(gl, "on_cpu", lambda on_cpu=on_cpu: on_cpu)
        drawn.clear()
        rgb, alpha = render(scene, CAMERA)
        assert drawn == expected and alpha.sum() > 1000
