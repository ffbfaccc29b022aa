"""Command line: parses options and hands them to the pipeline. No numerical code lives here."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # OpenCV's own warnings would break one-line errors

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from bodyfit_cli.errors import BodyfitError, InputError  # noqa: E402
from bodyfit_cli.progress import progress_bar  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Fit a 3D human body model (SMPL family) to the people in photos and videos.",
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def show_notices(quiet: bool) -> None:
    """bodyfit's own notices (not other libraries' logs) as `bodyfit: ...` lines on stderr, unless --quiet."""
    log = logging.getLogger("bodyfit")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bodyfit: %(message)s"))
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(logging.ERROR if quiet else logging.INFO)


@contextmanager
def setup_errors(debug: bool = False) -> Iterator[None]:
    """For commands with one job: an error users can cause ends it as a one-line usage error."""
    try:
        yield
    except BodyfitError as e:
        if debug:
            traceback.print_exception(e, file=sys.stderr)
        usage_error(str(e))


def fail_line(message: str) -> None:
    err.print(f"[bold red]bodyfit: error:[/] {message}", soft_wrap=True)


@app.command()
def image(
    paths: list[str] = typer.Argument(..., help="Image files, directories, globs, or - to read paths from stdin."),
    method: str = typer.Option("smplify", help="Refinement backend: smplify, lgd or hund."),
    out: Path = typer.Option(Path("bodyfit_out"), help="Output directory (mirrors the input tree)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    keypoints: Path | None = typer.Option(None, help="OpenPose or COCO keypoint JSON instead of detecting."),
    focal: float | None = typer.Option(None, help="Focal length in pixels (default: the image diagonal)."),
    body_model: str = typer.Option("default", help="default, smpl or smplx."),
    model_dir: Path | None = typer.Option(None, help="Folder with smpl/ or smplx/ model files."),
    max_people: int = typer.Option(4, min=1, help="Most people fitted per image."),
    no_render: bool = typer.Option(False, "--no-render", help="Skip the overlay image."),
    mesh_format: str = typer.Option("obj", help="obj, ply or glb."),
    json_lines: bool = typer.Option(False, "--json", help="One JSON object per input on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress or messages on stderr (errors still shown)."),
    seed: int = typer.Option(0, help="Random seed."),
    init: str = typer.Option("mean", help="Initialisation: mean or regressor."),
    pose_model: Path | None = typer.Option(None, help="MediaPipe PoseLandmarker .task file (newer mediapipe)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo inputs that already have results."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks."),
) -> None:
    """Fit body models to the people in images."""
    from bodyfit_cli.io.inputs import expand_inputs
    from bodyfit_cli.pipeline import ImagePipeline, Options

    if mesh_format not in ("obj", "ply", "glb"):
        usage_error(f"--mesh-format must be obj, ply or glb, not '{mesh_format}'")
    show_notices(quiet)
    opts = Options(
        method=method, out=out, device=device, keypoints=keypoints, focal=focal, body_model=body_model,
        model_dir=model_dir, max_people=max_people, render=not no_render, mesh_format=mesh_format, seed=seed,
        init=init, pose_model=pose_model, overwrite=overwrite,
    )  # fmt: skip
    try:
        pipeline = ImagePipeline(opts)
    except BodyfitError as e:  # device, method, body model, --out: nothing can run, so a usage error
        usage_error(str(e))
    bad_args: list[tuple[str, InputError]] = []
    items = expand_inputs(paths, {"image"}, stdin=sys.stdin, errors=bad_args)  # a bad argument fails alone
    failed = len(bad_args)
    for arg, e in bad_args:
        fail_line(str(e))
        if json_lines:
            emit({"input": arg, "error": str(e)})
    with progress_bar(err, disable=quiet or len(items) < 2, transient=True) as progress:
        task = progress.add_task("fitting", total=len(items))
        for item in items:
            progress.update(task, description=item.path.name)
            done = pipeline.result_path(item)
            try:
                if done.is_file() and not overwrite:
                    result = json.loads(done.read_text())
                    if not quiet:
                        err.print(f"skip {item.path} (done: {done}; --overwrite to redo)", soft_wrap=True)
                else:
                    result = pipeline.run(item)
                    if not quiet:
                        n = len(result["people"])
                        err.print(f"{item.path}: {n} {'person' if n == 1 else 'people'} -> {done}", soft_wrap=True)
            except Exception as e:  # noqa: BLE001 - the CLI boundary: one line per failed input
                failed += 1
                report(item.path, e, debug)
                if json_lines:
                    emit({"input": str(item.path), "error": str(e)})
            else:
                if json_lines:
                    emit(result)
            progress.advance(task)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def report(path: Path, e: Exception, debug: bool) -> None:
    if debug:
        traceback.print_exception(e, file=sys.stderr)
    if isinstance(e, BodyfitError):
        fail_line(f"{path}: {e}" if str(path) not in str(e) else str(e))
    else:
        fail_line(f"{path}: internal error: {type(e).__name__}: {e} (run with --debug for details)")


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def usage_error(message: str) -> None:
    fail_line(message)
    raise typer.Exit(EXIT_USAGE)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def video() -> None:
    """Fit body models to the people in videos (not available in this version yet)."""
    usage_error("'bodyfit video' is not available in this version yet; extract frames and use 'bodyfit image'")


@app.command()
def bench(
    keypoints3d: Path | None = typer.Option(None, help="3D poses: .npz with joints (N, K, 3) in metres and names (K,)."),
    mocap: list[Path] | None = typer.Option(None, help="Motion capture (.amc/.bvh) instead; repeat for several files."),
    method: str = typer.Option("smplify,lgd,hund", help="Comma-separated methods to compare."),
    n: int = typer.Option(500, min=1, help="Number of synthetic views."),
    seed: int = typer.Option(0, help="Seed for the poses, cameras, noise and dropout."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results here as JSON."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    batch: int = typer.Option(1, min=1, help="People fitted together (time per person = batch time / batch)."),
    prior: str = typer.Option("gmm", help="SMPLify's pose prior: gmm (learned) or simple."),
    body_model: str = typer.Option("default", help="default, smpl or smplx."),
    model_dir: Path | None = typer.Option(None, help="Folder with smpl/ or smplx/ model files."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks."),
) -> None:
    """Compare fitting methods on 2D views of known 3D poses: accuracy and time per person."""
    from bodyfit_cli.evaluation.report import run_bench

    if (keypoints3d is None) == (not mocap):
        usage_error("give exactly one of --keypoints3d FILE.npz or --mocap FILE")
    with setup_errors(debug):
        run_bench(
            keypoints3d=keypoints3d, mocap=mocap or [], methods=[m.strip() for m in method.split(",") if m.strip()],
            n=n, seed=seed, json_out=json_out, device=device, batch=batch, prior=prior, body_model=body_model,
            model_dir=model_dir, console=err,
        )  # fmt: skip


train_app = typer.Typer(help="Build the training data and train the learned parts (every shipped weight).", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("data")
def train_data(
    mocap: list[Path] = typer.Argument(..., help="Mocap files or folders (.amc with .asf, .bvh, AMASS .npz)."),
    out: Path = typer.Option(Path("data/poses.npz"), help="Where to write the pose dataset."),
    fps: float = typer.Option(30.0, help="Frame rate the mocap is thinned to before near-duplicate removal."),
    min_move: float = typer.Option(0.05, help="A kept frame moves some joint this far (m) from the last kept one."),
    body_model: str = typer.Option("default", help="default, smpl or smplx."),
    model_dir: Path | None = typer.Option(None, help="Folder with smpl/ or smplx/ model files."),
) -> None:
    """Retarget motion capture to the body model: the pose dataset every learned part trains on."""
    from bodyfit_cli.training.commands import make_pose_dataset

    with setup_errors():
        make_pose_dataset(mocap, out, fps, min_move, body_model, model_dir, err)


@train_app.command("prior")
def train_prior(
    data: Path = typer.Option(Path("data/poses.npz"), help="Pose dataset from 'bodyfit train data'."),
    out: Path = typer.Option(Path("models/pose_prior.npz"), help="Where to write the prior."),
    components: int = typer.Option(8, min=1, help="Gaussian components."),
    iters: int = typer.Option(100, min=1, help="EM iterations."),
    seed: int = typer.Option(0, help="Seed for the k-means++ start."),
) -> None:
    """Fit the Gaussian-mixture pose prior SMPLify uses, on the dataset's training trials."""
    from bodyfit_cli.training.commands import make_pose_prior

    with setup_errors():
        make_pose_prior(data, out, components, iters, seed, err)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
