"""`bodyfit batch --engine ray`: inputs spread over a Ray cluster.

A pool of actors (Ray's `ActorPool`) each builds its pipelines once, so models load once per worker, not
per input; a free actor takes the next input, and outcomes come back as they finish. Workers write every
output themselves with the atomic writers, so a killed worker or driver leaves no half-written result.
Ray is an optional extra, imported only here and only when asked for.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bodyfit_cli.batch.jobs import Job, Outcome, Pipelines, attempt
from bodyfit_cli.errors import BodyfitError, EngineError
from bodyfit_cli.io.inputs import InputItem

if TYPE_CHECKING:
    from rich.progress import Progress

INSTALL_HINT = "--engine ray needs Ray, which is not installed: pip install 'bodyfit[ray]'"
# Seconds a cluster at `--address` has to take a connection; Ray itself retries for minutes, silently.
CONNECT_TIMEOUT_S = 30.0
log = logging.getLogger("bodyfit")


def import_ray() -> ModuleType:
    """Ray, or the one-line way to get it."""
    try:
        import ray
    except ImportError as e:
        raise EngineError(INSTALL_HINT) from e
    return ray


class Worker:
    """A Ray actor's state: its pipelines, built once, in the driver's working directory (inputs and --out
    may be relative to it; every node of a cluster must see the files under the same paths)."""

    def __init__(self, job: Job, cwd: str) -> None:
        self.job = job
        self.cwd = cwd
        self.pipelines: Pipelines | None = None

    def start(self) -> None:
        """Load the models; an error users can cause (device, body model, --out) comes back as itself."""
        try:
            os.chdir(self.cwd)
        except OSError as e:
            raise EngineError(f"a Ray worker cannot use the working directory {self.cwd} ({e.strerror or e})") from e
        self.pipelines = Pipelines(self.job)

    def run(self, item: InputItem) -> Outcome:
        pipelines = self.pipelines
        assert pipelines is not None, "start() runs first"
        return attempt(item, lambda: pipelines.run(item))


@dataclass
class RayEngine:
    """Runs inputs on a Ray cluster: `address` None attaches to $RAY_ADDRESS or starts a local cluster;
    `workers` None fills the cluster; `gpus_per_worker` None gives each worker a GPU where there are any."""

    job: Job
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    debug: bool = False

    def start(self) -> None:
        """Nothing loads in the driver: each worker loads its models when the cluster starts it (in `__call__`)."""

    def __call__(self, items: list[InputItem], progress: Progress) -> Iterator[Outcome]:
        """The outcomes of `items`, in the order they finish (`progress` is advanced by the caller)."""
        if not items:  # everything was done already: no cluster needed
            return
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            self.connect(ray)
        actors: list[Any] = []
        try:
            actors = self.start_workers(ray, len(items))
            yield from dispatch(ray, actors, items)
        finally:
            for actor in actors:
                ray.kill(actor)
            if started:
                ray.shutdown()

    def connect(self, ray: ModuleType) -> None:
        """Attach quietly: Ray's own logs and the workers' output would break the one-line-per-input stderr
        (--debug shows them)."""
        check_reachable(self.address or os.environ.get("RAY_ADDRESS"))
        try:
            ray.init(
                address=self.address,
                logging_level=logging.INFO if self.debug else logging.ERROR,
                log_to_driver=self.debug,
            )
        except (ConnectionError, ValueError, RuntimeError) as e:
            where = f"at {self.address}" if self.address else "(local)"
            raise EngineError(f"cannot start or reach the Ray cluster {where}: {e}") from e

    def start_workers(self, ray: ModuleType, n_items: int) -> list[Any]:
        """As many actors as the cluster has room for (one CPU, `gpus_per_worker` GPUs each), at most one per
        input, models loaded; an error that stops every worker is raised as itself (a usage error)."""
        resources = ray.cluster_resources()
        cpus, gpus_total = int(resources.get("CPU", 1)), float(resources.get("GPU", 0.0))
        gpus = self.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if gpus_total >= 1 and self.job.opts.device != "cpu" else 0.0
        if gpus > gpus_total:
            raise EngineError(f"--gpus-per-worker {gpus:g}: the Ray cluster has {gpus_total:g} GPUs")
        room = min(cpus, int(gpus_total / gpus + 1e-9)) if gpus else cpus
        if self.workers is not None and self.workers > room:
            log.info("--workers %d: the Ray cluster has room for %d", self.workers, room)
        n = max(1, min(self.workers or room, room, n_items))
        actor_class = ray.remote(Worker).options(num_cpus=1, num_gpus=gpus, max_restarts=0)
        actors = [actor_class.remote(self.job, os.getcwd()) for _ in range(n)]
        try:
            ray.get([actor.start.remote() for actor in actors])
        except ray.exceptions.RayTaskError as e:
            for actor in actors:
                ray.kill(actor)
            if isinstance(e.cause, BodyfitError):
                raise e.cause from None
            raise
        return actors


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail with one line when the cluster at `address` (`HOST:PORT` or `ray://HOST:PORT`) does not take a
    connection within `timeout` seconds, or refuses it; `auto`, None and what is not HOST:PORT are Ray's to
    resolve (and to reject)."""
    if not address:
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except TimeoutError as e:
        raise EngineError(f"cannot reach the Ray cluster at {address}: no answer within {timeout:g} s") from e
    except OSError as e:  # refused, unknown host, no route
        raise EngineError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from e


def dispatch(ray: ModuleType, actors: list[Any], items: list[InputItem]) -> Iterator[Outcome]:
    """Every input through Ray's `ActorPool`, outcomes as they finish; inputs a dying worker took with it
    end as failed inputs (the pool keeps going on the workers left)."""
    from ray.util.actor_pool import ActorPool

    pool = ActorPool(actors)
    for item in items:
        pool.submit(lambda actor, item: actor.run.remote(item), item)
    unfinished = dict.fromkeys(items)
    while pool.has_next():
        try:
            outcome = pool.get_next_unordered()
        except ray.exceptions.RayActorError:  # which input it held is not known here: see below
            continue
        unfinished.pop(outcome.item, None)
        yield outcome
    for item in unfinished:
        error = "not finished: its Ray worker died (run with --debug for Ray's logs)"
        yield Outcome(item, error=error, message=f"{item.path}: {error}")
