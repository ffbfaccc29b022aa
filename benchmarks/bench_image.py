"""Time `bodyfit image` stages and SMPLify per person, on this machine's CPU (or GPU with --device cuda).

    python benchmarks/bench_image.py [IMAGE] [--method smplify|lgd|hund] [--device cpu|cuda] [--repeats N]

1. The whole image pipeline after start-up (models loaded once), split into detect / fit / render,
   median over repeats of one image (default: the first image in samples/).
2. The fitting method alone on synthetic 2D keypoints of the default body model, time per person at
   batch 1 and 16 (the initialisation not included), median over repeats.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bodyfit_cli.core.types import Observations
from bodyfit_cli.fitting.init import FACING_CAMERA, mean_init, relaxed_pose
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.options import Options
from bodyfit_cli.pipeline import ImagePipeline


def synthetic_observations(model, batch: int, seed: int = 0) -> Observations:
    """Projected keypoints of random plausible poses, 2 px noise, 1280x960 camera."""
    g = torch.Generator().manual_seed(seed)
    pose = relaxed_pose(batch, torch.device("cpu"), torch.float32) + 0.2 * torch.randn(batch, 23, 3, generator=g)
    orient = torch.tensor(FACING_CAMERA).expand(batch, 3) + torch.tensor([0.0, 1.0, 0.0]) * torch.randn(
        batch, 1, generator=g
    )
    transl = torch.stack(
        [0.3 * torch.randn(batch, generator=g), torch.zeros(batch), 3 + torch.rand(batch, generator=g)], 1
    )
    body = model(axis_angle_to_matrix(orient), axis_angle_to_matrix(pose), torch.randn(batch, 10, generator=g), transl)
    focal = torch.full((batch, 2), math.hypot(1280, 960))
    center = torch.tensor([[640.0, 480.0]]).expand(batch, 2)
    uv = project(body.keypoints, focal, center)
    kp = torch.cat([uv + 2 * torch.randn(uv.shape, generator=g), torch.ones(batch, uv.shape[1], 1)], -1)
    scale = (uv.max(1).values - uv.min(1).values).norm(dim=-1)
    return Observations(kp.detach(), focal, center, scale)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("image", nargs="?", type=Path, default=sorted(Path("samples").glob("*.jpg"))[0])
    ap.add_argument("--method", default="smplify")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        pipe = ImagePipeline(Options(out=Path(out), method=args.method, device=args.device))
        item = InputItem(path=args.image, rel=Path(args.image.name))
        pipe.run(item)  # warm-up: detector graph, GL context, first-call overheads
        runs = [pipe.run(item)["timing_ms"] for _ in range(args.repeats)]
    print(f"machine: {platform.machine()}, device: {pipe.device}, torch threads: {torch.get_num_threads()}")
    print(f"image {args.image}: median over {args.repeats} runs after start-up")
    for stage in ("detect", "fit", "render", "total"):
        print(f"  {stage:7s} {statistics.median(r[stage] for r in runs):8.1f} ms")
    for batch in (1, 16):
        obs = synthetic_observations(pipe.model.cpu(), batch)
        obs = obs.map(lambda t: t.to(pipe.device))
        pipe.model.to(pipe.device)
        init = mean_init(pipe.model, obs)
        pipe.backend.fit(obs, init)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            pipe.backend.fit(obs, init)
            times.append((time.perf_counter() - start) * 1000 / batch)
        print(f"{args.method} alone, batch {batch:2d}: {statistics.median(times):7.1f} ms per person")


if __name__ == "__main__":
    main()
