"""Tests for bodyfit_cli.io: atomic writes, image reading, input expansion and mesh export."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh
from PIL import Image

from bodyfit_cli.errors import InputError, OutputError
from bodyfit_cli.io.atomic import (
    atomic_path,
    ensure_dir,
    write_bytes_atomic,
    write_json_atomic,
    write_npz_atomic,
    write_text_atomic,
)
from bodyfit_cli.io.images import read_image, write_image_atomic
from bodyfit_cli.io.inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputItem, expand_inputs
from bodyfit_cli.io.mesh import write_mesh_atomic

# --- atomic writes ------------------------------------------------------------------------------


def test_atomic_path_keeps_suffix_and_hides_temp(tmp_path: Path) -> None:
    final = tmp_path / "photo_p0.obj"
    with atomic_path(final) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".photo_p0.tmp") and tmp.suffix == ".obj"
        assert not final.exists()
        tmp.write_text("x")
    assert final.read_text() == "x"
    assert os.listdir(tmp_path) == ["photo_p0.obj"]


def test_atomic_failure_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_atomic_failure_keeps_old_content(tmp_path: Path) -> None:
    final = tmp_path / "out.json"
    write_text_atomic(final, "old")
    with pytest.raises(KeyboardInterrupt), atomic_path(final) as tmp:
        tmp.write_text("new but incomplete")
        raise KeyboardInterrupt
    assert final.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]
    write_text_atomic(final, "new")
    assert final.read_text() == "new"


SWALLOWED_CTRL_C = """
import os, signal, sys
from pathlib import Path
from bodyfit_cli.io.atomic import write_text_atomic
from bodyfit_cli.io.ctrl_c import catch_ctrl_c

catch_ctrl_c()


class Cleanup:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # its KeyboardInterrupt is raised, and ignored, in here


Cleanup()
print("went on", flush=True)
write_text_atomic(Path(sys.argv[1]), "done")
"""


def test_ctrl_c_swallowed_by_a_library_still_stops_every_write(tmp_path: Path) -> None:
    """Ctrl-C whose KeyboardInterrupt lands in a `__del__` (Python ignores it there): the run goes on, but no output
    is renamed into place afterwards."""
    run = subprocess.run(
        [sys.executable, "-c", SWALLOWED_CTRL_C, str(tmp_path / "out.txt")], capture_output=True, text=True, timeout=60
    )
    assert run.stdout == "went on\n", run.stderr  # the first KeyboardInterrupt was swallowed
    assert run.returncode != 0 and run.stderr.rstrip().endswith("KeyboardInterrupt"), run.stderr
    assert list(tmp_path.iterdir()) == []


def test_atomic_result_has_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"


def test_write_creates_parent_dirs_and_text_is_utf8(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ünïcode.txt"
    write_text_atomic(path, "héllo\n")
    assert path.read_bytes() == "héllo\n".encode()


def test_json_with_numpy_values_round_trips(tmp_path: Path) -> None:
    obj = {
        "f32": np.float32(1.5),
        "i64": np.int64(7),
        "flag": np.bool_(True),
        "arr": np.arange(6, dtype=np.float64).reshape(2, 3),
        "nested": [np.uint8(3), {"x": np.array([1, 2], dtype=np.int32)}],
        "plain": "text",
    }
    path = tmp_path / "r.json"
    write_json_atomic(path, obj)
    text = path.read_text()
    assert text.endswith("\n") and '\n  "f32"' in text
    assert json.loads(text) == {
        "f32": 1.5,
        "i64": 7,
        "flag": True,
        "arr": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
        "nested": [3, {"x": [1, 2]}],
        "plain": "text",
    }


def test_json_rejects_nan_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with pytest.raises(ValueError):
        write_json_atomic(path, {"x": np.array([1.0, np.nan])})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"x": object()})
    assert os.listdir(tmp_path) == []


def test_npz_round_trips_without_extra_suffix(tmp_path: Path) -> None:
    a = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    b = np.arange(5)
    path = tmp_path / "params.data"
    write_npz_atomic(path, a=a, b=b)
    assert os.listdir(tmp_path) == ["params.data"]
    with np.load(path) as z:
        np.testing.assert_array_equal(z["a"], a)
        np.testing.assert_array_equal(z["b"], b)
        assert z["a"].dtype == np.float32


def test_file_in_the_way_of_directory_is_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("not a dir")
    with pytest.raises(OutputError, match="out is a file") as err:
        ensure_dir(blocker / "sub")
    assert "\n" not in str(err.value) and str(blocker / "sub") in str(err.value)
    with pytest.raises(OutputError):
        write_json_atomic(blocker / "r.json", {})
    with pytest.raises(OutputError):
        ensure_dir(blocker)
    assert blocker.read_text() == "not a dir"


def test_directory_in_the_way_of_file_is_output_error(tmp_path: Path) -> None:
    (tmp_path / "r.json").mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        write_text_atomic(tmp_path / "r.json", "{}")
    assert os.listdir(tmp_path) == ["r.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_directory_is_output_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError):
            write_text_atomic(tmp_path / "x.txt", "x")
        with pytest.raises(OutputError):
            ensure_dir(tmp_path / "sub")
    finally:
        tmp_path.chmod(0o700)


# --- images ------------------------------------------------------------------------------------


def _quadrants() -> np.ndarray:
    """A 40x60 RGB image with four flat, distinct quadrants (survives JPEG compression)."""
    img = np.zeros((40, 60, 3), np.uint8)
    img[:20, :30] = (255, 0, 0)  # top-left red
    img[:20, 30:] = (0, 255, 0)  # top-right green
    img[20:, :30] = (0, 0, 255)  # bottom-left blue
    img[20:, 30:] = (255, 255, 0)  # bottom-right yellow
    return img


def _close(a: np.ndarray, b: tuple[int, int, int], tol: int = 12) -> bool:
    return bool(np.all(np.abs(a.astype(int) - np.array(b)) <= tol))


def test_read_png_is_rgb(tmp_path: Path) -> None:
    img = _quadrants()
    Image.fromarray(img).save(tmp_path / "q.png")
    out = read_image(tmp_path / "q.png")
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
    np.testing.assert_array_equal(out, img)


def test_read_jpeg_is_rgb(tmp_path: Path) -> None:
    Image.fromarray(_quadrants()).save(tmp_path / "q.JPG", quality=95)
    out = read_image(tmp_path / "q.JPG")
    assert out.shape == (40, 60, 3)
    assert _close(out[5, 5], (255, 0, 0)) and _close(out[35, 5], (0, 0, 255))


def test_read_grayscale_rgba_and_16bit(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))

    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = np.arange(12).reshape(3, 4) * 20
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (3, 4, 3)
    assert (out == (10, 20, 30)).all()

    bgr16 = np.zeros((2, 3, 3), np.uint16)
    bgr16[..., 0] = 0x1234  # blue
    bgr16[..., 2] = 0xFF00  # red
    cv2.imwrite(str(tmp_path / "d.png"), bgr16)
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert (out == (0xFF, 0, 0x12)).all()


def test_read_applies_exif_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise for display
    Image.fromarray(_quadrants()).save(tmp_path / "rot.jpg", quality=95, exif=exif.tobytes())
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (60, 40, 3)
    # Clockwise: the stored top-left (red) ends at the top-right, bottom-left (blue) at top-left.
    assert _close(out[5, 35], (255, 0, 0))
    assert _close(out[5, 5], (0, 0, 255))
    assert _close(out[55, 35], (0, 255, 0))


def test_read_non_ascii_path(tmp_path: Path) -> None:
    path = tmp_path / "фото 写真.png"
    Image.fromarray(_quadrants()).save(path)
    assert read_image(path).shape == (40, 60, 3)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("random.jpg", np.random.default_rng(1).bytes(2000), "not an image or corrupt"),
        ("empty.png", b"", "empty file"),
        ("notes.jpg", b"these are not pixels\n", "not an image or corrupt"),
    ],
)
def test_read_bad_files_raise_input_error(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_image(path)
    assert str(err.value) == f"cannot read image: {path} ({reason})"


def test_read_truncated_images_raise_input_error(tmp_path: Path) -> None:
    img = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for name in ("t.jpg", "t.png"):
        full = io.BytesIO()
        Image.fromarray(img).save(full, format="JPEG" if name.endswith("jpg") else "PNG")
        data = full.getvalue()
        for cut in (len(data) // 2, len(data) - 2):
            (tmp_path / name).write_bytes(data[:cut])
            with pytest.raises(InputError, match="not an image or corrupt"):
                read_image(tmp_path / name)


def test_read_missing_and_directory_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="is a directory"):
        read_image(tmp_path)


def test_write_image_round_trips(tmp_path: Path) -> None:
    img = _quadrants()
    write_image_atomic(tmp_path / "out" / "q.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "q.png"), img)
    write_image_atomic(tmp_path / "q.jpg", img)
    assert _close(read_image(tmp_path / "q.jpg")[5, 5], (255, 0, 0))
    with pytest.raises(ValueError):
        write_image_atomic(tmp_path / "q.nope", img)
    assert not (tmp_path / "q.nope").exists()


# --- input expansion ---------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """photos/{a.jpg, B.PNG, notes.txt, .hidden.jpg, .cache/x.jpg, sub/c.Jpeg, sub/deep/d.png}, clip.MP4."""
    monkeypatch.chdir(tmp_path)
    for rel in [
        "photos/a.jpg",
        "photos/B.PNG",
        "photos/notes.txt",
        "photos/.hidden.jpg",
        "photos/.cache/x.jpg",
        "photos/sub/c.Jpeg",
        "photos/sub/deep/d.png",
        "photos/clip.MP4",
        "empty/readme.md",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    return tmp_path


def _rels(items: list[InputItem]) -> list[str]:
    return [i.rel.as_posix() for i in items]


def test_extension_sets_are_lower_case_with_dots() -> None:
    for ext in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
        assert ext.startswith(".") and ext == ext.lower()
    assert {".jpg", ".png"} <= IMAGE_EXTENSIONS and ".mp4" in VIDEO_EXTENSIONS


def test_directory_is_searched_recursively_sorted_skipping_hidden(tree: Path) -> None:
    items = expand_inputs(["photos"], {"image"})
    assert _rels(items) == ["B.PNG", "a.jpg", "sub/c.Jpeg", "sub/deep/d.png"]
    assert [i.path for i in items] == [Path("photos") / i.rel for i in items]
    assert _rels(expand_inputs(["photos"], {"video"})) == ["clip.MP4"]
    assert _rels(expand_inputs(["photos/"], {"image", "video"})) == [
        "B.PNG",
        "a.jpg",
        "clip.MP4",
        "sub/c.Jpeg",
        "sub/deep/d.png",
    ]


def test_explicit_file_is_kept_whatever_its_suffix(tree: Path) -> None:
    items = expand_inputs(["photos/notes.txt", "photos/sub/c.Jpeg"], {"image"})
    assert items == [
        InputItem(Path("photos/notes.txt"), Path("notes.txt")),
        InputItem(Path("photos/sub/c.Jpeg"), Path("c.Jpeg")),
    ]


def test_glob_patterns(tree: Path) -> None:
    assert _rels(expand_inputs(["photos/*.jpg"], {"image"})) == ["a.jpg"]
    assert _rels(expand_inputs(["photos/**/*"], {"image"})) == [
        "B.PNG",
        "a.jpg",
        "sub/c.Jpeg",
        "sub/deep/d.png",
    ]
    # Matched directories keep their part of the path, so same-named files cannot collide.
    assert _rels(expand_inputs([str(tree / "photos" / "s*")], {"image"})) == ["sub/c.Jpeg", "sub/deep/d.png"]
    with pytest.raises(InputError, match=r"^no images match photos/\*\.gif$"):
        expand_inputs(["photos/*.gif"], {"image"})


def test_stdin_paths_and_duplicates(tree: Path) -> None:
    stdin = io.StringIO("\n  photos/a.jpg  \n\nphotos/sub\n./photos/a.jpg\n")
    items = expand_inputs(["photos/sub/c.Jpeg", "-"], {"image"}, stdin=stdin)
    paths = [i.path.as_posix() for i in items]
    assert paths == ["photos/sub/c.Jpeg", "photos/a.jpg", "photos/sub/deep/d.png"]
    assert _rels(items) == ["c.Jpeg", "a.jpg", "deep/d.png"]


def test_missing_path_and_empty_directory_errors(tree: Path) -> None:
    with pytest.raises(InputError) as err:
        expand_inputs(["photos/a.jpg", "photos/missing.jpg"], {"image"})
    assert str(err.value) == "no such file or directory: photos/missing.jpg"
    with pytest.raises(InputError) as err:
        expand_inputs(["empty"], {"image"})
    assert str(err.value) == "no images found in empty"
    with pytest.raises(InputError, match="^no videos found in empty$"):
        expand_inputs(["empty"], {"video"})
    with pytest.raises(InputError, match="^no images or videos found in empty$"):
        expand_inputs(["empty"], {"image", "video"})
    with pytest.raises(InputError, match="^no such file or directory: gone.txt$"):
        expand_inputs(["-"], {"image"}, stdin=io.StringIO("gone.txt\n"))


def test_errors_are_collected_per_argument_when_asked(tree: Path) -> None:
    (tree / "empty").mkdir(exist_ok=True)
    errors: list = []
    items = expand_inputs(
        ["gone.jpg", "photos", "-", "empty"], {"image"}, stdin=io.StringIO("missing.png\n"), errors=errors
    )
    assert _rels(items) == ["B.PNG", "a.jpg", "sub/c.Jpeg", "sub/deep/d.png"]
    assert [(arg, str(e)) for arg, e in errors] == [
        ("gone.jpg", "no such file or directory: gone.jpg"),
        ("missing.png", "no such file or directory: missing.png"),
        ("empty", "no images found in empty"),
    ]


def test_symlink_loop_does_not_recurse_forever(tree: Path) -> None:
    (tree / "photos" / "sub" / "loop").symlink_to(tree / "photos")
    rels = _rels(expand_inputs(["photos"], {"image"}))
    assert rels == ["B.PNG", "a.jpg", "sub/c.Jpeg", "sub/deep/d.png"]


# --- meshes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".glb"])
def test_mesh_round_trip_keeps_vertex_order(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(3)
    vertices = rng.normal(size=(8, 3))
    vertices[7] = vertices[0]  # a duplicate vertex that processing would merge
    faces = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 1], [3, 7, 5]])
    path = tmp_path / "out" / f"photo_p0{suffix}"
    write_mesh_atomic(path, vertices, faces)
    loaded = trimesh.load(path, force="mesh", process=False)
    assert len(loaded.vertices) == 8
    np.testing.assert_allclose(loaded.vertices, vertices, atol=1e-6)
    np.testing.assert_array_equal(loaded.faces, faces)
    assert os.listdir(path.parent) == [path.name]  # no .mtl, no leftover temp file


def test_mesh_unknown_suffix_is_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown mesh format"):
        write_mesh_atomic(tmp_path / "m.stl", np.zeros((3, 3)), np.array([[0, 1, 2]]))
    assert os.listdir(tmp_path) == []


def test_obj_is_written_as_trimesh_writes_it(tmp_path: Path) -> None:
    """OBJ files are written without trimesh (its import costs more than a fit), byte for byte as it would."""
    from bodyfit_cli.body.loaders import load_body_model

    body = load_body_model("default")
    rng = np.random.default_rng(5)
    cases = [
        (body.v_template.astype(np.float32), body.faces),  # what fits write: float32 vertices of the body model
        (rng.normal(scale=1e3, size=(9, 3)), np.array([[0, 1, 2], [8, 7, 6], [3, 4, 5]], np.int32)),
        (np.array([[-0.0, 1e-12, -3.5], [np.pi, 2.0, 1.0], [0.0, 0.0, 1.0]]), np.array([[0, 1, 2]])),
    ]
    for i, (vertices, faces) in enumerate(cases):
        path = tmp_path / f"m{i}.obj"
        write_mesh_atomic(path, vertices, faces)
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
        expected = mesh.export(file_type="obj", include_normals=False, include_color=False, include_texture=False)
        assert path.read_bytes() == expected.encode("utf-8"), i
