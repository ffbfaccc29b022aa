"""Command line: parses options and hands them to the pipeline. No numerical code lives here."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # OpenCV's own warnings would break one-line errors

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from bodyfit_cli.errors import BodyfitError, InputError  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Fit a 3D human body model (SMPL family) to the people in photos and videos.",
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


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
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, disable=quiet or len(items) < 2 or not err.is_terminal, transient=True,
    ) as progress:  # fmt: skip
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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench() -> None:
    """Benchmark fitting methods on 3D keypoints (not available in this version yet)."""
    usage_error("'bodyfit bench' is not available in this version yet")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train() -> None:
    """Train priors and networks (not available in this version yet)."""
    usage_error("'bodyfit train' is not available in this version yet")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
