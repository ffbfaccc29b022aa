"""Forward-pass time of the default body model vs a random SMPL-sized (6890-vertex) model, on CPU.

    python benchmarks/bench_body_model.py

Times the full-mesh forward pass (what export and rendering need) and the keypoints-only pass
(what fitting needs), at batch 1 and 64.
"""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel, BodyModelData
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.vocabulary import NUM_KEYPOINTS, SMPL_PARENTS


def random_smpl_sized(seed: int = 0) -> BodyModelData:
    """Random arrays with SMPL's sizes (6890 vertices, 13776 faces, 207 pose correctives)."""
    rng = np.random.default_rng(seed)
    n_v, n_j = 6890, 24
    weights = rng.random((n_v, n_j)) ** 8
    weights /= weights.sum(1, keepdims=True)
    j_reg = rng.random((n_j, n_v)) * (rng.random((n_j, n_v)) < 0.005)
    j_reg /= j_reg.sum(1, keepdims=True)
    ids = rng.integers(0, n_v, (NUM_KEYPOINTS, 8))
    return BodyModelData(
        name="random-smpl-sized",
        v_template=rng.normal(size=(n_v, 3)),
        shapedirs=rng.normal(size=(n_v, 3, 10)) * 0.01,
        J_regressor=j_reg,
        weights=weights,
        parents=np.array(SMPL_PARENTS),
        faces=rng.integers(0, n_v, (13776, 3)),
        landmark_ids=ids,
        landmark_weights=np.full((NUM_KEYPOINTS, 8), 1 / 8),
        posedirs=rng.normal(size=(207, n_v * 3)) * 1e-3,
    )


def time_forward(model: BodyModel, batch: int, vertices: bool, repeats: int) -> float:
    rots = axis_angle_to_matrix(0.2 * torch.randn(batch, 24, 3))
    betas = torch.randn(batch, 10)
    with torch.no_grad():
        for _ in range(3):
            model(rots[:, 0], rots[:, 1:], betas, vertices=vertices)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(rots[:, 0], rots[:, 1:], betas, vertices=vertices)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000  # the median: this shared VM has noisy neighbours


def main() -> None:
    torch.manual_seed(0)
    models = {
        "default (13718 v)": BodyModel(load_body_model("default")),
        "SMPL-sized (6890 v)": BodyModel(random_smpl_sized()),
    }
    print(f"CPU: {platform.processor() or platform.machine()}, torch threads: {torch.get_num_threads()}")
    print(f"{'model':22s} {'batch':>5s} {'mesh ms':>9s} {'keypoints ms':>13s}")
    for name, model in models.items():
        for batch in (1, 64):
            mesh = time_forward(model, batch, True, 50 if batch == 1 else 30)
            kp = time_forward(model, batch, False, 100 if batch == 1 else 50)
            print(f"{name:22s} {batch:5d} {mesh:9.2f} {kp:13.2f}")
    print("(median of repeated runs, ms)")


if __name__ == "__main__":
    main()
