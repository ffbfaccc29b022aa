"""Accuracy after every step of LGD and every stage of neural descent, and what a fit of each costs.

    python benchmarks/bench_steps.py [--mocap FILE] [--n 500] [--seed 0] [--init regressor,spin,mean] [--timed 100]

On the views `bodyfit bench` makes (held-out CMU 02_01 by default, same seed): PA-MPJPE (mm, limb keypoints)
of the start and after each step or stage, all views in one batch. Then the median time of one fit at
batch 1 (the start not included) over the first --timed views, the methods taking turns so that a drift of
the machine's speed slows both alike. Shows where each method's accuracy comes from, and what a step costs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.core.types import Observations
from bodyfit_cli.evaluation.benchmark import make_views, mocap_poses, score
from bodyfit_cli.fitting.registry import Backend, make_backend, make_init
from bodyfit_cli.learned.hund import fit as hund
from bodyfit_cli.learned.lgd import fit as lgd
from bodyfit_cli.networks import state

METHODS = ("lgd", "hund")


def states_per_step(
    name: str, backend: Backend, model: BodyModel, obs: Observations, x0: torch.Tensor
) -> list[torch.Tensor]:
    if name == "lgd":
        return lgd.descend(backend.net, model, obs, x0)
    return hund.descend(backend.net, model, backend.silhouettes, obs, x0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mocap", type=Path, default=Path("../shared/mocap/cmu/02/02_01.amc"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default="regressor,spin,mean")
    ap.add_argument("--timed", type=int, default=100, help="fits timed per method; 0: accuracy only")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = BodyModel(load_body_model("default"))
    poses, _ = mocap_poses([args.mocap], model)
    obs, truth = make_views(poses, args.n, args.seed, torch.device("cpu"))
    box = person_box(obs)
    backends = {name: make_backend(name, model) for name in METHODS}

    def pa_mpjpe(x: torch.Tensor) -> float:
        keypoints = state.pose(model, state.decode(x, box)).keypoints
        return float(score(keypoints, truth, obs)["pa_mpjpe_mm"].mean())

    print(f"machine: {platform.machine()}, CPU, 1 torch thread; {args.mocap}, n {args.n}, seed {args.seed}")
    print("PA-MPJPE (mm) of the start, then after each step (lgd) or stage (hund):")
    with torch.inference_mode():
        for init_name in args.init.split(","):
            init = make_init(init_name, model)
            x0 = state.encode(model, init(obs), box)
            print(f"  from {init_name} ({pa_mpjpe(x0):.1f}):")
            for name, backend in backends.items():
                steps = [pa_mpjpe(x) for x in states_per_step(name, backend, model, obs, x0)]
                print(f"    {name:5s} " + " ".join(f"{e:5.1f}" for e in steps))
        if args.timed <= 0:
            return
        init = make_init("regressor", model)
        times: dict[str, list[float]] = {name: [] for name in backends}
        for i in range(min(args.timed, args.n) + 3):
            part = obs.map(lambda t: t[i : i + 1])
            start_params = init(part)
            for name, backend in backends.items():
                start = time.perf_counter()
                backend.fit(part, start_params)
                if i >= 3:  # warm-up
                    times[name].append(1000 * (time.perf_counter() - start))
    print(f"time per fit at batch 1 from the regressor, start not included (median of {len(times['lgd'])}):")
    for name, t in times.items():
        steps = backends[name].net.steps if name == "lgd" else backends[name].net.stages
        print(f"    {name:5s} {statistics.median(t):6.1f} ms, {statistics.median(t) / steps:.1f} ms per step")


if __name__ == "__main__":
    main()
