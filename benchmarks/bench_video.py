"""Frames per second of `bodyfit video` end to end on a 720p clip, with and without the overlay,
and the process's peak memory.

    python benchmarks/bench_video.py [CLIP] [--method smplify|lgd|hund] [--frames N] [--device cpu|cuda]

CLIP (default: ../shared/media/sports2d_demo.mp4, not part of the repository) is resized to
1280x720 into a temporary file first. Models load once, before timing; each mode then runs the
same frames through `VideoPipeline.run`, as the CLI does.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

import cv2
import torch

from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.io.video import FrameRange
from bodyfit_cli.pipeline import ImagePipeline, Options
from bodyfit_cli.video.pipeline import VideoPipeline

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "sports2d_demo.mp4"


def make_720p(src: Path, dst: Path, frames: int) -> float:
    """The first `frames` frames of `src` resized to 1280x720 (mp4v); returns the frame rate."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (1280, 720))
    for _ in range(frames):
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    return fps


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip", nargs="?", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--method", default="smplify")
    ap.add_argument("--frames", type=int, default=60, help="Frames of the clip to process.")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-people", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip720.mp4"
        make_720p(args.clip, clip, args.frames)
        item = InputItem(clip, Path(clip.name))
        print(f"machine: {platform.machine()}, torch threads: {torch.get_num_threads()}, method: {args.method}")
        print(f"clip: {args.clip.name} resized to 1280x720, {args.frames} frames; peak RSS at start {peak_rss_mb():.0f} MB")
        for render in (False, True):
            opts = Options(method=args.method, out=Path(tmp) / "out", device=args.device, render=render,
                           max_people=args.max_people, overwrite=True)  # fmt: skip
            video = VideoPipeline(ImagePipeline(opts), FrameRange(end=0.1), mesh_every=0)
            video.run(item)  # warm-up: detector graph, GL context, first-call overheads
            video.wanted = FrameRange()
            start = time.perf_counter()
            summary = video.run(item)
            seconds = time.perf_counter() - start
            per_frame = {k: v / summary["frames"] for k, v in summary["timing_ms"].items()}
            stages = ", ".join(f"{k} {v:.0f}" for k, v in per_frame.items() if k != "total")
            print(f"{'with overlay' if render else '--no-render '}: {summary['frames'] / seconds:5.2f} frames/s "
                  f"({stages} ms/frame); peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
