"""The trainer the regressor, LGD and neural descent share: synthetic views of the pose dataset, with truth,
and optionally self-supervised batches of people detected in images (`bodyfit train detect`), without
truth, alternating with the synthetic ones as in HUND.

What differs between methods is a `TrainingStep` (each method's `train.py`): how its network is built from
the config and what states its forward pass produces. All train the same way: batch `i` of a run is drawn with seed `(seed, i)`, so a run is reproducible and a
run resumed from a checkpoint continues exactly where it stopped. A checkpoint (weights, optimiser, step)
is written every `checkpoint_every` steps; the final weights go to `models/` with the configuration and a
data manifest, and are scored on the validation trials of the pose dataset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.core.types import Observations
from bodyfit_cli.errors import InputError
from bodyfit_cli.evaluation.benchmark import score
from bodyfit_cli.fitting.init import mean_init
from bodyfit_cli.fitting.priors import PosePrior, load_prior
from bodyfit_cli.fitting.silhouette import Silhouettes
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.networks import state
from bodyfit_cli.networks.weights import save_network
from bodyfit_cli.training.config import WEIGHTS, NetworkConfig
from bodyfit_cli.training.objectives import state_loss, unlabelled_loss
from bodyfit_cli.training.runs import (
    file_digest,
    load_checkpoint,
    manifest,
    save_checkpoint,
    training_poses,
)
from bodyfit_cli.training.views import Batch, ViewSampler

# What may differ between a checkpoint and the run resuming it: how long it runs and how it reports.
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "validation_views"}


@dataclass(frozen=True)
class TrainingStep:
    """What the trainer needs from a learned method (its `train.py`)."""

    build: Callable[[NetworkConfig, int], nn.Module]  # the network for a config and a number of betas
    # The states the network produces for a batch: one for a regressor, one per step or stage for a refiner.
    predictions: Callable[[Learner, Observations, torch.Tensor, torch.Tensor | None], list[torch.Tensor]]
    refines: bool = True  # it starts from a state (LGD, hund), not from the keypoints alone (the regressor)
    masks: bool = False  # it reads person masks: synthetic views get some, and a silhouette renderer is made
    unused: frozenset[str] = frozenset()  # config fields it never reads (a checkpoint may differ in them)
    # Called once on the new network before training, with the sampler and the run's seed.
    prepare: Callable[[nn.Module, ViewSampler, int], None] | None = None
    # With `regressor_starts`: the trained regressor some fits start from, and the file it was read from.
    start_regressor: Callable[[BodyModel], tuple[nn.Module, Path]] | None = None


# How a training run reports as it goes: steps done, steps in all, and the last step's losses.
Progress = Callable[[int, int, dict[str, float]], None]


def describe(logs: dict[str, float]) -> str:
    """The progress line of a step: its loss and 3D error, or nothing for a self-supervised batch (the last
    synthetic one's stays shown)."""
    return f"loss {logs['loss']:.3f}, 3D error {logs['points3d'] * 1000:.0f} mm" if "points3d" in logs else ""


def resumable(step: TrainingStep, kind: str) -> tuple[set[str], dict]:
    """What a checkpoint of `kind` may differ in from the run resuming it, and what options added after it was
    written were for it (only their generic defaults match it)."""
    return RESUMABLE_CHANGES | step.unused, asdict(NetworkConfig(kind=kind))


def batch_seed(seed: int, step: int) -> int:
    return seed * 1_000_003 + step


def perturbed(truth: Batch, gen: torch.Generator) -> torch.Tensor:
    """Truth states with random errors of random size: rotations up to ~30 degrees per joint, shape,
    box-relative position and depth. LGD starts from these (and from the mean pose) in training, which
    covers what a regressor or a previous video frame hands it."""
    b, device = truth.state.shape[0], truth.state.device
    level = torch.rand(b, 1, generator=gen).to(device)
    aa = torch.randn(b, truth.rotations.shape[1], 3, generator=gen).to(device) * 0.3 * level[..., None]
    rotations = truth.rotations @ axis_angle_to_matrix(aa)
    betas = truth.betas + torch.randn(truth.betas.shape, generator=gen).to(device) * level
    x = state.encode_parts(rotations, betas, torch.zeros(b, 3, device=device), truth.box)
    cam = (
        truth.state[:, -3:]
        + torch.randn(b, 3, generator=gen).to(device) * torch.tensor([0.05, 0.05, 0.2]).to(device) * level
    )
    return torch.cat([x[:, :-3], cam], -1)


def starting_states(
    model: BodyModel,
    truth: Batch,
    gen: torch.Generator,
    regressor: torch.nn.Module | None = None,
    share: float = 0.0,
) -> torch.Tensor:
    """Half the batch from the mean-pose initialisation, half from perturbed truth; then, with a `regressor`,
    a `share` of the batch from its prediction instead, which is where a fit starts at test time: its errors
    are plausible bodies in the wrong pose, not the random per-joint errors of perturbed truth."""
    b, device = truth.state.shape[0], truth.state.device
    mean = state.encode(model, mean_init(model, truth.obs), truth.box)
    use_mean = (torch.rand(b, 1, generator=gen) < 0.5).to(device)
    x = torch.where(use_mean, mean, perturbed(truth, gen))
    if regressor is None or share <= 0:
        return x
    use_regressor = (torch.rand(b, 1, generator=gen) < share).to(device)
    with torch.no_grad():
        # The regressor reads the features it was trained on (with world landmarks or not), whatever this network reads.
        features = state.keypoint_features(truth.obs, truth.box, regressor.world)
        return torch.where(use_regressor, regressor(features), x)


@dataclass
class Learner:
    """A network being trained and what its forward pass and losses need besides a batch."""

    step: TrainingStep
    net: torch.nn.Module
    model: BodyModel
    cfg: NetworkConfig
    silhouettes: Silhouettes | None = None  # methods that read masks, and self-supervised batches
    prior: PosePrior | None = None  # with unlabelled data
    regressor: torch.nn.Module | None = None  # with regressor_starts

    def predictions(self, obs: Observations, features: torch.Tensor, x0: torch.Tensor | None) -> list[torch.Tensor]:
        """The states the network produces (`TrainingStep.predictions`)."""
        return self.step.predictions(self, obs, features, x0)

    def stage_weights(self, n: int) -> list[float]:
        """The meta-loss: every step's result counts ("sum", as their mean) or only the "last" one."""
        return [1.0 / n] * n if self.cfg.meta_loss == "sum" else [0.0] * (n - 1) + [1.0]

    def loss(self, batch: Batch, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        """Mean over people, weighed over steps by the meta-loss, of `state_loss`."""
        x0 = (
            starting_states(self.model, batch, gen, self.regressor, self.cfg.regressor_starts)
            if self.step.refines
            else None
        )
        states = self.predictions(batch.obs, batch.features, x0)
        weights = {**WEIGHTS, "keypoints2d": self.cfg.weight_2d}
        total, terms = 0.0, {}
        for w, x in zip(self.stage_weights(len(states)), states):
            loss, terms = state_loss(self.model, x, batch, weights)
            total = total + w * loss.mean()
        return total, terms  # terms of the last step

    def unlabelled_loss(self, obs: Observations) -> tuple[torch.Tensor, dict]:
        """The same for detected people, from the mean pose, with `objectives.unlabelled_loss`."""
        assert self.silhouettes is not None and self.prior is not None
        box = person_box(obs)
        x0 = state.encode(self.model, mean_init(self.model, obs), box)
        states = self.predictions(obs, state.keypoint_features(obs, box), x0)
        total, terms = 0.0, {}
        for w, x in zip(self.stage_weights(len(states)), states):
            if w > 0:
                loss, terms = unlabelled_loss(self.model, self.silhouettes, self.prior, x, obs)
                total = total + w * loss.mean()
        return total, {f"self_{k}": v for k, v in terms.items()}


@torch.no_grad()
def validate(learner: Learner, sampler: ViewSampler, views: int, seed: int) -> dict[str, float]:
    """PA-MPJPE and MPJPE (mm, limb keypoints) on fixed views of the validation poses; LGD and hund from
    the mean pose."""
    net, model = learner.net, learner.model
    net.eval()
    batch = sampler.sample(views, seed)
    x0 = state.encode(model, mean_init(model, batch.obs), batch.box) if learner.step.refines else None
    x = learner.predictions(batch.obs, batch.features, x0)[-1]
    pred = state.pose(model, state.decode(x, batch.box)).keypoints
    net.train()
    return {k: float(v.mean()) for k, v in score(pred, batch.keypoints, batch.obs).items() if k != "reproj_px"}


class UnlabelledSampler:
    """Batches of detected people (`bodyfit train detect` files), drawn with a seed like the synthetic ones."""

    def __init__(self, paths: list[Path], device: torch.device) -> None:
        from bodyfit_cli.training.detections import DetectionSet

        self.data = DetectionSet.concatenate([DetectionSet.load(p) for p in paths])
        if len(self.data) == 0:
            raise InputError(f"no people in the unlabelled detection files {', '.join(map(str, paths))}")
        self.device = device

    def __len__(self) -> int:
        return len(self.data)

    def sample(self, size: int, seed: int) -> Observations:
        index = torch.randint(len(self.data), (size,), generator=torch.Generator().manual_seed(seed))
        return self.data.observations(index.numpy(), self.device)


def lr_at(cfg: NetworkConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 2% of `lr`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def train_network(
    step: TrainingStep,
    cfg: NetworkConfig,
    model: BodyModel,
    data_path: Path,
    out: Path,
    checkpoint: Path,
    resume: bool,
    progress: Progress = lambda done, total, logs: None,
) -> dict[str, float]:
    """Train `step`'s network, checkpointing as it goes; writes the weights to `out` and returns the validation
    scores."""
    device = model.v_template.device
    train, val = training_poses(data_path)
    masks = cfg.masks if step.masks else 0.0
    landmarks = cfg.landmarks if cfg.landmarks > 0 else None
    sampler = ViewSampler(
        model,
        train,
        shape_sigma=cfg.shape_sigma,
        masks=masks,
        mix_parts=cfg.mix_parts,
        tilt=cfg.tilt,
        landmarks=landmarks,
    )
    unlabelled = UnlabelledSampler([Path(p) for p in cfg.unlabelled], device) if cfg.unlabelled else None
    torch.manual_seed(cfg.seed)
    net = step.build(cfg, model.num_betas).to(device)
    learner = Learner(step, net, model, cfg)
    if step.masks or unlabelled is not None:
        learner.silhouettes = Silhouettes(model)
        learner.prior = load_prior("gmm", device) if unlabelled is not None else None
    regressor_file = None
    if cfg.regressor_starts > 0 and step.start_regressor is not None:
        learner.regressor, regressor_file = step.start_regressor(model)
    if step.prepare is not None:
        step.prepare(net, sampler, cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    start = 0
    if resume and checkpoint.is_file():
        saved = load_checkpoint(checkpoint, device, asdict(cfg), *resumable(step, cfg.kind))
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["optimizer"])
        start = int(saved["step"])
    net.train()
    for i in range(start, cfg.steps):
        seed = batch_seed(cfg.seed, i)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, i)
        if unlabelled is not None and i % cfg.unlabelled_every == cfg.unlabelled_every - 1:
            loss, terms = learner.unlabelled_loss(unlabelled.sample(cfg.batch, seed))
        else:
            loss, terms = learner.loss(sampler.sample(cfg.batch, seed), torch.Generator().manual_seed(seed))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in terms.items()}}
        if (i + 1) % cfg.checkpoint_every == 0 or i + 1 == cfg.steps:
            save_checkpoint(checkpoint, asdict(cfg), i + 1, net=net.state_dict(), optimizer=opt.state_dict())
        progress(i + 1, cfg.steps, logs)
    val_sampler = ViewSampler(model, val, shape_sigma=cfg.shape_sigma, masks=masks, landmarks=landmarks)
    scores = validate(learner, val_sampler, cfg.validation_views, batch_seed(cfg.seed + 1, 0))
    learned_from = {
        "unlabelled": {p: file_digest(Path(p)) for p in cfg.unlabelled},
        "unlabelled_people": len(unlabelled) if unlabelled is not None else 0,
        "regressor": file_digest(regressor_file) if regressor_file is not None else None,
    }
    save_network(out, cfg.kind, net, asdict(cfg), manifest(data_path, train, val, model, scores, **learned_from))
    return scores
