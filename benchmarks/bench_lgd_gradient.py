"""LGD's per-step reprojection gradient in closed form against autograd.

    python benchmarks/bench_lgd_gradient.py [--repeats 100]

On the same synthetic observations (`bench_image.synthetic_observations`), at batch 1 (a photo) and 128 (a
training batch), one torch thread: the median time of one gradient both ways, taking turns call by call so
that a drift of the machine's speed slows both alike, and their largest difference relative to the
gradient's size. LGD takes one of these per descent step (five per fit); `bodyfit bench` times whole fits.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from bench_image import synthetic_observations

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.fitting.registry import make_init
from bodyfit_cli.learned.lgd import fit as lgd
from bodyfit_cli.networks import state


def alternate(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each call, the calls taking turns."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(repeats + 3):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if i >= 3:  # warm-up
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = BodyModel(load_body_model("default"))
    print(f"CPU: {platform.processor() or platform.machine()}, torch threads: {torch.get_num_threads()}")
    with torch.no_grad():
        for batch in (1, 128):
            obs = synthetic_observations(model, batch)
            box = person_box(obs)
            x = state.encode(model, make_init("mean", model)(obs), box)
            closed = lgd.reprojection_gradient(model, x, obs, box)
            reference = lgd.reprojection_gradient(model, x, obs, box, closed_form=False)
            error = float((closed - reference).abs().max() / reference.abs().max())
            ms = alternate(
                {
                    "autograd": lambda: lgd.reprojection_gradient(model, x, obs, box, closed_form=False),
                    "closed form": lambda: lgd.reprojection_gradient(model, x, obs, box),
                },
                args.repeats if batch == 1 else max(args.repeats // 10, 3),
            )
            print(
                f"gradient, batch {batch:3d}: autograd {ms['autograd']:.2f} ms, closed form {ms['closed form']:.2f} ms "
                f"({ms['autograd'] / ms['closed form']:.2f}x); largest difference {error:.1e} of the gradient's size"
            )


if __name__ == "__main__":
    main()
