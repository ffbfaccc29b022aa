"""What `bodyfit train data`, `train prior` and each learned method's `train <method>` do, with progress and a
summary on stderr."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from rich.console import Console

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.io.atomic import ensure_dir, write_npz_atomic
from bodyfit_cli.progress import progress_bar
from bodyfit_cli.training.gmm import fit_gmm
from bodyfit_cli.training.pose_data import PoseDataset, RetargetConfig, build_pose_dataset, training_trials

# Torch splits the retargeting's sums over its threads, so their number changes the poses in the last digits,
# and networks trained from them come out with other weights (of the same quality). A fixed number makes the
# dataset the same on every machine of one CPU type; 2, the development VM's default, built the shipped one.
RETARGET_THREADS = 2


def make_pose_dataset(
    roots: list[Path], out: Path, cfg: RetargetConfig, body_model: str, model_dir: Path | None, console: Console
) -> PoseDataset:
    model = BodyModel(load_body_model(body_model, model_dir))
    trials = training_trials(roots, cfg.hold_out)
    threads = torch.get_num_threads()
    torch.set_num_threads(RETARGET_THREADS)
    try:
        with progress_bar(console) as progress:
            task = progress.add_task("retargeting", total=len(trials))
            data = build_pose_dataset(
                model,
                roots,
                cfg,
                progress=lambda name: progress.update(task, advance=1, description=f"retargeted {name}"),
            )
    finally:
        torch.set_num_threads(threads)
    data.save(out)
    train, val = data.split()
    console.print(
        f"{len(data)} poses from {len(set(data.trial))} trials (half of them mirrored; subjects "
        f"{', '.join(cfg.hold_out) or 'none'} held out): {len(train)} train, "
        f"{len(val)} validation; retargeting error {np.mean(data.fit_error_mm):.1f} mm mean, "
        f"{np.percentile(data.fit_error_mm, 95):.1f} mm 95th percentile -> {out}"
    )
    return data


def make_pose_prior(data_path: Path, out: Path, components: int, iters: int, seed: int, console: Console) -> None:
    train, val = PoseDataset.load(data_path).split()
    x = torch.from_numpy(train.body_pose)
    with progress_bar(console) as progress:
        task = progress.add_task("EM", total=iters)
        mix = fit_gmm(x, components, iters, seed=seed, progress=lambda it, ll: progress.update(task, completed=it + 1))
    train_ll = float(torch.logsumexp(mix.log_prob(x.double()), 1).mean())
    val_ll = (
        float(torch.logsumexp(mix.log_prob(torch.from_numpy(val.body_pose).double()), 1).mean())
        if len(val)
        else float("nan")
    )
    ensure_dir(out.parent)
    write_npz_atomic(
        out,
        weights=mix.weights.float().numpy(),
        means=mix.means.float().numpy(),
        covariances=mix.covariances.float().numpy(),
        seed=np.array(seed),
        train_poses=np.array(len(train)),
    )
    console.print(
        f"{components} components on {len(train)} training poses: mean log-likelihood {train_ll:.1f} train, "
        f"{val_ll:.1f} validation ({len(val)} poses) -> {out}"
    )


def make_weights(
    kind: str,
    method: ModuleType,
    cfg: Any,
    data: Path,
    out: Path,
    checkpoint: Path,
    resume: bool,
    device: str,
    body_model: str,
    model_dir: Path | None,
    console: Console,
) -> None:
    """`bodyfit train <kind>`: the method's `train` (a learned method's `train.py`, `method`) with a progress bar
    showing its `describe` of each step, then its validation scores."""
    from bodyfit_cli.core.device import resolve_device

    model = BodyModel(load_body_model(body_model, model_dir)).to(resolve_device(device))
    with progress_bar(console) as progress:
        task = progress.add_task(f"training {kind}", total=None)

        def show(done: int, total: int, logs: dict[str, float]) -> None:
            progress.update(task, completed=done, total=total)
            if detail := method.describe(logs):
                progress.update(task, description=f"training {kind}: {detail}")

        scores = method.train(cfg, model, data, out, checkpoint, resume, show)
    console.print(
        f"{kind}: validation PA-MPJPE {scores['pa_mpjpe_mm']:.1f} mm, MPJPE {scores['mpjpe_mm']:.1f} mm "
        f"({cfg.validation_views} synthetic views of the validation trials) -> {out}"
    )
