"""Frames per second of `bodyfit video` end to end on a 720p (or `--size`) clip, with and without the
overlay, and the process's peak memory.

    python benchmarks/bench_video.py [CLIP] [--method smplify|lgd|hund] [--frames N] [--device cpu|cuda]
                                     [--frames-ahead K] [--max-people N] [--size WxH] [--no-overlay]

CLIP (default: ../shared/media/sports2d_demo.mp4, not part of the repository) is resized to
`--size` (default 1280x720) into a temporary file first. Models load once, before timing; each mode then runs the
same frames through `VideoPipeline.run`, as the CLI does. Stage times are per frame, each in its own
thread (decode and detect run ahead of the others), so they add up to more than the total. On a shared
machine numbers taken while other work runs are slower: each mode prints the CPU cores it kept busy and
those other processes did meanwhile (Linux), and the run starts with the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import cv2
import torch

from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.io.video import FrameRange
from bodyfit_cli.options import Options
from bodyfit_cli.pipeline import ImagePipeline
from bodyfit_cli.video.pipeline import FRAMES_AHEAD, VideoPipeline

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "sports2d_demo.mp4"


def make_clip(src: Path, dst: Path, frames: int, size: tuple[int, int]) -> float:
    """The first `frames` frames of `src` resized to `size` (width, height; mp4v); returns the frame rate."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(frames):
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    return fps


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds all processes have used, this process's), from /proc/stat and getrusage; Linux."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    ticks = os.sysconf("SC_CLK_TCK")
    own = resource.getrusage(resource.RUSAGE_SELF)
    return (user + nice + system + irq + softirq + steal) / ticks, own.ru_utime + own.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def frame_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080)."""
    width, height = (int(x) for x in text.lower().split("x"))
    return width, height


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip", nargs="?", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--method", default="smplify")
    ap.add_argument("--frames", type=int, default=60, help="Frames of the clip to process.")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-people", type=int, default=1)
    ap.add_argument(
        "--frames-ahead",
        type=int,
        default=FRAMES_AHEAD,
        help="Frames found ahead of fitting in a second thread (0: one stage after the other).",
    )
    ap.add_argument("--size", type=frame_size, default=(1280, 720), help="Clip size WxH, e.g. 1920x1080.")
    ap.add_argument("--no-overlay", action="store_true", help="Only the --no-render mode.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        width, height = args.size
        clip = Path(tmp) / f"clip{height}.mp4"
        make_clip(args.clip, clip, args.frames, args.size)
        item = InputItem(clip, Path(clip.name))
        print(f"machine: {platform.machine()}, torch threads: {torch.get_num_threads()}, method: {args.method}")
        print(
            f"clip: {args.clip.name} resized to {width}x{height}, {args.frames} frames; peak RSS at start "
            f"{peak_rss_mb():.0f} MB; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        for render in (False,) if args.no_overlay else (False, True):
            opts = Options(
                method=args.method,
                out=Path(tmp) / "out",
                device=args.device,
                render=render,
                max_people=args.max_people,
            )
            pipeline = ImagePipeline(opts)
            video = VideoPipeline(pipeline, FrameRange(end=0.1), mesh_every=0, frames_ahead=args.frames_ahead)
            video.run(item)  # warm-up: detector graph, GL context, first-call overheads
            video.wanted = FrameRange()
            all_cpu, own_cpu = cpu_seconds()
            start = time.perf_counter()
            summary = video.run(item)
            seconds = time.perf_counter() - start
            all_after, own_after = cpu_seconds()
            own = (own_after - own_cpu) / seconds
            others = max(0.0, (all_after - all_cpu) - (own_after - own_cpu)) / seconds
            per_frame = {k: v / summary["frames"] for k, v in summary["timing_ms"].items()}
            stages = ", ".join(f"{k} {v:.0f}" for k, v in per_frame.items() if k != "total")
            people = sum(t["frames"] for t in summary["tracks"])
            print(
                f"{'with overlay' if render else '--no-render '}: {summary['frames'] / seconds:5.2f} frames/s "
                f"({stages} ms/frame; {people} people fitted); peak RSS {peak_rss_mb():.0f} MB; "
                f"cores used: {own:.2f} by the run, {others:.2f} by other processes, of {os.cpu_count()}"
            )


if __name__ == "__main__":
    main()
