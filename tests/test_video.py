"""`bodyfit video`: decoding, tracking, track shapes, smoothing, and the real CLI on clips made at test time.

The clip is a sample photo moved 8 px to the right per frame (10 fps), so every frame can be told
apart by where the person is. CLI runs are real subprocesses shared through module-scoped fixtures.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.detection.types import PersonKeypoints
from bodyfit_cli.errors import InputError
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.io.table import RowTable
from bodyfit_cli.io.video import Frame, FrameRange, VideoReader
from bodyfit_cli.options import Options
from bodyfit_cli.pipeline import ImagePipeline
from bodyfit_cli.video.people import VideoPeopleFinder
from bodyfit_cli.video.pipeline import TrackFit, VideoPipeline, track_settled
from bodyfit_cli.video.shape import ShapeAverage
from bodyfit_cli.video.smoothing import OneEuroFilter, RotationFilter
from bodyfit_cli.video.stages import ahead
from bodyfit_cli.video.tracking import Tracker
from bodyfit_cli.vocabulary import KEYPOINT_NAMES

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "standing_front.jpg"
FPS, FRAMES, SHIFT_PX = 10, 12, 8
PERSON_FIELDS = {
    "track_id",
    "id",
    "bbox",
    "score",
    "camera",
    "translation",
    "global_orient",
    "body_pose",
    "betas",
    "joints3d",
    "keypoints3d",
    "keypoints2d",
    "reprojection_error_px",
    "mesh",
}


def write_clip(path: Path, frames: int = FRAMES, fourcc: str = "mp4v") -> tuple[int, int]:
    """The sample photo shifted SHIFT_PX to the right per frame; returns (width, height)."""
    image = cv2.imread(str(SAMPLE))
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (w, h))
    for i in range(frames):
        shift = np.float32([[1, 0, SHIFT_PX * i], [0, 1, 0]])
        writer.write(cv2.warpAffine(image, shift, (w, h), borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return w, h


def rotate_90(src: Path, dst: Path) -> None:
    """A copy of an MP4 whose track header says "display turned 90 degrees", as phones write it."""
    data = bytearray(src.read_bytes())
    at = data.find(b"tkhd") + 4
    skip = 4 + (32 if data[at] == 1 else 20) + 8 + 8  # version/flags, times/ids/duration, reserved, layer..volume
    data[at + skip : at + skip + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    dst.write_bytes(bytes(data))


def bodyfit(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_MODEL_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "bodyfit_cli", "video", *map(str, args)],
        cwd=cwd,
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def mtimes(root: Path) -> dict[str, int]:
    return {name: (root / name).stat().st_mtime_ns for name in files_under(root)}


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return frames


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- smoothing, tracking, tables, decoding: in this process ---------------------------------------


def angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angles (radians) of the rotations taking axis-angle rotations `a` to `b`, (..., 3) each."""
    relative = axis_angle_to_matrix(a.double()).transpose(-1, -2) @ axis_angle_to_matrix(b.double())
    return ((relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1).acos()


def test_rotation_filter_removes_jitter_and_follows_a_swinging_limb() -> None:
    """With the video's settings: jitter of a still joint (3 degrees) is more than halved, a joint swinging at 4
    radians per second (a fast walk's knee) lags by under a frame's swing, and every result is a rotation."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(90) / 30.0
    pose = torch.tensor([0.3, -1.2, 0.5])

    def filtered(rotations: torch.Tensor) -> torch.Tensor:
        f = RotationFilter()
        return torch.stack([f(r[None], float(ti))[0] for r, ti in zip(rotations, t)])

    noisy = pose + 0.05 * torch.randn(len(t), 3, generator=gen)
    out = filtered(noisy)
    assert angle_between(out, pose)[15:].mean() < angle_between(noisy, pose)[15:].mean() / 2
    swing = torch.zeros(len(t), 3)
    swing[:, 0] = 0.5 + 0.5 * torch.sin(8.0 * t)  # up to 4 rad/s, 1.3 swings per second
    lag = angle_between(filtered(swing), swing)[15:]
    assert lag.max() < 4.0 / 30
    mats = axis_angle_to_matrix(out.double())
    assert torch.allclose(mats @ mats.transpose(-1, -2), torch.eye(3, dtype=torch.float64), atol=1e-6)


def test_one_euro_restarts_entries_that_were_missing() -> None:
    f = OneEuroFilter(1.0, 0.0)
    f(np.array([0.0, 0.0]), 0.0)
    f(np.array([0.0, 9.0]), 0.1, valid=np.array([True, False]))  # second entry not seen
    out = f(np.array([1.0, 5.0]), 0.2)
    assert 0.0 < out[0] < 1.0  # filtered
    assert out[1] == 5.0  # restarted where it reappeared, not dragged from before


def test_tracker_keeps_ids_when_order_changes_and_retires_lost_tracks() -> None:
    tracker = Tracker(min_iou=0.2, max_missed=2)
    a, b = [0, 0, 10, 20], [50, 0, 60, 20]
    assert tracker.update([a, b]) == [0, 1]
    assert tracker.update([[52, 0, 62, 20], [1, 0, 11, 20]]) == [1, 0]  # moved, listed the other way round
    assert tracker.update([]) == []
    assert tracker.update([[2, 0, 12, 20]]) == [0]  # back after a missed frame
    for _ in range(3):
        tracker.update([[2, 0, 12, 20]])
    assert tracker.update([[52, 0, 62, 20], [2, 0, 12, 20]]) == [2, 0]  # track 1 ended: a new id


def test_ahead_gives_the_same_items_in_order_from_another_thread() -> None:
    threads = []

    def items() -> Iterator[int]:
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    with ahead(items(), 3, name="maker") as made:
        assert list(made) == list(range(50))
    assert set(threads) == {"maker"}
    with ahead(items(), 0) as made:  # 0: in line, in this thread
        assert list(made) == list(range(50))
    assert threads[-1] == threading.current_thread().name


def test_ahead_overlaps_making_and_using() -> None:
    """Six items taking 0.1 s to make and 0.1 s to use: 1.2 s one after the other, ~0.7 s side by side."""

    def slow() -> Iterator[int]:
        for i in range(6):
            time.sleep(0.1)
            yield i

    started = time.perf_counter()
    with ahead(slow(), 2) as made:
        for _ in made:
            time.sleep(0.1)
    assert time.perf_counter() - started < 1.0


def test_ahead_raises_the_makers_error_after_the_items_made_before_it() -> None:
    def failing() -> Iterator[int]:
        yield from range(3)
        raise ValueError("frame 3 is corrupt")

    got = []
    with pytest.raises(ValueError, match="frame 3 is corrupt"), ahead(failing(), 2) as made:
        for item in made:
            got.append(item)
    assert got == [0, 1, 2]


def test_ahead_stops_the_maker_when_the_user_stops() -> None:
    """An error (or Ctrl-C) in the loop: the maker stops within the item it is making, its cleanup runs, and
    `ahead` returns only then (nothing is left reading a video about to be closed)."""
    state = {"made": 0, "closed": False}

    def endless() -> Iterator[int]:
        try:
            while True:
                state["made"] += 1
                yield state["made"]
        finally:
            state["closed"] = True

    with pytest.raises(KeyboardInterrupt), ahead(endless(), 2, name="endless") as made:
        for item in made:
            if item == 5:
                raise KeyboardInterrupt
    assert state["closed"] and state["made"] <= 5 + 2 + 1
    assert not [t for t in threading.enumerate() if t.name == "endless"]


def test_shape_average_weighs_each_fit_by_how_well_the_person_was_seen() -> None:
    shape = ShapeAverage()
    assert shape.betas is None
    shape.add(torch.tensor([1.0, 0.0]), 0.9)
    shape.add(torch.tensor([3.0, 1.0]), 0.3)  # half cut off by the image border: counts a third as much
    np.testing.assert_allclose(shape.betas.numpy(), [(0.9 * 1 + 0.3 * 3) / 1.2, 0.3 / 1.2])
    for _ in range(98):
        shape.add(torch.tensor([2.0, 2.0]), 0.9)
    moved = shape.add(torch.tensor([4.0, 4.0]), 0.9) - shape.betas
    assert moved.abs().max() == 0  # add returns the new mean
    before = shape.betas.clone()
    after = shape.add(torch.tensor([4.0, 4.0]), 0.9)
    assert (after - before).abs().max() < 0.03  # after 100 frames, a deviation of 2 moves it by ~1/100 of that


class FakeDetector:
    """MediaPipe's detector in a clip where one person walks 10 px right per frame (frame i's image holds i).

    Tracking mode finds nobody before frame 5, a wrong box in frame 5 (as it did on the sports2d demo), and
    the person from frame 6 on; looked for in a box, the person is found when their centre is in it."""

    can_track = True

    def __init__(self) -> None:
        self.tracked_frames: list[int] = []
        self.searches = 0

    @staticmethod
    def person(box: tuple[float, float, float, float], score: float) -> PersonKeypoints:
        return PersonKeypoints(np.zeros((len(KEYPOINT_NAMES), 3)), box, score, None)

    @staticmethod
    def box(i: int) -> tuple[float, float, float, float]:
        return (100.0 + 10 * i, 100.0, 200.0 + 10 * i, 400.0)

    def reset(self) -> None:
        self.tracked_frames.clear()

    def track(self, rgb: np.ndarray) -> PersonKeypoints | None:
        i = int(rgb[0, 0, 0])
        self.tracked_frames.append(i)
        if i < 5:
            return None
        return self.person((150.0, 100.0, 400.0, 250.0) if i == 5 else self.box(i), 0.5)

    def detect(self, rgb: np.ndarray) -> list[PersonKeypoints]:
        self.searches += 1
        return [self.person(self.box(int(rgb[0, 0, 0])), 0.9)]

    def find_in(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> list[PersonKeypoints]:
        x0, y0, x1, y1 = self.box(int(rgb[0, 0, 0]))
        inside = box[0] < (x0 + x1) / 2 < box[2] and box[1] < (y0 + y1) / 2 < box[3]
        return [self.person((x0, y0, x1, y1), 0.9)] if inside else []


def test_people_are_followed_from_the_first_frame_and_tracking_mode_takes_over_once_it_agrees() -> None:
    detector = FakeDetector()
    finder = VideoPeopleFinder(detector, max_people=1)  # type: ignore[arg-type]
    finder.reset()
    found = [finder.find(Frame(i, i / FPS, np.full((2, 2, 3), i, np.uint8))) for i in range(12)]
    assert [len(people) for people in found] == [1] * 12
    assert [people[0].bbox for people in found] == [detector.box(i) for i in range(12)]  # never the wrong box
    # Our estimate (score 0.9) until tracking mode agrees with it (frame 6); tracking mode's (0.5) after that.
    assert [people[0].score for people in found] == [0.9] * 7 + [0.5] * 5
    assert detector.tracked_frames == list(range(12)) and detector.searches == 1  # one full search


def test_row_table_writes_an_npz_of_its_rows(tmp_path: Path) -> None:
    empty = {"frame": ((), np.dtype(np.int64)), "pose": ((4,), np.dtype(np.float32))}
    table = RowTable(tmp_path)
    for i in range(3):
        table.append(frame=np.int64(i), pose=np.full(4, i, np.float32))
    table.write_npz(tmp_path / "t.npz", empty, names=np.array(["a", "b"]))
    table.close()
    nobody = RowTable(tmp_path)
    nobody.write_npz(tmp_path / "none.npz", empty)
    with np.load(tmp_path / "t.npz") as npz:
        assert npz["frame"].tolist() == [0, 1, 2]
        assert npz["pose"].shape == (3, 4) and npz["pose"][2, 0] == 2
        assert npz["names"].tolist() == ["a", "b"]
    with np.load(tmp_path / "none.npz") as npz:
        assert npz["frame"].shape == (0,) and npz["pose"].shape == (0, 4)
    assert files_under(tmp_path) == {"t.npz", "none.npz"}  # the row spools leave nothing behind


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("video")
    write_clip(root / "clip.mp4")
    rotate_90(root / "clip.mp4", root / "phone.mp4")
    write_clip(root / "short.avi", frames=8, fourcc="MJPG")
    data = (root / "short.avi").read_bytes()
    (root / "truncated.avi").write_bytes(data[: len(data) * 55 // 100])
    (root / "empty.mp4").write_bytes(b"")
    (root / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return root


def test_reader_selects_frames_by_time_and_stride(clips: Path) -> None:
    with VideoReader(clips / "clip.mp4") as video:
        assert (video.fps, video.frame_count) == (FPS, FRAMES)
        wanted = FrameRange(start=0.2, end=0.9, stride=3)
        frames = list(video.frames(wanted))
    assert [f.index for f in frames] == [2, 5, 8] == list(range(*wanted.first_last(FPS, FRAMES), 3))
    assert wanted.count(FPS, FRAMES) == 3
    assert [f.time_s for f in frames] == pytest.approx([0.2, 0.5, 0.8])
    with VideoReader(clips / "clip.mp4") as video:
        assert [f.index for f in video.frames(FrameRange())] == list(range(FRAMES))
        assert video.error is None


def test_reader_seeks_to_the_start_and_gives_the_same_frames(tmp_path: Path) -> None:
    write_clip(tmp_path / "long.mp4", frames=40)  # past mp4v's first keyframe interval
    with VideoReader(tmp_path / "long.mp4") as video:
        decoded = {f.index: f.rgb for f in video.frames(FrameRange())}

    class CountingCapture:  # counts the frames decoded or grabbed through the reader's capture
        def __init__(self, cap: cv2.VideoCapture) -> None:
            self.cap, self.calls = cap, 0

        def read(self) -> tuple[bool, np.ndarray]:
            self.calls += 1
            return self.cap.read()

        def grab(self) -> bool:
            self.calls += 1
            return self.cap.grab()

        def __getattr__(self, name: str) -> object:
            return getattr(self.cap, name)

    for start in (0.1, 1.3, 3.7):
        with VideoReader(tmp_path / "long.mp4") as video:
            video._cap = counting = CountingCapture(video._cap)
            frames = list(video.frames(FrameRange(start=start, stride=2)))
            assert video.error is None
        first = round(start * FPS)
        assert [f.index for f in frames] == list(range(first, 40, 2))
        assert all(np.array_equal(f.rgb, decoded[f.index]) for f in frames)
        assert counting.calls == 40 - first  # nothing before the start went through the reader


def test_reader_turns_phone_videos_upright(clips: Path) -> None:
    with VideoReader(clips / "phone.mp4") as video:
        frame = next(video.frames(FrameRange()))
        assert (video.width, video.height) == (800, 640)  # stored 640x800, displayed turned
        assert frame.rgb.shape == (640, 800, 3)


def test_reader_errors(clips: Path) -> None:
    with VideoReader(clips / "truncated.avi") as video:
        frames = list(video.frames(FrameRange()))
    assert 0 < len(frames) < 8 and "truncated or corrupt" in (video.error or "")
    for name, reason in [("empty.mp4", "empty file"), ("garbage.mp4", "not a video"), ("none.mp4", "no such file")]:
        with pytest.raises(InputError, match=reason):
            VideoReader(clips / name)


# --- the pipeline in this process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lgd_video(tmp_path_factory: pytest.TempPathFactory) -> VideoPipeline:
    opts = Options(method="lgd", out=tmp_path_factory.mktemp("lgd"), device="cpu", render=False, max_people=1)
    return VideoPipeline(ImagePipeline(opts), FrameRange(), mesh_every=5)


@pytest.mark.parametrize("render", [False, True], ids=["no-render", "overlay"])
def test_stages_running_ahead_give_the_results_of_one_after_the_other(clips: Path, lgd_video, render: bool) -> None:
    """People found in a thread of their own while the last frame is fitted (and, with the overlay, fitted in
    another while the last one is drawn): the same JSONL, table and tracks as every stage in turn."""
    lgd_video.opts.render = render
    results = {}
    try:
        for frames_ahead in (0, 4):
            lgd_video.frames_ahead = frames_ahead
            summary = lgd_video.run(InputItem(clips / "clip.mp4", Path(f"ahead{frames_ahead}{render}/clip.mp4")))
            with np.load(summary["outputs"]["npz"]) as npz:
                table = {k: npz[k] for k in npz.files}
            jsonl = Path(summary["outputs"]["jsonl"]).read_text().replace(f"ahead{frames_ahead}", "ahead")
            results[frames_ahead] = summary, jsonl, table
    finally:
        lgd_video.opts.render = False
    (serial, serial_jsonl, serial_table), (ahead_, ahead_jsonl, ahead_table) = results[0], results[4]
    assert serial["frames"] == ahead_["frames"] == FRAMES and serial["tracks"] == ahead_["tracks"]
    assert ahead_jsonl == serial_jsonl  # byte for byte
    assert serial_table.keys() == ahead_table.keys()
    for key, values in serial_table.items():
        np.testing.assert_array_equal(ahead_table[key], values, err_msg=key)
    assert [len(line["people"]) for line in map(json.loads, serial_jsonl.splitlines())] == [1] * FRAMES
    if render:
        overlays = [read_frames(Path(results[k][0]["outputs"]["overlay"])) for k in (0, 4)]
        assert len(overlays[0]) == FRAMES and all(np.array_equal(a, b) for a, b in zip(*overlays))


def test_an_error_finding_people_reaches_the_caller_and_leaves_nothing(
    clips: Path, lgd_video, monkeypatch: pytest.MonkeyPatch
) -> None:
    finder = lgd_video.finder()
    find, calls = finder.find, []

    def failing(frame: Frame) -> list[PersonKeypoints]:
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("the detector broke")
        return find(frame)

    monkeypatch.setattr(finder, "find", failing)
    lgd_video.frames_ahead = 4
    with pytest.raises(RuntimeError, match="the detector broke"):
        lgd_video.run(InputItem(clips / "clip.mp4", Path("broken/clip.mp4")))
    assert files_under(lgd_video.opts.out / "broken") == set()  # no result, no temporary
    assert not [t for t in threading.enumerate() if t.name == "bodyfit-find"]


def test_a_track_has_one_shape_and_the_body_keeps_its_place(clips: Path, lgd_video) -> None:
    """A fit gets its track's shape (the score-weighted mean of the track's fits): pose and pelvis stay as
    fitted, the body is re-posed with that shape."""
    with VideoReader(clips / "clip.mp4") as video:
        rgb = next(video.frames(FrameRange())).rgb
    image = lgd_video.image
    [person] = image.detect(rgb, InputItem(clips / "clip.png", Path("clip.png")))
    fitted = image.fit([person], rgb.shape[1], rgb.shape[0])
    track = TrackFit()
    earlier = fitted.params.betas[0] + 0.5
    track.shape.add(earlier, 3 * person.score)  # as if seen in three earlier frames
    lgd_video.smooth = False  # the shape alone (the rotation filter has its own test)
    try:
        settled = lgd_video.settled(fitted, [track], 0.0)
    finally:
        lgd_video.smooth = True
    expected = (3 * earlier + fitted.params.betas[0]) / 4
    np.testing.assert_allclose(settled.params.betas[0].numpy(), expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(settled.body.joints[:, 0].numpy(), fitted.body.joints[:, 0].numpy(), atol=1e-5)
    assert torch.equal(settled.params.body_pose, fitted.params.body_pose)
    limbs = (settled.body.joints - fitted.body.joints).norm(dim=-1)
    assert 0.001 < limbs.max() < 0.1  # another shape moves the joints a little, not the body


def test_a_tracks_distance_from_the_camera_is_smoothed_along_the_line_of_sight(lgd_video) -> None:
    """Fits that jump back and forth in depth (what frame-by-frame fits get least well, so that feet slide): the
    pelvis's depth is filtered over the track, and the pelvis moves only along its line of sight, so it projects
    where the fit put it."""
    model, track, depths, rays = lgd_video.image.model, TrackFit(), [], []
    betas = torch.zeros(1, model.num_betas)
    for i in range(30):
        pelvis = torch.tensor([[0.3, 0.2, 4.0 + (0.1 if i % 2 else -0.1)]])  # 20 cm jumps at 30 fps
        transl = pelvis - model.root_position(betas)
        fit = BodyParams(torch.zeros(1, 3), torch.zeros(1, 23, 3), betas, transl)
        settled = track_settled(model, fit, [1.0], [track], i / 30, smooth=True)
        out = (model.root_position(settled.betas) + settled.transl)[0]
        depths.append(float(out[2]))
        rays.append((out[:2] / out[2] - pelvis[0, :2] / pelvis[0, 2]).abs().max().item())
    jumps = np.abs(np.diff(depths[10:]))
    assert jumps.max() < 0.05 and abs(np.mean(depths[10:]) - 4.0) < 0.02
    assert max(rays) < 1e-6
    unsmoothed = track_settled(model, fit, [1.0], [TrackFit()], 0.0, smooth=False)
    assert torch.allclose(unsmoothed.transl, fit.transl)


def test_each_frame_starts_from_init_with_the_track_shape(clips: Path, lgd_video) -> None:
    """Not from the last frame's fit (whose errors it would carry on): `--init`, with the shape of the person's
    track once it has one, the pelvis where `--init` put it."""
    with VideoReader(clips / "clip.mp4") as video:
        rgb = next(video.frames(FrameRange())).rgb
    image = lgd_video.image
    [person] = image.detect(rgb, InputItem(clips / "clip.png", Path("clip.png")))
    obs = image.observations([person, person], rgb.shape[1], rgb.shape[0])
    fresh = image.initialise(obs)
    seen, new = TrackFit(), TrackFit()
    seen.shape.add(fresh.betas[0] + 0.5, 1.0)
    start = lgd_video.start(obs, [seen, new])
    np.testing.assert_allclose(start.betas[0].numpy(), (fresh.betas[0] + 0.5).numpy(), atol=1e-6)
    assert torch.equal(start.betas[1], fresh.betas[1]) and torch.equal(start.transl[1], fresh.transl[1])
    assert torch.equal(start.body_pose, fresh.body_pose) and torch.equal(start.global_orient, fresh.global_orient)
    model = image.model
    np.testing.assert_allclose(
        (model.root_position(start.betas) + start.transl).numpy(),
        (model.root_position(fresh.betas) + fresh.transl).numpy(),
        atol=1e-5,
    )


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(clips: Path) -> tuple[subprocess.CompletedProcess, dict[str, int], list[dict]]:
    """The run, the files it wrote with their mtimes, and its JSONL (later runs replace it)."""
    run = bodyfit("clip.mp4", "--out", "D", "--json", "--max-people", "1", cwd=clips)
    assert run.returncode == 0, run.stderr
    return run, mtimes(clips / "D"), read_jsonl(clips / "D" / "clip.jsonl")


def test_video_results_follow_contract(clips: Path, first_run) -> None:
    run, written, lines = first_run
    assert "Traceback" not in run.stderr
    summary = json.loads(run.stdout)  # one line, nothing else on stdout
    assert run.stdout.count("\n") == 1
    assert summary["frames"] == FRAMES and summary["fps"] == FPS and summary["frame_size"] == [640, 800]
    assert summary["tracks"] == [{"track_id": 0, "frames": FRAMES}]
    assert set(written) == {
        "clip.jsonl",
        "clip.npz",
        "clip_overlay.mp4",
        "clip_meshes/f000000_t0.obj",
        "clip_meshes/f000010_t0.obj",
        "clip_animation/clip_t0.bvh",
        "clip_animation/clip_t0.glb",
        "clip_animation/clip_t0_poses.npz",
    }
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert [line["time_s"] for line in lines] == pytest.approx(np.arange(FRAMES) / FPS)
    centres = []
    for line in lines:
        [person] = line["people"]
        assert set(person) >= PERSON_FIELDS
        assert person["track_id"] == 0
        assert len(person["body_pose"]) == 69 and len(person["betas"]) == 10
        assert list(person["keypoints2d"]) == list(KEYPOINT_NAMES)
        assert person["reprojection_error_px"] < 15
        assert person["mesh"] == (f"clip_meshes/f{line['frame']:06d}_t0.obj" if line["frame"] % 10 == 0 else None)
        centres.append((person["bbox"][0] + person["bbox"][2]) / 2)
    # The person moves SHIFT_PX per frame, and so do the detections.
    np.testing.assert_allclose(np.diff(centres), SHIFT_PX, atol=3)
    # The fit stays on the same body: shape and depth barely change between frames.
    betas = np.array([line["people"][0]["betas"] for line in lines])
    depth = np.array([line["people"][0]["translation"][2] for line in lines])
    assert np.abs(np.diff(betas, axis=0)).max() < 0.5 and np.abs(np.diff(depth)).max() < 0.1
    # The track's shape settles (video/shape.py): frame n moves the running mean by about 1/(n+1) of its own
    # difference from it, so the last five frames move it about 3.5 times less than the first three on
    # average (with every frame's fit the same distance off); without settling they would move it alike.
    steps = np.abs(np.diff(betas, axis=0)).max(axis=1)
    assert steps[-5:].max() < 0.015 and steps[-5:].mean() < steps[:3].mean() / 2


def test_npz_is_a_table_of_the_same_values(clips: Path, first_run) -> None:
    lines = first_run[2]
    with np.load(clips / "D" / "clip.npz") as npz:
        assert npz["frame"].tolist() == list(range(FRAMES)) and npz["track_id"].tolist() == [0] * FRAMES
        assert npz["body_pose"].shape == (FRAMES, 69) and npz["joints3d"].shape == (FRAMES, 24, 3)
        assert float(npz["fps"]) == FPS and npz["image_size"].tolist() == [640, 800]
        for key in ("translation", "betas", "body_pose"):
            np.testing.assert_allclose(npz[key][5], lines[5]["people"][0][key], rtol=1e-5, atol=1e-6)


def test_overlay_has_the_input_frame_rate_size_and_frames(clips: Path, first_run) -> None:
    cap = cv2.VideoCapture(str(clips / "D" / "clip_overlay.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == FPS
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    assert len(frames) == FRAMES and frames[0].shape == (800, 640, 3)
    source = cv2.VideoCapture(str(clips / "clip.mp4"))
    original = source.read()[1]
    source.release()
    assert np.abs(frames[0].astype(int) - original).mean() > 3  # a mesh is drawn over the person


@pytest.fixture(scope="module")
def rerun(clips: Path, first_run) -> tuple[subprocess.CompletedProcess, dict[str, int]]:
    run = bodyfit("clip.mp4", "--out", "D", "--json", cwd=clips)
    return run, mtimes(clips / "D")


def test_rerun_skips_finished_clip(first_run, rerun) -> None:
    run, after = rerun
    assert run.returncode == 0, run.stderr
    assert after == first_run[1]
    assert "skip" in run.stderr
    summary = json.loads(run.stdout)
    assert summary["skipped"] and summary["frames"] == FRAMES


def test_overwrite_with_range_stride_and_no_render(clips: Path, first_run, rerun) -> None:
    run = bodyfit(
        "clip.mp4",
        "--out",
        "D",
        "--overwrite",
        "--quiet",
        "--no-render",
        "--no-smooth",
        "--start",
        "0.2",
        "--end",
        "0.9",
        "--stride",
        "3",
        "--mesh-every",
        "2",
        cwd=clips,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and run.stdout == ""
    lines = read_jsonl(clips / "D" / "clip.jsonl")
    assert [line["frame"] for line in lines] == [2, 5, 8]
    # Old meshes are replaced by this run's; the old overlay stays (like `image --no-render`).
    assert {p for p in files_under(clips / "D") if p.startswith("clip_meshes/")} == {
        "clip_meshes/f000002_t0.obj",
        "clip_meshes/f000008_t0.obj",
    }

    # The frames decoded are the ones named: the person is where frame i has them.
    # (Frames are SHIFT_PX apart, so a centre within half of that is this frame's.)
    def centre(line: dict) -> float:
        x0, _, x1, _ = line["people"][0]["bbox"]
        return (x0 + x1) / 2

    first = {line["frame"]: centre(line) for line in first_run[2]}
    for line in lines:
        assert abs(centre(line) - first[line["frame"]]) < SHIFT_PX / 2


def test_bad_clips_fail_alone(clips: Path) -> None:
    run = bodyfit(
        "empty.mp4",
        "garbage.mp4",
        "truncated.avi",
        "phone.mp4",
        "--out",
        "E",
        "--json",
        "--quiet",
        "--end",
        "0.25",
        "--mesh-every",
        "0",
        "--no-render",
        "--export",
        "none",
        cwd=clips,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("bodyfit: error: ") for line in lines), run.stderr
    assert "empty.mp4" in lines[0] and "garbage.mp4" in lines[1]
    printed = [json.loads(line) for line in run.stdout.splitlines()]
    assert [("error" in p) for p in printed] == [True, True, False, False]
    assert files_under(clips / "E") == {"truncated.jsonl", "truncated.npz", "phone.jsonl", "phone.npz"}
    assert printed[3]["frame_size"] == [800, 640]  # upright


def test_truncated_clip_keeps_the_frames_that_decode(clips: Path) -> None:
    run = bodyfit("truncated.avi", "--out", "T", "--json", "--no-render", "--mesh-every", "0", cwd=clips)
    assert run.returncode == 0, run.stderr
    [warning] = [line for line in run.stderr.splitlines() if line.startswith("bodyfit: warning: ")]
    assert "truncated.avi" in warning and "truncated or corrupt" in warning
    summary = json.loads(run.stdout)
    lines = read_jsonl(clips / "T" / "truncated.jsonl")
    assert 0 < len(lines) == summary["frames"] < 8 and "decode_error" in summary
    assert all(len(line["people"]) == 1 for line in lines)


def interruptible() -> None:
    """Run in a child before it starts: give Ctrl-C back its default action. A shell starts background jobs
    (a CI runner's `cmd &`) with SIGINT ignored, which a child inherits, so it would never see the test's
    SIGINT and would run to the end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_clip_stops_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    """SIGINT while frames are being drawn (the next ones fitted and found in two other threads): the run stops
    within seconds, quietly, and leaves no result and no temporary, so the next run redoes the clip."""
    write_clip(tmp_path / "long.mp4", frames=60)
    # With the overlay: three threads to stop.
    command = [
        sys.executable,
        "-m",
        "bodyfit_cli",
        "video",
        "long.mp4",
        "--out",
        "O",
        "--method",
        "lgd",
        "--max-people",
        "1",
    ]
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_MODEL_DIR"}
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )

    def lines_written() -> int:
        return sum(p.read_text().count("\n") for p in (tmp_path / "O").glob(".long.tmp-*.jsonl"))

    deadline = time.monotonic() + 240
    while lines_written() < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]  # mid-clip
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert proc.returncode != 0 and "Traceback" not in stderr, stderr
    assert files_under(tmp_path / "O") == set()
