"""`bodyfit bench` end to end: load the poses, run each method on the same views, print and save."""

from __future__ import annotations

import platform
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.device import fitting_device
from bodyfit_cli.errors import BodyfitError, MethodUnavailable
from bodyfit_cli.evaluation.benchmark import make_views, mocap_poses, read_keypoints3d, run_methods
from bodyfit_cli.fitting.registry import METHODS, check_method, make_backend, make_init
from bodyfit_cli.io.atomic import ensure_dir, write_json_atomic
from bodyfit_cli.progress import progress_bar

COLUMNS = (
    ("pa_mpjpe_mm", "PA-MPJPE mm"),
    ("mpjpe_mm", "MPJPE mm"),
    ("reproj_px", "reproj px"),
    ("median_ms", "median ms"),
    ("p95_ms", "p95 ms"),
)


def run_bench(
    keypoints3d: Path | None,
    mocap: list[Path],
    methods: list[str],
    n: int,
    seed: int,
    json_out: Path | None,
    device: str,
    batch: int,
    prior: str,
    body_model: str,
    model_dir: Path | None,
    console: Console,
    init: str = "auto",
) -> dict:
    if not methods:
        raise BodyfitError(f"no method given (choose from {', '.join(METHODS)})")
    for name in methods:  # before the slow part, not after it
        check_method(name)
    dev = fitting_device(device)
    model = BodyModel(load_body_model(body_model, model_dir))
    if keypoints3d is not None:
        poses = read_keypoints3d(keypoints3d)
    else:
        console.print(f"retargeting {', '.join(map(str, mocap))} to the {body_model} body model...")
        poses, error = mocap_poses(mocap, model)
        console.print(f"{len(poses.points)} poses, mean joint distance to the mocap {error * 1000:.1f} mm")
    model.to(dev)
    obs, truth = make_views(poses, n, seed, dev)
    results: dict[str, dict] = {}
    runs = {}
    starts: set[str] = set()  # what --init resolved to (auto: the regressor where trained)
    for name in methods:
        try:
            backend = make_backend(name, model, prior)
        except MethodUnavailable as e:
            results[name] = {"available": False, "reason": str(e)}
            continue
        runs[name] = (backend, make_init(init, model, backend))  # the regressor method initialises itself
        starts.add(runs[name][1].name)
    with progress_bar(console, transient=True) as progress:
        tasks = {name: progress.add_task(name, total=n) for name in runs}
        results.update(run_methods(runs, model, obs, truth, batch, lambda name, k: progress.advance(tasks[name], k)))
    results = {name: results[name] for name in methods}  # in the order asked for
    report = {
        "n": n,
        "seed": seed,
        "device": str(dev),
        "input": poses.source,
        "batch": batch,
        "init": ", ".join(sorted(starts)) or init,
        "prior": prior,
        "body_model": body_model,
        "machine": platform.machine(),
        "methods": results,
    }
    print_table(report, Console())
    if json_out is not None:
        ensure_dir(json_out.parent)
        write_json_atomic(json_out, report)
    return report


def print_table(report: dict, console: Console) -> None:
    table = Table(
        title=f"bodyfit bench: {report['n']} views of {report['input']} (seed {report['seed']}, {report['init']} init, {report['device']})"
    )
    table.add_column("method")
    for _, title in COLUMNS:
        table.add_column(title, justify="right")
    for name, r in report["methods"].items():
        if r.get("available", True):
            table.add_row(name, *(f"{r[key]:.1f}" for key, _ in COLUMNS))
        else:
            table.add_row(name, "[dim]not available[/]", *[""] * (len(COLUMNS) - 1))
    console.print(table)
