"""Command line: parses options and hands them to the pipeline. No numerical code lives here."""

from __future__ import annotations

import faulthandler
import functools
import importlib
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, get_type_hints

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # OpenCV's own warnings would break one-line errors
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # and so would FFmpeg's, e.g. on a truncated video

import typer  # noqa: E402
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # noqa: E402 (click, as typer ships it)
from typer.core import TyperGroup  # noqa: E402

from bodyfit_cli.batch.jobs import Job  # noqa: E402
from bodyfit_cli.batch.run import LocalRunner, Runner, process_inputs  # noqa: E402
from bodyfit_cli.errors import BodyfitError  # noqa: E402
from bodyfit_cli.fitting.registry import learned_methods  # noqa: E402
from bodyfit_cli.io.ctrl_c import catch_ctrl_c, ctrl_c_pressed  # noqa: E402
from bodyfit_cli.io.video import FrameRange  # noqa: E402
from bodyfit_cli.options import (  # noqa: E402
    BodyModelName,
    Device,
    Init,
    MeshFormat,
    Method,
    Options,
    Prior,
    choices,
    parse_exports,
)
from bodyfit_cli.progress import err, fail_line  # noqa: E402

# What a run does when given no options: the command line's defaults are these.
IMAGE, VIDEO, FRAMES = Options(), Job(Options(), frozenset({"video"})), FrameRange()


class OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, a typo in a choice) as one `bodyfit: error:` line and exit 2, like
    every other error bodyfit reports, instead of click's framed block."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as e:
            if text := e.ctx.get_help() if e.ctx else "":
                typer.echo(text)
            code = e.exit_code
        except UsageError as e:
            where = e.ctx.command_path if e.ctx else "bodyfit"
            fail_line(f"{e.format_message().replace('Value error, ', '')} (see {where} --help)")
            code = e.exit_code
        except typer.Abort:
            code = EXIT_SOME_FAILED
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else EXIT_OK)


app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    help="Fit a 3D human body model (SMPL family) to the people in photos and videos.",
    pretty_exceptions_enable=False,
)
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def print_version(value: bool) -> None:
    if value:
        from bodyfit_cli import __version__

        typer.echo(f"bodyfit {__version__}")
        raise typer.Exit()


@app.callback()
def top_level_options(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=print_version, help="Show the version and exit."
    ),
) -> None:
    pass


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


class FitOpts:
    """Typer declarations of the options `image`, `video` and `batch` share: one definition, one help text,
    the defaults those of `Options` and `Job` (what the pipeline runs with when given nothing). A command
    takes them with `shared_options` and reads their values from `ctx.params`."""

    method: Method = typer.Option(
        Method(IMAGE.method), help="Refinement backend; regressor and spin: the keypoint regressor's result, unrefined."
    )
    out: Path = typer.Option(IMAGE.out, help="Output directory (mirrors the input tree).")
    device: Device = typer.Option(Device(IMAGE.device), help="Where to fit (auto: cuda where there is a GPU).")
    keypoints: Path | None = typer.Option(
        None, help="OpenPose or COCO keypoint JSON for the images, instead of detecting."
    )
    focal: float | None = typer.Option(
        IMAGE.focal, help="Focal length in pixels (default: the image or frame diagonal)."
    )
    body_model: BodyModelName = typer.Option(
        BodyModelName(IMAGE.body_model), help="Body model (smpl, smplx: from --model-dir)."
    )
    model_dir: Path | None = typer.Option(IMAGE.model_dir, help="Folder with smpl/ or smplx/ model files.")
    max_people: int = typer.Option(IMAGE.max_people, min=1, help="Most people fitted per image or frame.")
    no_render: bool = typer.Option(not IMAGE.render, "--no-render", help="Skip the overlay image or video.")
    mesh_format: MeshFormat = typer.Option(MeshFormat(IMAGE.mesh_format), help="Mesh file format.")
    json_lines: bool = typer.Option(False, "--json", help="One JSON object per input on stdout (a summary per video).")
    quiet: bool = typer.Option(False, "--quiet", help="No progress or messages on stderr (errors still shown).")
    seed: int = typer.Option(IMAGE.seed, help="Random seed.")
    init: Init = typer.Option(
        Init(IMAGE.init),
        help="Initialisation (a video person's first frame): regressor, spin (the regressor trained with fitting "
        "in the loop), mean, or auto (hund: mean; the others: spin, else regressor, where trained).",
    )
    pose_model: Path | None = typer.Option(
        IMAGE.pose_model, help="MediaPipe PoseLandmarker .task file (newer mediapipe)."
    )
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo inputs that already have results.")
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks.")
    start: float = typer.Option(FRAMES.start, min=0.0, help="Videos: first second to process.")
    end: float | None = typer.Option(FRAMES.end, min=0.0, help="Videos: last second to process (default: the end).")
    stride: int = typer.Option(FRAMES.stride, min=1, help="Videos: process every K-th frame.")
    smooth: bool = typer.Option(
        VIDEO.smooth,
        "--smooth/--no-smooth",
        help="Videos: One-Euro filtering of each person's fitted joint rotations over time.",
    )
    mesh_every: int = typer.Option(
        VIDEO.mesh_every, min=0, help="Videos: write meshes every K-th processed frame (0: none)."
    )
    export: str = typer.Option(
        ",".join(VIDEO.exports) or "none",
        help="Videos: each track's animation files, comma-separated: bvh, glb (skinned, animated glTF), "
        "amass (AMASS-style .npz), or none.",
    )


FIT = (
    "method", "out", "device", "keypoints", "focal", "body_model", "model_dir", "max_people", "no_render",
    "mesh_format", "json_lines", "quiet", "seed", "init", "pose_model", "overwrite", "debug",
)  # fmt: skip
VIDEO_ONLY = ("start", "end", "stride", "smooth", "mesh_every", "export")


def with_parameters(command: Callable[..., None], extra: list[inspect.Parameter]) -> Callable[..., None]:
    """`command` as the parser sees it: its own parameters, then `extra`, whose values it reads from `ctx.params`
    (or does not need) and is not called with."""
    own = list(inspect.signature(command, eval_str=True).parameters.values())

    @functools.wraps(command)
    def run(**values: Any) -> None:
        command(**{p.name: values[p.name] for p in own})

    parameters = [*own, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in extra)]
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run


def shared_options(*names: str, **own: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the `FitOpts` options `names`, after its own parameters; `own` replaces one's declaration
    for this command (video's `--keypoints`)."""
    hints = get_type_hints(FitOpts)

    def add(command: Callable[..., None]) -> Callable[..., None]:
        extra = [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, default=own.get(n, getattr(FitOpts, n)), annotation=hints[n]
            )
            for n in names
        ]
        return with_parameters(command, extra)

    return add


def fit_options(parsed: dict[str, Any]) -> Options:
    """The `FitOpts` values the parser gave a command (`ctx.params`, by parameter name) as the `Options` every
    input of a run shares; a parameter renamed without this is a KeyError, not a value silently dropped."""
    return Options(
        method=parsed["method"].value,
        out=parsed["out"],
        device=parsed["device"].value,
        keypoints=parsed["keypoints"],
        focal=parsed["focal"],
        body_model=parsed["body_model"].value,
        model_dir=parsed["model_dir"],
        max_people=parsed["max_people"],
        render=not parsed["no_render"],
        mesh_format=parsed["mesh_format"].value,
        seed=parsed["seed"],
        init=parsed["init"].value,
        pose_model=parsed["pose_model"],
    )


def video_job(parsed: dict[str, Any], kinds: set[str]) -> Job:
    """A run that takes videos: `fit_options` and the video options, checked before anything loads."""
    start, end = parsed["start"], parsed["end"]
    if end is not None and end <= start:
        usage_error(f"--end ({end}) must be after --start ({start})")
    try:
        exports = parse_exports(parsed["export"])
    except ValueError as e:
        usage_error(str(e))
        raise
    frames = FrameRange(start, end, parsed["stride"])
    return Job(
        fit_options(parsed),
        frozenset(kinds),
        frames=frames,
        smooth=parsed["smooth"],
        mesh_every=parsed["mesh_every"],
        exports=exports,
    )


def run_job(paths: list[str], job: Job, runner: Runner, parsed: dict[str, Any]) -> None:
    """Process the inputs, with the reporting options `parsed` gives, and exit: 0 all done, 1 some failed, 2
    nothing could run (the runner could not start)."""
    report = {k: parsed[k] for k in ("json_lines", "quiet", "overwrite", "debug")}
    with setup_errors(parsed["debug"]):
        failed = process_inputs(paths, job, runner, **report)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


@app.command()
@shared_options(*FIT)
def image(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Image files, directories, globs, or - to read paths from stdin."),
) -> None:
    """Fit body models to the people in images."""
    show_notices(ctx.params["quiet"])
    job = Job(fit_options(ctx.params), frozenset({"image"}))
    run_job(paths, job, LocalRunner(job), ctx.params)


VIDEO_KEYPOINTS = typer.Option(
    None,
    help="A folder of OpenPose's per-frame JSON, <clip>_<frame>_keypoints.json (or one folder per clip, "
    "DIR/<clip>/), instead of detecting.",
)


@app.command()
@shared_options(*FIT, *VIDEO_ONLY, keypoints=VIDEO_KEYPOINTS)
def video(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Video files, directories, globs, or - to read paths from stdin."),
) -> None:
    """Fit body models to the people in videos, frame by frame, with a track id per person."""
    keypoints = ctx.params["keypoints"]
    if keypoints is not None and not keypoints.is_dir():
        what = "a file" if keypoints.exists() else "not there"
        usage_error(f"--keypoints for video takes a folder of per-frame keypoint files; {keypoints} is {what}")
    job = video_job(ctx.params, {"video"})
    show_notices(ctx.params["quiet"])
    run_job(paths, job, LocalRunner(job), ctx.params)


Engine = choices("Engine", ("local", "ray"))  # this process, or a Ray cluster's workers


@app.command()
@shared_options(*FIT, *VIDEO_ONLY)
def batch(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Images and videos: files, directories, globs, or - for stdin."),
    engine: Engine = typer.Option(Engine.local, help="local (this process) or ray (a Ray cluster's workers)."),
    address: str | None = typer.Option(None, help="Ray cluster to use (default: $RAY_ADDRESS, else a local one)."),
    workers: int | None = typer.Option(None, min=1, help="Ray workers (default: as many as the cluster has room for)."),
    gpus_per_worker: float | None = typer.Option(
        None, min=0.0, help="GPUs per Ray worker (default: 1 where the cluster has GPUs, else 0)."
    ),
) -> None:
    """Fit images and videos (told apart by suffix) here or spread over a Ray cluster; same outputs as
    `image` and `video`."""
    if engine is Engine.local and (address, workers, gpus_per_worker) != (None, None, None):
        usage_error("--address, --workers and --gpus-per-worker are for --engine ray")
    job = video_job(ctx.params, {"image", "video"})
    show_notices(ctx.params["quiet"])
    runner: Runner
    if engine is Engine.local:
        runner = LocalRunner(job)
    else:
        from bodyfit_cli.batch.ray_engine import RayEngine, import_ray

        debug = ctx.params["debug"]
        with setup_errors(debug):
            import_ray()
        runner = RayEngine(job, address=address, workers=workers, gpus_per_worker=gpus_per_worker, debug=debug)
    run_job(paths, job, runner, ctx.params)


def usage_error(message: str) -> None:
    fail_line(message)
    raise typer.Exit(EXIT_USAGE)


@app.command()
def bench(
    keypoints3d: Path | None = typer.Option(
        None, help="3D poses: .npz with joints (N, K, 3) in metres and names (K,)."
    ),
    mocap: list[Path] | None = typer.Option(None, help="Motion capture (.amc/.bvh) instead; repeat for several files."),
    method: str = typer.Option("smplify,lgd,hund", help="Comma-separated methods to compare."),
    n: int = typer.Option(500, min=1, help="Number of synthetic views."),
    seed: int = typer.Option(0, help="Seed for the poses, cameras, noise and dropout."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results here as JSON."),
    device: Device = FitOpts.device,
    batch: int = typer.Option(1, min=1, help="People fitted together (time per person = batch time / batch)."),
    prior: Prior = typer.Option(Prior.gmm, help="SMPLify's pose prior: gmm (learned) or simple (hand-set)."),
    init: Init = typer.Option(
        Init.auto,
        help="Initialisation for every method: regressor, spin, mean, or auto (per method: the mean pose for hund, "
        "else spin or regressor).",
    ),
    body_model: BodyModelName = FitOpts.body_model,
    model_dir: Path | None = FitOpts.model_dir,
    debug: bool = FitOpts.debug,
) -> None:
    """Compare fitting methods on 2D views of known 3D poses: accuracy and time per person."""
    from bodyfit_cli.evaluation.report import run_bench

    if (keypoints3d is None) == (not mocap):
        usage_error("give exactly one of --keypoints3d FILE.npz or --mocap FILE")
    with setup_errors(debug):
        run_bench(
            keypoints3d=keypoints3d,
            mocap=mocap or [],
            methods=[m.strip() for m in method.split(",") if m.strip()],
            n=n,
            seed=seed,
            json_out=json_out,
            device=device.value,
            batch=batch,
            prior=prior.value,
            body_model=body_model.value,
            model_dir=model_dir,
            console=err,
            init=init.value,
        )


train_app = typer.Typer(
    help="Build the training data and train the learned parts (every shipped weight).", no_args_is_help=True
)
app.add_typer(train_app, name="train")


@train_app.command("data")
def train_data(
    mocap: list[Path] = typer.Argument(..., help="Mocap files or folders (.amc with .asf, .bvh, AMASS .npz)."),
    out: Path = typer.Option(Path("data/poses.npz"), help="Where to write the pose dataset."),
    fps: float = typer.Option(30.0, help="Frame rate the mocap is thinned to before near-duplicate removal."),
    min_move: float = typer.Option(0.05, help="A kept frame moves some joint this far (m) from the last kept one."),
    hold_out: str | None = typer.Option(
        None,
        help="Comma-separated CMU subjects whose trials are skipped, or none (default: the benchmarks' held-out subjects).",
    ),
    body_model: BodyModelName = FitOpts.body_model,
    model_dir: Path | None = FitOpts.model_dir,
) -> None:
    """Retarget motion capture to the body model: the pose dataset every learned part trains on."""
    from bodyfit_cli.training.commands import make_pose_dataset
    from bodyfit_cli.training.pose_data import RetargetConfig

    cfg = RetargetConfig(fps=fps, min_move=min_move)
    if hold_out is not None:
        cfg = replace(cfg, hold_out=tuple(s.strip() for s in hold_out.split(",") if s.strip() not in ("", "none")))
    with setup_errors():
        make_pose_dataset(mocap, out, cfg, body_model.value, model_dir, err)


@train_app.command("prior")
def train_prior(
    data: Path = typer.Option(Path("data/poses.npz"), help="Pose dataset from 'bodyfit train data'."),
    out: Path = typer.Option(
        Path("data/models/pose_prior.npz"), help="Where to write the prior (the shipped one: models/pose_prior.npz)."
    ),
    components: int = typer.Option(8, min=1, help="Gaussian components."),
    iters: int = typer.Option(100, min=1, help="EM iterations."),
    seed: int = typer.Option(0, help="Seed for the k-means++ start."),
) -> None:
    """Fit the Gaussian-mixture pose prior SMPLify uses, on the dataset's training trials."""
    from bodyfit_cli.training.commands import make_pose_prior

    with setup_errors():
        make_pose_prior(data, out, components, iters, seed, err)


@train_app.command("detect")
def train_detect(
    paths: list[str] = typer.Argument(..., help="Images and videos: files, directories, globs, or - for stdin."),
    out: Path = typer.Option(Path("data/detections.npz"), help="Where to write the detected people."),
    stride: int = typer.Option(5, min=1, help="Videos: detect in every K-th frame."),
    max_people: int = typer.Option(4, min=1, help="Most people per image or frame."),
) -> None:
    """Detect the people in images and video frames once, for the trainers that learn from pictures
    (train spin, train lgd and train hund --unlabelled)."""
    from bodyfit_cli.training.detections import detect_inputs

    with setup_errors():
        detect_inputs(paths, out, stride, max_people, err)


TRAIN_DATA = typer.Option(Path("data/poses.npz"), help="Pose dataset from 'bodyfit train data'.")
TRAIN_CHECKPOINT = typer.Option(None, help="Checkpoint file (default: data/checkpoints/<out name>.ckpt).")
TRAIN_RESUME = typer.Option(False, "--resume", help="Continue from the checkpoint if there is one.")


def config_parameter(recipe: Any, name: str) -> inspect.Parameter:
    """The command-line parameter of config field `name`: its default the recipe's, its help, flag names and
    limits the field's (`training.config.option`)."""
    field = {f.name: f for f in fields(recipe)}[name]
    limits = dict(field.metadata["limits"])
    if limits.pop("argument", False):
        declare, limits["metavar"] = typer.Argument, name.upper()
    else:
        declare = typer.Option
    decls, values = tuple(field.metadata["decls"]), limits.pop("choices", None)
    annotation, default = get_type_hints(type(recipe))[name], getattr(recipe, name)
    if limits.pop("path", False):
        annotation = Path | None
    elif values:
        annotation = choices(name.title().replace("_", ""), values)
        default = annotation(default)
    elif annotation is bool and not decls:
        decls = (f"--{name.replace('_', '-')}/--no-{name.replace('_', '-')}",)
    elif annotation == list[str]:
        annotation, default = list[Path], [Path(p) for p in default]
    info = declare(default, *decls, help=field.metadata["help"], **limits)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)


def config_value(value: Any) -> Any:
    """A parsed option as the config stores it: choices by value, files as strings, `none` for no files."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [] if [str(v) for v in value] == ["none"] else [str(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def train_command(kind: str, package: str) -> None:
    """`bodyfit train <kind>` for a learned method, from its folder: options from its `recipe.py` (defaults the
    shipped recipe), the run by its `train.py`."""
    recipe = importlib.import_module(f"{package}.recipe")

    def command(ctx: typer.Context) -> None:
        from bodyfit_cli.networks.weights import trained_file
        from bodyfit_cli.training.commands import make_weights

        p = ctx.params
        cfg = replace(recipe.RECIPE, **{name: config_value(p[name]) for name in recipe.OPTIONS})
        out = p["out"] or trained_file(recipe.FILE, p["body_model"].value)
        checkpoint = p["checkpoint"] or Path("data/checkpoints") / f"{out.stem}.ckpt"
        method = importlib.import_module(f"{package}.train")
        run = (p["data"], out, checkpoint, p["resume"], p["device"].value, p["body_model"].value, p["model_dir"])
        with setup_errors():
            make_weights(kind, method, cfg, *run, err)

    shown = [config_parameter(recipe.RECIPE, name) for name in recipe.OPTIONS]
    out = typer.Option(
        None,
        help=f"Where to write the weights (default: data/models/{recipe.FILE}_<body-model>.pt; the shipped ones, "
        f"which fits use, are models/{recipe.FILE}_<body-model>.pt).",
    )
    files = {"data": (Path, TRAIN_DATA), "out": (Path | None, out), "checkpoint": (Path | None, TRAIN_CHECKPOINT)}
    files["resume"] = (bool, TRAIN_RESUME)
    arguments = [p for p in shown if isinstance(p.default, typer.models.ArgumentInfo)]
    extra = [
        *arguments,
        *(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, (a, d) in files.items()),
        *(p for p in shown if p not in arguments),
    ]
    command = shared_options("device", "body_model", "model_dir")(with_parameters(command, extra))
    train_app.command(kind, help=recipe.SUMMARY)(command)


for _kind, _package in learned_methods().items():
    train_command(_kind, _package)


def keep_stderr_for_bodyfit() -> None:
    """Send what native libraries write to file descriptor 2 to /dev/null; Python's stderr keeps the terminal.

    MediaPipe's graph threads (and TFLite, absl, EGL) log straight to descriptor 2, from any thread and
    at any time: some models open after a first result is returned. Silencing the descriptor around
    each call raced with those threads, and with bodyfit's own lines from other threads. So Python's
    `sys.stderr` moves to a copy of the descriptor, once, before anything writes, and only bodyfit's
    lines and Python's tracebacks reach the user. BODYFIT_NATIVE_LOGS=1 keeps the libraries' logs.
    """
    if os.environ.get("BODYFIT_NATIVE_LOGS") == "1":
        return
    try:
        ours = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep
        return
    encoding, errors = sys.stderr.encoding, sys.stderr.errors
    sys.stderr.flush()
    sys.stderr = open(ours, "w", encoding=encoding, errors=errors, buffering=1)  # noqa: SIM115 (lives as long as the process)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    # A native crash (a segfault in a library) would now end the process without a word: say so on the
    # terminal, with where Python was.
    faulthandler.enable(file=sys.stderr)


def main() -> None:
    keep_stderr_for_bodyfit()
    catch_ctrl_c()
    try:
        app()
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            exit_now(130 if ctrl_c_pressed() else done.code or 0)
        raise


def exit_now(code: int) -> None:
    """End the process with `code` once everything is written, without tearing the interpreter down.

    Every output is complete by now (written under a temporary name, synced and renamed), threads are
    joined and engines shut down; what is left is Python's teardown of the modules, which with torch
    loaded takes longer than fitting a photo (torch runs a finaliser per operator library it registered).
    So the streams are flushed and the process ends there. A stream that cannot be flushed (stdout piped
    to a reader that left) takes Python's own way out instead, and reports as it always has.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    main()
