"""Command line: parses options and hands them to the pipeline. No numerical code lives here."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # OpenCV's own warnings would break one-line errors
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # and so would FFmpeg's, e.g. on a truncated video

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402

from bodyfit_cli.errors import BodyfitError, InputError  # noqa: E402
from bodyfit_cli.io.ctrl_c import catch_ctrl_c, ctrl_c_pressed, stop_if_ctrl_c  # noqa: E402
from bodyfit_cli.progress import progress_bar  # noqa: E402

if TYPE_CHECKING:
    from rich.progress import Progress

    from bodyfit_cli.batch.jobs import Job, Outcome, Pipelines
    from bodyfit_cli.io.inputs import InputItem

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Fit a 3D human body model (SMPL family) to the people in photos and videos.",
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)

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


def fail_line(message: str) -> None:
    err.print(f"[bold red]bodyfit: error:[/] {escape(message)}", soft_wrap=True)


def warn_line(message: str) -> None:
    err.print(f"[bold yellow]bodyfit: warning:[/] {escape(message)}", soft_wrap=True)


class FitOpts:
    """Typer declarations of the options `image`, `video` and `batch` share: one definition, one help text."""

    method = typer.Option("smplify", help="Refinement backend: smplify, lgd, hund, or regressor / spin (none).")
    out = typer.Option(Path("bodyfit_out"), help="Output directory (mirrors the input tree).")
    device = typer.Option("auto", help="auto, cpu or cuda.")
    keypoints = typer.Option(None, help="OpenPose or COCO keypoint JSON for the images, instead of detecting.")
    focal = typer.Option(None, help="Focal length in pixels (default: the image or frame diagonal).")
    body_model = typer.Option("default", help="default, smpl or smplx.")
    model_dir = typer.Option(None, help="Folder with smpl/ or smplx/ model files.")
    max_people = typer.Option(4, min=1, help="Most people fitted per image or frame.")
    no_render = typer.Option(False, "--no-render", help="Skip the overlay image or video.")
    mesh_format = typer.Option("obj", help="obj, ply or glb.")
    json_lines = typer.Option(False, "--json", help="One JSON object per input on stdout (a summary per video).")
    quiet = typer.Option(False, "--quiet", help="No progress or messages on stderr (errors still shown).")
    seed = typer.Option(0, help="Random seed.")
    init = typer.Option(
        "auto",
        help="Initialisation (a video person's first frame): regressor, spin (the regressor "
        "trained with fitting in the loop), mean, or auto (hund: mean; the others: spin, else regressor, where trained).",
    )
    pose_model = typer.Option(None, help="MediaPipe PoseLandmarker .task file (newer mediapipe).")
    overwrite = typer.Option(False, "--overwrite", help="Redo inputs that already have results.")
    debug = typer.Option(False, "--debug", help="Show Python tracebacks.")
    start = typer.Option(0.0, min=0.0, help="Videos: first second to process.")
    end = typer.Option(None, min=0.0, help="Videos: last second to process (default: the end).")
    stride = typer.Option(1, min=1, help="Videos: process every K-th frame.")
    smooth = typer.Option(
        True,
        "--smooth/--no-smooth",
        help="Videos: One-Euro filtering of each person's fitted joint rotations over time.",
    )
    mesh_every = typer.Option(10, min=0, help="Videos: write meshes every K-th processed frame (0: none).")
    export = typer.Option(
        "bvh,glb,amass",
        help="Videos: each track's animation files, comma-separated: bvh, glb (skinned, animated glTF), "
        "amass (AMASS-style .npz), or none.",
    )


def make_job(kinds: set[str], args: dict[str, Any]) -> Job:
    """A command's parsed options (its `locals()`, named as in `FitOpts`) as the `Job` every input shares."""
    from bodyfit_cli.batch.jobs import Job
    from bodyfit_cli.io.video import FrameRange
    from bodyfit_cli.options import Options

    names = {f.name for f in fields(Options)} - {"render"}
    opts = Options(render=not args["no_render"], **{k: v for k, v in args.items() if k in names})
    if "start" not in args:  # images only
        return Job(opts, kinds=frozenset(kinds))
    from bodyfit_cli.options import parse_exports

    frames = FrameRange(args["start"], args["end"], args["stride"])
    try:
        exports = parse_exports(args["export"])
    except ValueError as e:
        usage_error(str(e))
        raise
    return Job(
        opts,
        kinds=frozenset(kinds),
        frames=frames,
        smooth=args["smooth"],
        mesh_every=args["mesh_every"],
        exports=exports,
    )


@app.command()
def image(
    paths: list[str] = typer.Argument(..., help="Image files, directories, globs, or - to read paths from stdin."),
    method: str = FitOpts.method,
    out: Path = FitOpts.out,
    device: str = FitOpts.device,
    keypoints: Path | None = FitOpts.keypoints,
    focal: float | None = FitOpts.focal,
    body_model: str = FitOpts.body_model,
    model_dir: Path | None = FitOpts.model_dir,
    max_people: int = FitOpts.max_people,
    no_render: bool = FitOpts.no_render,
    mesh_format: str = FitOpts.mesh_format,
    json_lines: bool = FitOpts.json_lines,
    quiet: bool = FitOpts.quiet,
    seed: int = FitOpts.seed,
    init: str = FitOpts.init,
    pose_model: Path | None = FitOpts.pose_model,
    overwrite: bool = FitOpts.overwrite,
    debug: bool = FitOpts.debug,
) -> None:
    """Fit body models to the people in images."""
    show_notices(quiet)
    job = make_job({"image"}, locals())
    runner = LocalRunner(job)
    failed = process_inputs(paths, job, runner, json_lines=json_lines, quiet=quiet, overwrite=overwrite, debug=debug)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


@app.command()
def video(
    paths: list[str] = typer.Argument(..., help="Video files, directories, globs, or - to read paths from stdin."),
    method: str = FitOpts.method,
    out: Path = FitOpts.out,
    device: str = FitOpts.device,
    keypoints: Path | None = typer.Option(
        None,
        help="A folder of OpenPose's per-frame JSON, <clip>_<frame>_keypoints.json (or one folder per clip, "
        "DIR/<clip>/), instead of detecting.",
    ),
    focal: float | None = FitOpts.focal,
    body_model: str = FitOpts.body_model,
    model_dir: Path | None = FitOpts.model_dir,
    max_people: int = FitOpts.max_people,
    no_render: bool = FitOpts.no_render,
    mesh_format: str = FitOpts.mesh_format,
    json_lines: bool = FitOpts.json_lines,
    quiet: bool = FitOpts.quiet,
    seed: int = FitOpts.seed,
    init: str = FitOpts.init,
    pose_model: Path | None = FitOpts.pose_model,
    overwrite: bool = FitOpts.overwrite,
    debug: bool = FitOpts.debug,
    start: float = FitOpts.start,
    end: float | None = FitOpts.end,
    stride: int = FitOpts.stride,
    smooth: bool = FitOpts.smooth,
    mesh_every: int = FitOpts.mesh_every,
    export: str = FitOpts.export,
) -> None:
    """Fit body models to the people in videos, frame by frame, with a track id per person."""
    if keypoints is not None and not keypoints.is_dir():
        what = "a file" if keypoints.exists() else "not there"
        usage_error(f"--keypoints for video takes a folder of per-frame keypoint files; {keypoints} is {what}")
    check_frame_range(start, end)
    show_notices(quiet)
    job = make_job({"video"}, locals())
    runner = LocalRunner(job)
    failed = process_inputs(paths, job, runner, json_lines=json_lines, quiet=quiet, overwrite=overwrite, debug=debug)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


@app.command()
def batch(
    paths: list[str] = typer.Argument(..., help="Images and videos: files, directories, globs, or - for stdin."),
    engine: str = typer.Option("local", help="local (this process) or ray (a Ray cluster's workers)."),
    address: str | None = typer.Option(None, help="Ray cluster to use (default: $RAY_ADDRESS, else a local one)."),
    workers: int | None = typer.Option(None, min=1, help="Ray workers (default: as many as the cluster has room for)."),
    gpus_per_worker: float | None = typer.Option(
        None, min=0.0, help="GPUs per Ray worker (default: 1 where the cluster has GPUs, else 0)."
    ),
    method: str = FitOpts.method,
    out: Path = FitOpts.out,
    device: str = FitOpts.device,
    keypoints: Path | None = FitOpts.keypoints,
    focal: float | None = FitOpts.focal,
    body_model: str = FitOpts.body_model,
    model_dir: Path | None = FitOpts.model_dir,
    max_people: int = FitOpts.max_people,
    no_render: bool = FitOpts.no_render,
    mesh_format: str = FitOpts.mesh_format,
    json_lines: bool = FitOpts.json_lines,
    quiet: bool = FitOpts.quiet,
    seed: int = FitOpts.seed,
    init: str = FitOpts.init,
    pose_model: Path | None = FitOpts.pose_model,
    overwrite: bool = FitOpts.overwrite,
    debug: bool = FitOpts.debug,
    start: float = FitOpts.start,
    end: float | None = FitOpts.end,
    stride: int = FitOpts.stride,
    smooth: bool = FitOpts.smooth,
    mesh_every: int = FitOpts.mesh_every,
    export: str = FitOpts.export,
) -> None:
    """Fit images and videos (told apart by suffix) here or spread over a Ray cluster; same outputs as
    `image` and `video`."""
    if engine not in ("local", "ray"):
        usage_error(f"--engine must be local or ray, not '{engine}'")
    if engine == "local" and (address, workers, gpus_per_worker) != (None, None, None):
        usage_error("--address, --workers and --gpus-per-worker are for --engine ray")
    check_frame_range(start, end)
    show_notices(quiet)
    job = make_job({"image", "video"}, locals())
    runner: Runner
    if engine == "local":
        runner = LocalRunner(job)
    else:
        from bodyfit_cli.batch.ray_engine import RayEngine, import_ray

        check_mesh_format(mesh_format)
        with setup_errors(debug):
            import_ray()
        runner = RayEngine(job, address=address, workers=workers, gpus_per_worker=gpus_per_worker, debug=debug)
    with setup_errors(debug):  # the Ray engine can only tell once started that no worker can run
        failed = process_inputs(
            paths, job, runner, json_lines=json_lines, quiet=quiet, overwrite=overwrite, debug=debug
        )
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def check_frame_range(start: float, end: float | None) -> None:
    if end is not None and end <= start:
        usage_error(f"--end ({end}) must be after --start ({start})")


def check_mesh_format(mesh_format: str) -> None:
    if mesh_format not in ("obj", "ply", "glb"):
        usage_error(f"--mesh-format must be obj, ply or glb, not '{mesh_format}'")


def make_pipelines(job: Job) -> Pipelines:
    """The models and backend, loaded once; what stops every input from running is a usage error."""
    from bodyfit_cli.batch.jobs import Pipelines

    check_mesh_format(job.opts.mesh_format)
    try:
        return Pipelines(job)
    except BodyfitError as e:  # device, method, body model, --out: nothing can run, so a usage error
        usage_error(str(e))
        raise


class Runner(Protocol):
    """An engine: runs the inputs still to do and yields their outcomes as they finish (the progress bar is
    the caller's)."""

    def start(self) -> None:
        """Get ready to run inputs (load the models); called once, only when some input is left to do, and
        before any input is reported, so that what stops every input is the run's one usage error."""

    def __call__(self, items: list[InputItem], progress: Progress) -> Iterator[Outcome]: ...


class LocalRunner:
    """The local engine: one input after the other in this process, with a progress bar of a video's frames.
    The models load in `start`, so a run whose inputs are all finished imports neither torch nor MediaPipe."""

    def __init__(self, job: Job) -> None:
        check_mesh_format(job.opts.mesh_format)  # checks that need nothing loaded come first, done inputs or not
        self.job = job
        self.pipelines: Pipelines | None = None

    def start(self) -> None:
        self.pipelines = make_pipelines(self.job)

    def __call__(self, items: list[InputItem], progress: Progress) -> Iterator[Outcome]:
        from bodyfit_cli.batch.jobs import attempt

        pipelines = self.pipelines
        if not items:
            return
        assert pipelines is not None, "start() runs first"
        for item in items:
            stop_if_ctrl_c()
            task = progress.add_task(item.path.name, total=None, unit="frames")
            outcome = attempt(
                item,
                lambda: pipelines.run(item, lambda done, total: progress.update(task, completed=done, total=total)),
            )
            progress.remove_task(task)
            yield outcome


def process_inputs(
    paths: list[str], job: Job, runner: Runner, *, json_lines: bool, quiet: bool, overwrite: bool, debug: bool
) -> int:
    """The loop of `image`, `video` and `batch` over their inputs: expand the arguments, skip finished inputs
    (their result file exists) unless --overwrite, hand the others to `runner`, one failure never stopping
    the rest; one line per input on stderr, one JSON object per input on stdout with --json, in the order
    inputs finish. Returns the number of failed inputs.

    Which inputs are finished is told from their result paths alone, before `runner.start()` loads anything,
    and `start` runs only when some input is left to do: a re-run with nothing to do loads no model."""
    from bodyfit_cli.batch.jobs import attempt
    from bodyfit_cli.io.inputs import expand_inputs

    bad_args: list[tuple[str, InputError]] = []
    items = expand_inputs(paths, set(job.kinds), stdin=sys.stdin, errors=bad_args)  # a bad argument fails alone
    done_paths = {item: job.result_path(item) for item in items}
    todo = [item for item in items if overwrite or not done_paths[item].is_file()]
    if todo:
        runner.start()  # what stops every input (e.g. an unknown --method) is reported before anything else
    failed = len(bad_args)
    for arg, e in bad_args:
        fail_line(str(e))
        if json_lines:
            emit({"input": arg, "error": str(e)})

    def finish(outcome: Outcome, skip_line: str | None = None) -> None:
        nonlocal failed
        if outcome.result is None:
            failed += 1
            if debug:
                sys.stderr.write(outcome.trace)
            fail_line(outcome.message)
            if json_lines:
                emit({"input": str(outcome.item.path), "error": outcome.error})
            return
        if "decode_error" in outcome.result:
            warn_line(f"{outcome.item.path}: {outcome.result['decode_error']}")
        if not quiet:
            line = skip_line or describe(outcome.item, outcome.result, job.result_path(outcome.item))
            err.print(line, soft_wrap=True, markup=False)  # paths may hold [brackets]
        if json_lines:
            emit(outcome.result)

    with progress_bar(err, disable=quiet, transient=True) as progress:
        task = progress.add_task("inputs", total=len(items), visible=len(items) > 1)
        waiting = set(todo)
        for item in items:
            if item in waiting:
                continue
            done = done_paths[item]
            outcome = attempt(item, lambda: job.load_done(item, done))
            finish(outcome, skip_line=f"skip {item.path} (done: {done}; --overwrite to redo)")
            progress.advance(task)
        for outcome in runner(todo, progress):
            finish(outcome)
            progress.advance(task)
    return failed


def describe(item: InputItem, result: dict, done: Path) -> str:
    """The line a finished input gets on stderr."""
    if "frames" in result:
        tracks = len(result["tracks"])
        return (
            f"{item.path}: {result['frames']} frames, {tracks} {'track' if tracks == 1 else 'tracks'}, "
            f"{result['frames_per_s']} frames/s -> {done}"
        )
    n = len(result["people"])
    return f"{item.path}: {n} {'person' if n == 1 else 'people'} -> {done}"


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


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
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    batch: int = typer.Option(1, min=1, help="People fitted together (time per person = batch time / batch)."),
    prior: str = typer.Option("gmm", help="SMPLify's pose prior: gmm (learned) or simple."),
    init: str = typer.Option(
        "auto",
        help="Initialisation for every method: regressor, spin, mean, or auto (per method: the mean pose for hund, else spin or regressor).",
    ),
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
            keypoints3d=keypoints3d,
            mocap=mocap or [],
            methods=[m.strip() for m in method.split(",") if m.strip()],
            n=n,
            seed=seed,
            json_out=json_out,
            device=device,
            batch=batch,
            prior=prior,
            body_model=body_model,
            model_dir=model_dir,
            console=err,
            init=init,
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
    body_model: str = typer.Option("default", help="default, smpl or smplx."),
    model_dir: Path | None = typer.Option(None, help="Folder with smpl/ or smplx/ model files."),
) -> None:
    """Retarget motion capture to the body model: the pose dataset every learned part trains on."""
    from bodyfit_cli.training.commands import make_pose_dataset
    from bodyfit_cli.training.pose_data import RetargetConfig

    cfg = RetargetConfig(fps=fps, min_move=min_move)
    if hold_out is not None:
        cfg = replace(cfg, hold_out=tuple(s.strip() for s in hold_out.split(",") if s.strip() not in ("", "none")))
    with setup_errors():
        make_pose_dataset(mocap, out, cfg, body_model, model_dir, err)


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
    (train regressor --in-the-loop, train hund --unlabelled)."""
    from bodyfit_cli.training.detections import detect_inputs

    with setup_errors():
        detect_inputs(paths, out, stride, max_people, err)


def _train_network(
    kind: str,
    data: Path,
    out: Path | None,
    checkpoint: Path | None,
    resume: bool,
    device: str,
    body_model: str,
    model_dir: Path | None,
    **config: object,
) -> None:
    from bodyfit_cli.networks.weights import trained_file
    from bodyfit_cli.training.commands import make_network
    from bodyfit_cli.training.networks import NetworkConfig

    out = out or trained_file(kind, body_model)
    checkpoint = checkpoint or Path("data/checkpoints") / f"{out.stem}.ckpt"
    with setup_errors():
        make_network(
            NetworkConfig(kind=kind, **config), data, out, checkpoint, resume, device, body_model, model_dir, err
        )


_DATA = typer.Option(Path("data/poses.npz"), help="Pose dataset from 'bodyfit train data'.")
_OUT = typer.Option(
    None,
    help="Where to write the weights (default: data/models/<kind>_<body-model>.pt; the shipped "
    "ones, which fits use, are models/<kind>_<body-model>.pt).",
)
_CHECKPOINT = typer.Option(None, help="Checkpoint file (default: data/checkpoints/<out name>.ckpt).")
_RESUME = typer.Option(False, "--resume", help="Continue from the checkpoint if there is one.")
_LR = typer.Option(1e-3, help="Peak learning rate.")
_HIDDEN = typer.Option(512, min=8, help="Width of the network.")
_SEED = typer.Option(0, help="Seed for the network's start and every batch.")
_UNLABELLED = typer.Option(
    None, help="Detected people without truth ('bodyfit train detect' files) for self-supervised batches; repeat."
)
_UNLABELLED_EVERY = typer.Option(2, min=1, help="With --unlabelled, every k-th batch is self-supervised.")
_MIX_PARTS = typer.Option(
    0.0,
    min=0.0,
    max=1.0,
    help="Share of training poses whose legs, arms, spine and head "
    "each come, with even odds, from another pose: poses beyond the mocap's.",
)
_TILT = typer.Option(
    0.0,
    min=0.0,
    max=1.0,
    help="Share of training poses turned about a random horizontal axis by up to 100 degrees: "
    "lying, crawling and bending-over orientations the mocap lacks.",
)
_LANDMARKS = typer.Option(
    0.0,
    min=0.0,
    max=1.0,
    help="Share of synthetic views given MediaPipe-like 3D world landmarks; above 0 the network reads the "
    "detector's world landmarks beside the 2D keypoints (people without them still fit from 2D). "
    "With --in-the-loop, the starting regressor's setting is kept.",
)
_REGRESSOR_STARTS = typer.Option(
    0.0,
    min=0.0,
    max=1.0,
    help="Share of training fits that start from the trained regressor's prediction "
    "(models/regressor_<body-model>.pt), as fits do at test time; the rest start from the mean pose or perturbed truth.",
)
_DEVICE = typer.Option("auto", help="auto, cpu or cuda.")
_BODY_MODEL = typer.Option("default", help="default, smpl or smplx.")
_MODEL_DIR = typer.Option(None, help="Folder with smpl/ or smplx/ model files.")


@train_app.command("regressor")
def train_regressor(
    data: Path = _DATA,
    out: Path | None = _OUT,
    checkpoint: Path | None = _CHECKPOINT,
    resume: bool = _RESUME,
    steps: int = typer.Option(2000, min=1, help="Training steps (without --in-the-loop)."),
    tilt: float = _TILT,
    landmarks: float = _LANDMARKS,
    batch: int | None = typer.Option(
        None, min=1, help="Synthetic views per step (default 256; 128 with --in-the-loop)."
    ),
    lr: float | None = typer.Option(None, help="Peak learning rate (default 1e-3; 1e-4 with --in-the-loop)."),
    hidden: int = _HIDDEN,
    seed: int = _SEED,
    device: str = _DEVICE,
    body_model: str = _BODY_MODEL,
    model_dir: Path | None = _MODEL_DIR,
    in_the_loop: list[Path] | None = typer.Option(
        None,
        "--in-the-loop",
        help="Detected people ('bodyfit train detect' files; repeat for several): train "
        "further with fitting in the loop (SPIN), to data/models/regressor_spin_<body-model>.pt unless --out (what "
        "--init/--method spin use: models/regressor_spin_<body-model>.pt).",
    ),
    start_from: Path | None = typer.Option(
        None, help="--in-the-loop: regressor to start from (default: the shipped models/regressor_<body-model>.pt)."
    ),
    epochs: int = typer.Option(20, min=1, help="--in-the-loop: passes over the detected people."),
    people: int = typer.Option(64, min=1, help="--in-the-loop: detected people per step, each fitted by the teacher."),
    max_error: float = typer.Option(
        0.04,
        min=0.0,
        help="--in-the-loop: fits off the keypoints by more than this share of the person's box "
        "diagonal (mean) are not learned from.",
    ),
    teacher: str = typer.Option(
        "lgd",
        help="--in-the-loop: what fits the detected people from the regressor's prediction: lgd, or smplify "
        "(as in SPIN).",
    ),
    mirror: bool = typer.Option(
        True, "--mirror/--no-mirror", help="--in-the-loop: also learn from each person's mirror image."
    ),
) -> None:
    """Train the keypoint regressor (--init regressor, --method regressor) on synthetic views of the pose dataset;
    with --in-the-loop, train it further on detected people with fitting (LGD or SMPLify) in the loop (SPIN)."""
    if in_the_loop:
        from bodyfit_cli.networks.weights import trained_file
        from bodyfit_cli.training.in_the_loop import InTheLoopConfig, run_in_the_loop

        out = out or trained_file("regressor_spin", body_model)
        cfg = InTheLoopConfig(
            epochs=epochs,
            batch=people,
            synthetic_batch=batch or 128,
            lr=lr or 1e-4,
            max_error=max_error,
            teacher=teacher,
            mirror=mirror,
            tilt=tilt,
            seed=seed,
        )
        with setup_errors():
            run_in_the_loop(
                cfg, in_the_loop, data, start_from, out, checkpoint, resume, device, body_model, model_dir, err
            )
        return
    config = {
        "steps": steps,
        "batch": batch or 256,
        "lr": lr or 1e-3,
        "hidden": hidden,
        "tilt": tilt,
        "landmarks": landmarks,
        "seed": seed,
    }
    _train_network("regressor", data, out, checkpoint, resume, device, body_model, model_dir, **config)


@train_app.command("lgd")
def train_lgd(
    data: Path = _DATA,
    out: Path | None = _OUT,
    checkpoint: Path | None = _CHECKPOINT,
    resume: bool = _RESUME,
    steps: int = typer.Option(10000, min=1, help="Training steps (the shipped weights: 10000)."),
    batch: int = typer.Option(128, min=1, help="Synthetic views per step (each runs every descent step)."),
    lgd_steps: int = typer.Option(
        5, min=1, help="Descent steps the network takes per fit (3-5 in the paper; 5 for the shipped weights)."
    ),
    weight_2d: float = typer.Option(
        10.0,
        min=0.0,
        help="Weight of the 2D keypoint loss (against the true projections) beside the 3D and parameter losses.",
    ),
    gradient_step: bool = typer.Option(
        False,
        "--gradient-step",
        help="Each step also moves against the raw gradient by learned step sizes; the "
        "network predicts a correction to that step.",
    ),
    unlabelled: list[Path] | None = _UNLABELLED,
    unlabelled_every: int = _UNLABELLED_EVERY,
    mix_parts: float = _MIX_PARTS,
    tilt: float = _TILT,
    landmarks: float = _LANDMARKS,
    regressor_starts: float = _REGRESSOR_STARTS,
    lr: float = _LR,
    hidden: int = _HIDDEN,
    seed: int = _SEED,
    device: str = _DEVICE,
    body_model: str = _BODY_MODEL,
    model_dir: Path | None = _MODEL_DIR,
) -> None:
    """Train Learned Gradient Descent's update network (--method lgd) on synthetic views of the pose dataset, and
    self-supervised batches of detected people when --unlabelled is given (detections of rendered motion capture
    keep it trained on motion capture only)."""
    config = {
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "hidden": hidden,
        "lgd_steps": lgd_steps,
        "weight_2d": weight_2d,
        "unlabelled": [str(p) for p in unlabelled or []],
        "unlabelled_every": unlabelled_every,
        "mix_parts": mix_parts,
        "tilt": tilt,
        "landmarks": landmarks,
        "regressor_starts": regressor_starts,
        "gradient_step": gradient_step,
        "seed": seed,
    }
    _train_network("lgd", data, out, checkpoint, resume, device, body_model, model_dir, **config)


@train_app.command("hund")
def train_hund(
    data: Path = _DATA,
    out: Path | None = _OUT,
    checkpoint: Path | None = _CHECKPOINT,
    resume: bool = _RESUME,
    unlabelled: list[Path] | None = _UNLABELLED,
    unlabelled_every: int = _UNLABELLED_EVERY,
    steps: int = typer.Option(4000, min=1, help="Training steps."),
    batch: int = typer.Option(128, min=1, help="People per step (each runs every stage)."),
    stages: int = typer.Option(5, min=1, help="Recurrent stages per fit."),
    meta_loss: str = typer.Option("sum", help="Train every stage's result (sum) or only the last (last)."),
    masks: float = typer.Option(0.7, min=0.0, max=1.0, help="Share of synthetic people given a mask."),
    body3d: bool = typer.Option(
        False, "--body3d", help="Stages also read the body's 3D keypoints and joints (pelvis-relative, camera frame)."
    ),
    turns: bool = typer.Option(
        False,
        "--turns",
        help="Stages also read, per limb, the turn of its joint that would align its projection "
        "with the detected limb (closed-form geometry, no gradient).",
    ),
    mix_parts: float = _MIX_PARTS,
    tilt: float = _TILT,
    landmarks: float = _LANDMARKS,
    regressor_starts: float = _REGRESSOR_STARTS,
    lr: float = _LR,
    hidden: int = typer.Option(256, min=8, help="Width of the network (LSTM memory)."),
    seed: int = _SEED,
    device: str = _DEVICE,
    body_model: str = _BODY_MODEL,
    model_dir: Path | None = _MODEL_DIR,
) -> None:
    """Train neural descent's recurrent updater (--method hund): synthetic views of the pose dataset, and
    self-supervised batches of detected people when --unlabelled is given."""
    if meta_loss not in ("sum", "last"):
        usage_error(f"--meta-loss must be sum or last, not '{meta_loss}'")
    config = {
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "hidden": hidden,
        "stages": stages,
        "meta_loss": meta_loss,
        "masks": masks,
        "unlabelled": [str(p) for p in unlabelled or []],
        "unlabelled_every": unlabelled_every,
        "mix_parts": mix_parts,
        "tilt": tilt,
        "landmarks": landmarks,
        "regressor_starts": regressor_starts,
        "body3d": body3d,
        "turns": turns,
        "seed": seed,
    }
    _train_network("hund", data, out, checkpoint, resume, device, body_model, model_dir, **config)


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
