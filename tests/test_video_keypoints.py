"""`bodyfit video --keypoints DIR`: each frame's people read from OpenPose's per-frame JSON instead of detected.

The files are written here from known keypoints, two people a frame (the default body projected as in
test_cli, shrunk, one left and one right, both moving right), so every person in the results can be traced to
the file and the frame it came from. The photo of the clip does not matter: nothing is detected. Fits use the
regressor alone (`--method regressor`), which is quick; what is checked is what reaches them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bodyfit_cli.cli import app
from bodyfit_cli.detection.mappings import OPENPOSE_BODY_25, OPENPOSE_COCO_18, SourceLayout
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES
from tests.test_cli import error_lines, heavy_imports, synthetic_keypoints
from tests.test_video import FPS, FRAMES, bodyfit, files_under, mtimes, read_jsonl, write_clip

# Frames of clip.mp4 with no file, and with a file that lists nobody.
NO_FILE, NOBODY = (4, 7), 9
# Frames whose files are named without OpenPose's 12-digit padding, so that name order is not frame order.
UNPADDED = (5, 10)
OTHER_FRAMES = 6
SIDES = {"left": (170.0, 0.5), "right": (450.0, 0.9)}  # centre x and every keypoint's confidence
FIT = ("--method", "regressor", "--no-render")


def person_at(frame: int, side: str) -> np.ndarray:
    """(K, 3) keypoints in our order of the `side` person in `frame`: 4 px further right each frame."""
    uv = synthetic_keypoints()
    x, confidence = SIDES[side]
    uv = (uv - (uv.min(0) + uv.max(0)) / 2) * 0.7 + [x + 4.0 * frame, 400.0]
    return np.concatenate([uv, np.full((len(uv), 1), confidence)], axis=1)


def given(keypoints: np.ndarray, layout: SourceLayout) -> np.ndarray:
    """What a file in `layout` can hold of `keypoints`: the points it has no place for are not given."""
    kept = np.zeros_like(keypoints)
    for ours in layout.to_ours.values():
        kept[KEYPOINT_INDEX[ours]] = keypoints[KEYPOINT_INDEX[ours]]
    return kept


def write_openpose(path: Path, people: list[np.ndarray], layout: SourceLayout) -> None:
    """An OpenPose file of `people` ((K, 3) each, our order) in `layout`; unmapped points as OpenPose writes
    them, zeros."""
    entries = []
    for keypoints in people:
        flat: list[float] = []
        for name in layout.names:
            ours = layout.to_ours.get(name)
            flat += [float(v) for v in keypoints[KEYPOINT_INDEX[ours]]] if ours else [0.0, 0.0, 0.0]
        entries.append({"person_id": [-1], "pose_keypoints_2d": flat})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1.3, "people": entries}))


def frame_people(frame: int) -> list[np.ndarray]:
    """Both people, in the order of the file: odd frames list the right one first, so order says nothing."""
    people = [person_at(frame, "left"), person_at(frame, "right")]
    return people[::-1] if frame % 2 else people


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clip.mp4 with BODY_25 files side by side in kp/ as OpenPose names them (`clip_<frame>_keypoints.json`),
    other.mp4 with COCO-18 files in its own folder kp/other/ under another clip's name (as if renamed since)."""
    root = tmp_path_factory.mktemp("video_keypoints")
    write_clip(root / "clip.mp4")
    write_clip(root / "other.mp4", frames=OTHER_FRAMES)
    for frame in range(FRAMES):
        if frame in NO_FILE:
            continue
        number = str(frame) if frame in UNPADDED else f"{frame:012d}"
        people = [] if frame == NOBODY else frame_people(frame)
        write_openpose(root / "kp" / f"clip_{number}_keypoints.json", people, OPENPOSE_BODY_25)
    for frame in range(OTHER_FRAMES):
        write_openpose(
            root / "kp" / "other" / f"renamed_{frame:012d}_keypoints.json", frame_people(frame), OPENPOSE_COCO_18
        )
    shutil.copytree(root / "kp", root / "kp_bad", ignore=shutil.ignore_patterns("other"))
    (root / "kp_bad" / "clip_000000000006_keypoints.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2, ')
    for prefix in ("a", "b"):  # clip.mp4's own folder, with two other clips' files and none of its own
        write_openpose(root / "mixed" / "clip" / f"{prefix}_000000000000_keypoints.json", [], OPENPOSE_BODY_25)
    return root


def people_by_frame(lines: list[dict]) -> dict[int, list[dict]]:
    return {line["frame"]: line["people"] for line in lines}


def check_people(people: list[dict], frame: int, layout: SourceLayout, sides: tuple[str, ...]) -> dict[int, str]:
    """Each person fitted in `frame` has exactly the keypoints of one of the file's `sides` people, all of
    them are there; returns which track is which side."""
    assert len(people) == len(sides), (frame, len(people))
    found = {}
    for person in people:
        keypoints = np.array([person["keypoints2d"][n] for n in KEYPOINT_NAMES])
        side = "left" if keypoints[keypoints[:, 2] > 0, 0].mean() < 320 else "right"
        np.testing.assert_allclose(keypoints, given(person_at(frame, side), layout), atol=1e-9, err_msg=f"{frame}")
        found[person["track_id"]] = side
    assert sorted(found.values()) == sorted(sides)
    return found


@pytest.fixture(scope="module")
def two_clips(scene: Path) -> tuple[int, list[dict], list[str]]:
    """Both clips in one run, in a fresh interpreter: (exit status, the summaries, the heavy modules loaded)."""
    exit_code, stdout, modules = heavy_imports(
        ["clip.mp4", "other.mp4", "--keypoints", "kp", "--out", "D", "--json", *FIT], scene, command="video"
    )
    return exit_code, [json.loads(line) for line in stdout.splitlines()], modules


def test_frames_get_the_people_of_the_file_named_for_them(scene: Path, two_clips) -> None:
    """BODY_25 files next to each other, named for the clip: each frame with a file gets its people, by the
    frame number in its name (unpadded numbers too); frames without a file, or with nobody in it, get nobody.
    The people are tracked as detected ones are: a track keeps its person whatever order the file lists them in."""
    exit_code, summaries, modules = two_clips
    assert exit_code == 0, summaries
    assert "mediapipe" not in modules
    summary = next(s for s in summaries if s["input"] == "clip.mp4")
    with_people = FRAMES - len(NO_FILE) - 1
    assert summary["frames"] == FRAMES
    assert summary["tracks"] == [{"track_id": 0, "frames": with_people}, {"track_id": 1, "frames": with_people}]
    people = people_by_frame(read_jsonl(scene / "D" / "clip.jsonl"))
    assert sorted(people) == list(range(FRAMES))
    sides = {}
    for frame, fitted in people.items():
        if frame in (*NO_FILE, NOBODY):
            assert fitted == [], frame
            continue
        for track, side in check_people(fitted, frame, OPENPOSE_BODY_25, ("left", "right")).items():
            assert sides.setdefault(track, side) == side, (frame, track)
    assert sides == {0: "right", 1: "left"}  # frame 0's people, the more confident first
    with np.load(scene / "D" / "clip.npz") as npz:
        assert sorted(set(npz["frame"].tolist())) == [f for f in range(FRAMES) if f not in (*NO_FILE, NOBODY)]


def test_a_clip_reads_its_own_folder_of_coco18_files(scene: Path, two_clips) -> None:
    """kp/other/ is other.mp4's folder: its files count whatever clip name they carry; COCO-18 has no feet,
    which the fits are given as missing."""
    exit_code, summaries, _ = two_clips
    assert exit_code == 0
    summary = next(s for s in summaries if s["input"] == "other.mp4")
    assert summary["tracks"] == [{"track_id": 0, "frames": OTHER_FRAMES}, {"track_id": 1, "frames": OTHER_FRAMES}]
    people = people_by_frame(read_jsonl(scene / "D" / "other.jsonl"))
    assert sorted(people) == list(range(OTHER_FRAMES))
    for frame, fitted in people.items():
        check_people(fitted, frame, OPENPOSE_COCO_18, ("left", "right"))
        for person in fitted:
            assert person["keypoints2d"]["left_big_toe"][2] == 0.0 and person["keypoints2d"]["left_knee"][2] > 0


def test_start_stride_and_max_people(scene: Path) -> None:
    """--start 0.2 --stride 3: frames 2, 5, 8, 11, each with the people of its own file; --max-people 1 keeps
    the more confident of the two (the right one), wherever the file lists them."""
    run = bodyfit(
        "clip.mp4",
        "--keypoints",
        "kp",
        "--out",
        "S",
        "--start",
        "0.2",
        "--stride",
        "3",
        "--max-people",
        "1",
        *FIT,
        cwd=scene,
    )
    assert run.returncode == 0, run.stderr
    people = people_by_frame(read_jsonl(scene / "S" / "clip.jsonl"))
    assert sorted(people) == [round(0.2 * FPS) + 3 * k for k in range(4)] == [2, 5, 8, 11]
    for frame, fitted in people.items():
        assert check_people(fitted, frame, OPENPOSE_BODY_25, ("right",)) == {0: "right"}


def test_a_bad_file_is_one_line_and_loses_nothing(scene: Path, two_clips) -> None:
    """Frame 6's file is cut short: the clip fails with one line naming that file, exit 1, and the results
    of the earlier run, which --overwrite would replace, are all still there, untouched."""
    assert two_clips[0] == 0
    before = mtimes(scene / "D")
    run = bodyfit("clip.mp4", "--keypoints", "kp_bad", "--out", "D", "--overwrite", *FIT, cwd=scene)
    assert run.returncode == 1
    [line] = error_lines(run)
    assert "clip.mp4" in line and str(Path("kp_bad") / "clip_000000000006_keypoints.json") in line
    assert "not JSON" in line
    assert mtimes(scene / "D") == before


@pytest.mark.parametrize(
    "keypoints, exit_code, words",
    [
        pytest.param("kp/clip_000000000000_keypoints.json", 2, ["takes a folder", "is a file"], id="a-file"),
        pytest.param("absent", 2, ["takes a folder", "absent", "not there"], id="absent"),
        pytest.param(
            "kp/other",
            1,
            ["no keypoint files for clip.mp4", "clip_<frame>_keypoints.json", str(Path("kp/other/clip"))],
            id="no-files-for-the-clip",
        ),
        pytest.param(
            "mixed", 1, ["several clips", "a_*, b_*", str(Path("mixed/clip"))], id="several-clips-in-its-folder"
        ),
    ],
)
def test_keypoints_that_cannot_be_read_for_a_clip(
    scene: Path, monkeypatch: pytest.MonkeyPatch, keypoints: str, exit_code: int, words: list[str]
) -> None:
    monkeypatch.chdir(scene)
    result = CliRunner().invoke(app, ["video", "clip.mp4", "--keypoints", keypoints, "--out", "E", *FIT])
    assert result.exit_code == exit_code, (result.stderr, result.exception)
    [line] = error_lines(result)
    assert all(word in line for word in words), line
    assert files_under(scene / "E") == set()
