"""The path of one clip, frame by frame: decode -> find people -> track -> smooth -> fit, warm-started
from the same person's last frame -> export (JSON Lines, table rows, meshes) -> render.

Everything streams: one frame in memory, JSONL lines and table rows written as they come. Every
output is written under a temporary name and renamed only when the clip is done, the `.jsonl`
last: its presence marks the clip as finished, so an interrupted run leaves nothing that looks done.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.detection.types import PersonKeypoints
from bodyfit_cli.fitting.init import place
from bodyfit_cli.fitting.types import BodyParams, Observations
from bodyfit_cli.io.atomic import atomic_dir, atomic_path
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.io.table import RowTable
from bodyfit_cli.io.video import Frame, FrameRange, VideoReader, VideoWriter
from bodyfit_cli.pipeline import (
    NAME_ARRAYS,
    Fitted,
    ImagePipeline,
    Options,
    empty_arrays,
    person_arrays,
    person_records,
)
from bodyfit_cli.video.people import VideoPeopleFinder
from bodyfit_cli.video.smoothing import OneEuroFilter
from bodyfit_cli.video.tracking import Tracker

# One-Euro settings for 2D keypoints in units of the image diagonal: at rest a 0.5 Hz cutoff divides
# detector jitter by ~3; moving at 1 diagonal per second the cutoff is 10.5 Hz and the lag under half
# a frame at 30 fps (tests/test_video.py measures both).
KEYPOINT_MIN_CUTOFF_HZ = 0.5
KEYPOINT_BETA = 10.0

ProgressFn = Callable[[int, int], None]  # (frames done, frames in total)


@dataclass
class Track:
    """What a person's next frame starts from: their last fit and their keypoint filter."""

    params: BodyParams | None = None
    keypoint_filter: OneEuroFilter = field(
        default_factory=lambda: OneEuroFilter(KEYPOINT_MIN_CUTOFF_HZ, KEYPOINT_BETA)
    )


@dataclass
class Clip:
    """The state of the clip being processed."""

    width: int
    height: int
    tracker: Tracker = field(default_factory=Tracker)
    tracks: dict[int, Track] = field(default_factory=dict)
    frames_per_track: Counter = field(default_factory=Counter)


def clip_result_path(opts: Options, item: InputItem) -> Path:
    """`<out>/<folder under its argument>/<stem>.jsonl`, renamed into place last: it marks the clip as done."""
    return opts.out / item.rel.parent / f"{item.path.stem}.jsonl"


def clip_outputs(opts: Options, mesh_every: int, item: InputItem) -> dict[str, str | None]:
    """Where a clip's results go (None: not asked for); no models needed, so a driver can read finished clips."""
    final = clip_result_path(opts, item)
    stem = item.path.stem
    return {
        "jsonl": str(final),
        "npz": str(final.with_suffix(".npz")),
        "overlay": str(final.with_name(f"{stem}_overlay.mp4")) if opts.render else None,
        "meshes": str(final.with_name(f"{stem}_meshes")) if mesh_every else None,
    }


class VideoPipeline:
    """Fits clip after clip with the models of an `ImagePipeline` (loaded once per process)."""

    def __init__(self, image: ImagePipeline, wanted: FrameRange, smooth: bool = True, mesh_every: int = 10) -> None:
        self.image = image
        self.opts = image.opts
        self.wanted = wanted
        self.smooth = smooth
        self.mesh_every = mesh_every
        self._finder: VideoPeopleFinder | None = None

    def result_path(self, item: InputItem) -> Path:
        return clip_result_path(self.opts, item)

    def outputs(self, item: InputItem) -> dict[str, str | None]:
        return clip_outputs(self.opts, self.mesh_every, item)

    def finder(self) -> VideoPeopleFinder:
        if self._finder is None:
            from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector

            detector = MediaPipeDetector(self.opts.max_people, pose_model=self.opts.pose_model, video=True)
            self._finder = VideoPeopleFinder(detector, self.opts.max_people)
        return self._finder

    def run(self, item: InputItem, progress: ProgressFn | None = None) -> dict:
        """Fit one clip and write its results; returns the summary `--json` prints."""
        t0 = time.perf_counter()
        timing = Counter[str]()
        paths = self.outputs(item)
        with VideoReader(item.path) as video, ExitStack() as stack:
            total = self.wanted.count(video.fps, video.frame_count)
            clip = Clip(video.width, video.height)
            finder = self.finder()
            finder.reset()
            # Entered first, renamed last: the .jsonl marks the clip as done.
            jsonl = stack.enter_context(open(stack.enter_context(atomic_path(Path(paths["jsonl"]))), "w"))
            npz = stack.enter_context(atomic_path(Path(paths["npz"])))
            meshes = stack.enter_context(atomic_dir(Path(paths["meshes"]))) if paths["meshes"] else None
            writer = None
            if paths["overlay"]:
                tmp = stack.enter_context(atomic_path(Path(paths["overlay"])))
                writer = stack.enter_context(VideoWriter(tmp, video.fps, video.width, video.height))
            table = RowTable(self.result_path(item).parent)  # made by atomic_path above
            stack.callback(table.close)
            n = 0
            for frame in video.frames(self.wanted):
                ids, fitted = self.fit_frame(frame, clip, finder, timing)
                t1 = time.perf_counter()
                mesh_dir = meshes if meshes is not None and n % self.mesh_every == 0 else None
                line = self.export_frame(frame, ids, fitted, table, mesh_dir, Path(paths["meshes"] or "").name)
                jsonl.write(json.dumps(line, allow_nan=False) + "\n")
                jsonl.flush()
                timing["export"] += time.perf_counter() - t1
                if writer is not None:
                    t2 = time.perf_counter()
                    writer.write(self.image.draw(frame.rgb, fitted, side_view=False, colors=ids))
                    timing["render"] += time.perf_counter() - t2
                n += 1
                if progress is not None:
                    progress(n, total)
            table.write_npz(npz, self.column_kinds(), fps=np.float64(video.fps),
                            image_size=np.array([video.width, video.height]), **NAME_ARRAYS)  # fmt: skip
            error = video.error
        seconds = time.perf_counter() - t0
        timing_ms = {k: round(timing[k] * 1000, 1) for k in ("detect", "fit", "export", "render")}
        summary = {
            "input": str(item.path), "frames": n, "fps": video.fps, "frame_size": [video.width, video.height],
            "method": self.opts.method, "body_model": self.opts.body_model,
            "tracks": [{"track_id": k, "frames": v} for k, v in sorted(clip.frames_per_track.items())],
            "outputs": paths, "timing_ms": {**timing_ms, "total": round(seconds * 1000, 1)},
            "frames_per_s": round(n / seconds, 2) if seconds > 0 else None,
        }  # fmt: skip
        if error:
            summary["decode_error"] = error
        return summary

    def fit_frame(
        self, frame: Frame, clip: Clip, finder: VideoPeopleFinder, timing: Counter[str]
    ) -> tuple[list[int], Fitted | None]:
        """Find, track, smooth and fit the people of one frame; people are ordered by track id."""
        t0 = time.perf_counter()
        found = finder.find(frame.rgb)
        found_ids = clip.tracker.update([p.bbox for p in found])
        order = sorted(range(len(found)), key=found_ids.__getitem__)
        people, ids = [found[i] for i in order], [found_ids[i] for i in order]
        live = {t.track_id for t in clip.tracker.tracks}
        clip.tracks = {k: v for k, v in clip.tracks.items() if k in live}
        for tid in ids:
            clip.tracks.setdefault(tid, Track())
            clip.frames_per_track[tid] += 1
        if self.smooth:
            diag = math.hypot(clip.width, clip.height)
            people = [self.smoothed(p, clip.tracks[tid], frame.time_s, diag) for p, tid in zip(people, ids)]
        t1 = time.perf_counter()
        timing["detect"] += t1 - t0
        fitted = None
        if people:
            fitted = self.image.fit(people, clip.width, clip.height, lambda obs: self.warm_start(obs, ids, clip))
            for i, tid in enumerate(ids):
                clip.tracks[tid].params = fitted.params.select(torch.tensor([i]))
        timing["fit"] += time.perf_counter() - t1
        return ids, fitted

    @staticmethod
    def smoothed(person: PersonKeypoints, track: Track, time_s: float, diag: float) -> PersonKeypoints:
        """The person with One-Euro-filtered keypoint positions (confidences as detected)."""
        kp = person.keypoints.copy()
        valid = (kp[:, 2] > 0)[:, None]
        kp[:, :2] = track.keypoint_filter(kp[:, :2] / diag, time_s, valid) * diag
        return PersonKeypoints(kp, person.bbox, person.score, person.mask)

    def warm_start(self, obs: Observations, ids: list[int], clip: Clip) -> BodyParams:
        """`--init` for people new in this frame; the others start from their last frame's fit."""
        last = [clip.tracks[tid].params for tid in ids]
        new = [i for i, params in enumerate(last) if params is None]
        device = self.image.device
        if new:  # only people seen for the first time need `--init` (a regressor pass, say)
            fresh = self.image.initialise(obs.map(lambda t: t[new])).detach()
            for k, i in enumerate(new):
                last[i] = fresh.select(torch.tensor([k], device=device))
        parts = [params.map(lambda t: t.to(device)) for params in last if params is not None]
        init = BodyParams(*(torch.cat([getattr(q, f) for q in parts]) for f in ("global_orient", "body_pose", "betas", "transl")))
        # Pose, shape and depth carry over; the place in the image is this frame's (people move between frames,
        # and learned backends correct small offsets, not large ones).
        return place(self.image.model, init, obs, keep_depth=True)

    def export_frame(
        self, frame: Frame, ids: list[int], fitted: Fitted | None, table: RowTable, mesh_dir: Path | None, mesh_folder: str
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
                frame=np.int64(frame.index), time_s=np.float64(frame.time_s), track_id=np.int64(tid),
                reprojection_error_px=np.float32(record["reprojection_error_px"]), **{k: v[i] for k, v in rows.items()},
            )  # fmt: skip
        people = [{"track_id": tid, **record} for tid, record in zip(ids, records)]
        return {"frame": frame.index, "time_s": round(frame.time_s, 6), "people": people}

    def column_kinds(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Row shape and dtype of every table column, for a clip where nobody was found."""
        kinds = {k: (v.shape[1:], v.dtype) for k, v in empty_arrays(self.image.model.num_betas).items()
                 if k not in NAME_ARRAYS}  # fmt: skip
        ids = {"frame": np.dtype(np.int64), "time_s": np.dtype(np.float64), "track_id": np.dtype(np.int64),
               "reprojection_error_px": np.dtype(np.float32)}  # fmt: skip
        return {**{k: ((), d) for k, d in ids.items()}, **kinds}


def read_summary(item: InputItem, outputs: dict[str, str | None]) -> dict:
    """The `--json` summary of a clip finished earlier, read back from its .jsonl (line by line)."""
    frames = 0
    per_track: Counter[int] = Counter()
    with open(outputs["jsonl"] or "", encoding="utf-8") as f:
        for line in f:
            frames += 1
            per_track.update(p["track_id"] for p in json.loads(line)["people"])
    present = {k: v if v is not None and Path(v).exists() else None for k, v in outputs.items()}
    return {
        "input": str(item.path), "frames": frames,
        "tracks": [{"track_id": k, "frames": v} for k, v in sorted(per_track.items())],
        "outputs": present, "skipped": True,
    }  # fmt: skip
