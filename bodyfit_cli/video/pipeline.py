"""The path of one clip, frame by frame: decode -> find people -> track -> fit, each person with their
track's shape (video/shape.py) -> smooth their rotations over time (video/smoothing.py) -> export (JSON
Lines, table rows, meshes) -> render; at the end, each track's animation (export/).

The first three stages run in a thread of their own a few frames ahead of the others (video/stages.py),
so a frame's people are found while the last frame's are fitted; with the overlay, fitting too runs
ahead of exporting and rendering. The results are those of running the stages one after the other.

Everything streams: a few frames in memory, JSONL lines and table rows written as they come; only each
track's parameters are kept until the end, for its animation files (about a hundred numbers a frame). Every
output is written under a temporary name and renamed only when the clip is done, the `.jsonl` last: its
presence marks the clip as finished, so an interrupted run leaves nothing that looks done.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.body.model import BodyModel, BodyOutput
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.detection.types import PersonKeypoints
from bodyfit_cli.export import write_animations
from bodyfit_cli.export.motion import MotionRecorder
from bodyfit_cli.io.atomic import atomic_dir, atomic_path
from bodyfit_cli.io.ctrl_c import stop_if_ctrl_c
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.io.table import RowTable
from bodyfit_cli.io.video import Frame, FrameRange, VideoReader, VideoWriter
from bodyfit_cli.options import (  # noqa: F401 (read_summary also imported from here)
    EXPORT_FORMATS,
    clip_outputs,
    clip_result_path,
    read_summary,
)
from bodyfit_cli.pipeline import ImagePipeline
from bodyfit_cli.results import NAME_ARRAYS, Fitted, empty_arrays, person_arrays, person_records
from bodyfit_cli.video.keypoint_frames import KeypointFrames, clip_keypoint_files
from bodyfit_cli.video.people import PeopleFinder, VideoPeopleFinder
from bodyfit_cli.video.shape import ShapeAverage, with_betas
from bodyfit_cli.video.smoothing import DEPTH_BETA, DEPTH_MIN_CUTOFF_HZ, OneEuroFilter, RotationFilter
from bodyfit_cli.video.stages import ahead
from bodyfit_cli.video.tracking import Tracker

# Frames whose people are found ahead of the one being fitted: enough to ride out a slow frame (a full
# search for new people), few enough that their images take little memory.
FRAMES_AHEAD = 4

ProgressFn = Callable[[int, int], None]  # (frames done, frames in total)


@dataclass
class Found:
    """A frame with its people found and tracked: what fitting starts from."""

    frame: Frame
    people: list[PersonKeypoints]  # ordered by track id
    ids: list[int]  # their track ids
    live: frozenset[int]  # the tracks not ended by this frame
    seconds: dict[str, float]  # time spent on it, per stage ("decode", "detect", then "fit")


@dataclass
class TrackFit:
    """What a person's fits share across frames: the track's shape, and the filters of their rotations and of
    their pelvis's distance from the camera."""

    shape: ShapeAverage = field(default_factory=ShapeAverage)
    rotations: RotationFilter = field(default_factory=RotationFilter)
    depth: OneEuroFilter = field(default_factory=lambda: OneEuroFilter(DEPTH_MIN_CUTOFF_HZ, DEPTH_BETA))


@dataclass
class Clip:
    """The state of the clip being processed: the finding stage's (tracker, frames per track) and the fitting
    stage's (each track's shape and filter), each used by one thread."""

    width: int
    height: int
    tracker: Tracker = field(default_factory=Tracker)
    frames_per_track: Counter = field(default_factory=Counter)
    fits: dict[int, TrackFit] = field(default_factory=dict)


def track_start(model: BodyModel, init: BodyParams, fits: list[TrackFit]) -> BodyParams:
    """The start of each person's fit: `init` (`--init`), with their track's shape once they have one, the pelvis
    where `init` put it.

    Not the last frame's fit: started from it, every backend carried that fit's errors on and was less accurate,
    by 5-9 mm PA-MPJPE on held-out motion capture (`benchmarks/bench_sequence.py`)."""
    known = [i for i, fit in enumerate(fits) if fit.shape.betas is not None]
    if not known:
        return init
    betas = init.betas.clone()
    betas[known] = torch.stack([fits[i].shape.betas for i in known]).to(betas)
    return with_betas(model, init, betas)


def track_settled(
    model: BodyModel, params: BodyParams, scores: list[float], fits: list[TrackFit], time_s: float, smooth: bool
) -> BodyParams:
    """Each person's fit with their track's shape, this fit counted in with its detection score
    (video/shape.py), and with `smooth` their rotations and their pelvis's distance from the camera filtered over
    the track's frames (video/smoothing.py); the pose as fitted (or filtered), the pelvis where the fit put it
    (or moved along its line of sight, so that it projects where it did)."""
    betas = torch.stack([fit.shape.add(b, s) for fit, b, s in zip(fits, params.betas, scores)]).to(params.betas)
    orient, body_pose = params.global_orient, params.body_pose
    if not smooth:
        return with_betas(model, params, betas)
    rotations = torch.cat([orient[:, None], body_pose], 1)
    rotations = torch.stack([fit.rotations(r, time_s) for fit, r in zip(fits, rotations)])
    settled = with_betas(model, BodyParams(rotations[:, 0], rotations[:, 1:], params.betas, params.transl), betas)
    pelvis = (model.root_position(betas) + settled.transl).detach().double()
    depth = pelvis[:, 2].numpy()
    filtered = np.array([fit.depth(z, time_s) for fit, z in zip(fits, depth)], dtype=np.float64).reshape(-1)
    scale = np.divide(filtered, depth, out=np.ones_like(depth), where=depth > 0)  # along the line of sight
    return replace(
        settled, transl=settled.transl + (pelvis * torch.from_numpy(scale - 1.0)[:, None]).to(settled.transl)
    )


class VideoPipeline:
    """Fits clip after clip with the models of an `ImagePipeline` (loaded once per process)."""

    def __init__(
        self,
        image: ImagePipeline,
        wanted: FrameRange,
        smooth: bool = True,
        mesh_every: int = 10,
        exports: tuple[str, ...] = EXPORT_FORMATS,
        frames_ahead: int = FRAMES_AHEAD,
        keypoints: Path | None = None,
    ) -> None:
        """exports: the per-track animation files (`--export`); frames_ahead: how far finding people may run
        ahead of fitting them (0: one after the other, in this thread); keypoints: the folder of the clips'
        per-frame keypoint files (`bodyfit video --keypoints`), read instead of detecting."""
        self.image = image
        self.opts = image.opts
        self.wanted = wanted
        self.smooth = smooth
        self.mesh_every = mesh_every
        self.exports = exports
        self.frames_ahead = frames_ahead
        self.keypoints = keypoints
        self._finder: VideoPeopleFinder | None = None

    def result_path(self, item: InputItem) -> Path:
        return clip_result_path(self.opts, item)

    def outputs(self, item: InputItem) -> dict[str, str | None]:
        return clip_outputs(self.opts, self.mesh_every, self.exports, item)

    def finder(self) -> VideoPeopleFinder:
        """The MediaPipe finder, loaded once for every clip."""
        if self._finder is None:
            from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector

            detector = MediaPipeDetector(self.opts.max_people, pose_model=self.opts.pose_model, video=True)
            self._finder = VideoPeopleFinder(detector, self.opts.max_people)
        return self._finder

    def clip_finder(self, item: InputItem, video: VideoReader) -> PeopleFinder:
        """Where the clip's people come from: its keypoint files with `keypoints` (MediaPipe is never loaded),
        else MediaPipe, started afresh."""
        if self.keypoints is not None:
            files = clip_keypoint_files(self.keypoints, item.path)
            return KeypointFrames(files, (video.width, video.height), self.opts.max_people)
        finder = self.finder()
        finder.reset()
        return finder

    def run(self, item: InputItem, progress: ProgressFn | None = None) -> dict:
        """Fit one clip and write its results; returns the summary `--json` prints."""
        t0 = time.perf_counter()
        timing = Counter[str]()
        paths = self.outputs(item)
        with VideoReader(item.path) as video, ExitStack() as stack:
            total = self.wanted.count(video.fps, video.frame_count)
            clip = Clip(video.width, video.height)
            finder = self.clip_finder(item, video)
            # Entered first, renamed last: the .jsonl marks the clip as done.
            jsonl = stack.enter_context(open(stack.enter_context(atomic_path(Path(paths["jsonl"]))), "w"))
            npz = stack.enter_context(atomic_path(Path(paths["npz"])))
            meshes = stack.enter_context(atomic_dir(Path(paths["meshes"]))) if paths["meshes"] else None
            animation = stack.enter_context(atomic_dir(Path(paths["animation"]))) if paths["animation"] else None
            recorder = MotionRecorder(self.wanted.stride, video.fps)
            writer = None
            if paths["overlay"]:
                tmp = stack.enter_context(atomic_path(Path(paths["overlay"])))
                writer = stack.enter_context(VideoWriter(tmp, video.fps, video.width, video.height))
            table = RowTable(self.result_path(item).parent)  # made by atomic_path above
            stack.callback(table.close)
            # Threads stopped (and joined) first on the way out, before the outputs are dropped or renamed. Rendering
            # stays in this thread, with the GL context; without it, fitting does too (exporting takes little).
            finding = ahead(self.find_people(video, clip, finder), self.frames_ahead, "bodyfit-find")
            found_frames = stack.enter_context(finding)
            fitting = ahead(self.fit_frames(found_frames, clip), self.frames_ahead if writer else 0, "bodyfit-fit")
            n = 0
            for found, fitted in stack.enter_context(fitting):
                stop_if_ctrl_c()
                timing.update(found.seconds)
                frame, ids = found.frame, found.ids
                t1 = time.perf_counter()
                mesh_dir = meshes if meshes is not None and n % self.mesh_every == 0 else None
                line = self.export_frame(frame, ids, fitted, table, mesh_dir, Path(paths["meshes"] or "").name)
                jsonl.write(json.dumps(line, allow_nan=False) + "\n")
                jsonl.flush()
                if animation is not None and fitted is not None:
                    recorder.add(frame.index, frame.time_s, ids, fitted)
                t2 = time.perf_counter()
                timing["export"] += t2 - t1
                if writer is not None:
                    writer.write(self.image.draw(frame.rgb, fitted, side_view=False, colors=ids))
                    timing["render"] += time.perf_counter() - t2
                n += 1
                if progress is not None:
                    progress(n, total)
            table.write_npz(
                npz,
                self.column_kinds(),
                fps=np.float64(video.fps),
                image_size=np.array([video.width, video.height]),
                **NAME_ARRAYS,
            )
            if animation is not None:
                t1 = time.perf_counter()
                write_animations(animation, item.path.stem, recorder, self.image.model, self.exports)
                timing["export"] += time.perf_counter() - t1
            error = video.error
        seconds = time.perf_counter() - t0
        # Per stage, the time its thread spent on it: the threads' stages overlap.
        timing_ms = {k: round(timing[k] * 1000, 1) for k in ("decode", "detect", "fit", "export", "render")}
        summary = {
            "input": str(item.path),
            "frames": n,
            "fps": video.fps,
            "frame_size": [video.width, video.height],
            "method": self.opts.method,
            "body_model": self.opts.body_model,
            "tracks": [{"track_id": k, "frames": v} for k, v in sorted(clip.frames_per_track.items())],
            "outputs": paths,
            "timing_ms": {**timing_ms, "total": round(seconds * 1000, 1)},
            "frames_per_s": round(n / seconds, 2) if seconds > 0 else None,
        }
        if error:
            summary["decode_error"] = error
        return summary

    def find_people(self, video: VideoReader, clip: Clip, finder: PeopleFinder) -> Iterator[Found]:
        """The wanted frames, decoded, with their people found and tracked (people ordered by track id)."""
        frames = video.frames(self.wanted)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            t1 = time.perf_counter()
            found = finder.find(frame)
            found_ids = clip.tracker.update([p.bbox for p in found])
            order = sorted(range(len(found)), key=found_ids.__getitem__)
            people, ids = [found[i] for i in order], [found_ids[i] for i in order]
            live = frozenset(t.track_id for t in clip.tracker.tracks)
            clip.frames_per_track.update(ids)
            yield Found(frame, people, ids, live, {"decode": t1 - t0, "detect": time.perf_counter() - t1})

    def fit_frames(self, found_frames: Iterator[Found], clip: Clip) -> Iterator[tuple[Found, Fitted | None]]:
        """Each frame with its people fitted (None: nobody), the time it took counted in `found.seconds`."""
        for found in found_frames:
            t0 = time.perf_counter()
            fitted = self.fit_people(found, clip)
            found.seconds["fit"] = time.perf_counter() - t0
            yield found, fitted

    def fit_people(self, found: Found, clip: Clip) -> Fitted | None:
        """Fit a frame's people, each on their own from `--init` with their track's shape, then give them their
        track's shape and (with smoothing) their rotations filtered over the track's frames."""
        clip.fits = {k: v for k, v in clip.fits.items() if k in found.live}
        if not found.people:
            return None
        fits = [clip.fits.setdefault(tid, TrackFit()) for tid in found.ids]
        fitted = self.image.fit(found.people, clip.width, clip.height, lambda obs: self.start(obs, fits))
        return self.settled(fitted, fits, found.frame.time_s)

    def start(self, obs: Observations, fits: list[TrackFit]) -> BodyParams:
        """`--init`, with the track's shape for people seen before (`track_start`)."""
        return track_start(self.image.model, self.image.initialise(obs).detach(), fits)

    def settled(self, fitted: Fitted, fits: list[TrackFit], time_s: float) -> Fitted:
        """`fitted` with its track's shape and (with smoothing) filtered rotations (`track_settled`), re-posed."""
        model, device = self.image.model, self.image.device
        scores = [person.score for person in fitted.people]  # how well each frame saw them: their weight
        with torch.no_grad():
            params = fitted.params.map(lambda t: t.to(device))
            params = track_settled(model, params, scores, fits, time_s, self.smooth)
            body = params.pose(model, vertices=True)
        vertices = body.vertices.cpu() if body.vertices is not None else None
        return Fitted(
            params.map(lambda t: t.cpu()),
            BodyOutput(body.joints.cpu(), body.keypoints.cpu(), vertices),
            fitted.obs,
            fitted.people,
        )

    def export_frame(
        self,
        frame: Frame,
        ids: list[int],
        fitted: Fitted | None,
        table: RowTable,
        mesh_dir: Path | None,
        mesh_folder: str,
    ) -> dict:
        """The frame's JSONL line; its people's rows go to `table`, and their meshes to `mesh_dir` when given
        (named in the line as `mesh_folder/...`, where `mesh_dir` will be renamed to)."""
        if fitted is None:
            return {"frame": frame.index, "time_s": round(frame.time_s, 6), "people": []}
        names: list[str | None] = [None] * len(ids)
        if mesh_dir is not None:
            for i, tid in enumerate(ids):
                name = f"f{frame.index:06d}_t{tid}.{self.opts.mesh_format}"
                self.image.write_mesh(mesh_dir / name, fitted, i)
                names[i] = f"{mesh_folder}/{name}"
        records = person_records(fitted, self.image.model, names)
        rows = person_arrays(fitted)
        for i, (tid, record) in enumerate(zip(ids, records)):
            table.append(
                frame=np.int64(frame.index),
                time_s=np.float64(frame.time_s),
                track_id=np.int64(tid),
                reprojection_error_px=np.float32(record["reprojection_error_px"]),
                **{k: v[i] for k, v in rows.items()},
            )
        people = [{"track_id": tid, **record} for tid, record in zip(ids, records)]
        return {"frame": frame.index, "time_s": round(frame.time_s, 6), "people": people}

    def column_kinds(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Row shape and dtype of every table column, for a clip where nobody was found."""
        kinds = {
            k: (v.shape[1:], v.dtype)
            for k, v in empty_arrays(self.image.model.num_betas).items()
            if k not in NAME_ARRAYS
        }
        ids = {
            "frame": np.dtype(np.int64),
            "time_s": np.dtype(np.float64),
            "track_id": np.dtype(np.int64),
            "reprojection_error_px": np.dtype(np.float32),
        }
        return {**{k: ((), d) for k, d in ids.items()}, **kinds}
