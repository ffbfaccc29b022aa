"""Training the keypoint regressor and the LGD update network on synthetic views of the pose dataset.

Both train the same way: batch `i` of a run is drawn with seed `(seed, i)`, so a run is reproducible and a
run resumed from a checkpoint continues exactly where it stopped. A checkpoint (weights, optimiser, step)
is written every `checkpoint_every` steps; the final weights go to `models/` with the configuration and a
data manifest, and are scored on the validation trials of the pose dataset.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.errors import InputError
from bodyfit_cli.evaluation.benchmark import score
from bodyfit_cli.fitting.init import mean_init
from bodyfit_cli.fitting.lgd import descend
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.io.atomic import atomic_path
from bodyfit_cli.networks import state
from bodyfit_cli.networks.lgd import UpdateNetwork
from bodyfit_cli.networks.regressor import KeypointRegressor
from bodyfit_cli.networks.weights import save_network
from bodyfit_cli.training.objectives import state_loss
from bodyfit_cli.training.pose_data import VALIDATION_TRIALS, PoseDataset
from bodyfit_cli.training.views import Batch, ViewSampler


@dataclass
class NetworkConfig:
    """Everything a training run depends on besides the data; stored with the weights."""

    kind: str  # "regressor" or "lgd"
    steps: int = 2000
    batch: int = 256
    lr: float = 1e-3
    warmup: int = 100
    hidden: int = 512
    blocks: int = 2
    lgd_steps: int = 3
    shape_sigma: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250
    validation_views: int = 1024


# What may differ between a checkpoint and the run resuming it: how long it runs and how it reports.
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "validation_views"}


def same_run(saved: dict, now: dict) -> bool:
    """Whether a checkpoint made with config `saved` can be continued with config `now`."""
    ignore = RESUMABLE_CHANGES | ({"lgd_steps"} if now["kind"] == "regressor" else set())
    return {k: v for k, v in saved.items() if k not in ignore} == {k: v for k, v in now.items() if k not in ignore}


def batch_seed(seed: int, step: int) -> int:
    return seed * 1_000_003 + step


def build(cfg: NetworkConfig, num_betas: int) -> torch.nn.Module:
    if cfg.kind == "regressor":
        return KeypointRegressor(num_betas, cfg.hidden, cfg.blocks)
    return UpdateNetwork(num_betas, cfg.lgd_steps, cfg.hidden, cfg.blocks)


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
    cam = truth.state[:, -3:] + torch.randn(b, 3, generator=gen).to(device) * torch.tensor([0.05, 0.05, 0.2]).to(device) * level
    return torch.cat([x[:, :-3], cam], -1)


def starting_states(model: BodyModel, truth: Batch, gen: torch.Generator) -> torch.Tensor:
    """Half the batch from the mean-pose initialisation, half from perturbed truth."""
    mean = state.encode(model, mean_init(model, truth.obs), truth.box)
    use_mean = (torch.rand(truth.state.shape[0], 1, generator=gen) < 0.5).to(truth.state.device)
    return torch.where(use_mean, mean, perturbed(truth, gen))


def predictions(net: torch.nn.Module, model: BodyModel, batch: Batch, x0: torch.Tensor | None) -> list[torch.Tensor]:
    """The states a network produces for a batch: one for the regressor, one per step for LGD."""
    if isinstance(net, KeypointRegressor):
        return [net(batch.features)]
    assert x0 is not None
    return descend(net, model, batch.obs, x0)


def training_loss(net: torch.nn.Module, model: BodyModel, batch: Batch, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
    """Mean over people (and, for LGD, over steps: every step is trained to be good) of `state_loss`."""
    x0 = None if isinstance(net, KeypointRegressor) else starting_states(model, batch, gen)
    states = predictions(net, model, batch, x0)
    total, terms = 0.0, {}
    for x in states:
        loss, terms = state_loss(model, x, batch)
        total = total + loss.mean() / len(states)
    return total, terms  # terms of the last step


@torch.no_grad()
def validate(net: torch.nn.Module, model: BodyModel, sampler: ViewSampler, views: int, seed: int) -> dict[str, float]:
    """PA-MPJPE and MPJPE (mm, limb keypoints) on fixed views of the validation poses; LGD from the mean pose."""
    net.eval()
    batch = sampler.sample(views, seed)
    x0 = None if isinstance(net, KeypointRegressor) else state.encode(model, mean_init(model, batch.obs), batch.box)
    x = predictions(net, model, batch, x0)[-1]
    pred = state.pose(model, state.decode(x, batch.box)).keypoints
    net.train()
    return {k: float(v.mean()) for k, v in score(pred, batch.keypoints, batch.obs).items() if k != "reproj_px"}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def lr_at(cfg: NetworkConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 2% of `lr`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def train_network(
    cfg: NetworkConfig, model: BodyModel, data_path: Path, out: Path, checkpoint: Path, resume: bool,
    progress: Callable[[int, dict[str, float]], None] = lambda step, logs: None,
) -> dict[str, float]:  # fmt: skip
    """Train, checkpointing as it goes; writes the weights to `out` and returns the validation scores."""
    device = model.v_template.device
    train, val = PoseDataset.load(data_path).split()
    if len(train) == 0 or len(val) == 0:
        raise InputError(f"{data_path}: training needs poses both in and out of the validation trials {VALIDATION_TRIALS}")
    sampler = ViewSampler(model, train, shape_sigma=cfg.shape_sigma)
    torch.manual_seed(cfg.seed)
    net = build(cfg, model.num_betas).to(device)
    if isinstance(net, KeypointRegressor):
        net.mean_state.copy_(sampler.sample(4096, batch_seed(cfg.seed, -1)).state.mean(0))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    start = 0
    if resume and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        if not same_run(saved["config"], asdict(cfg)):
            raise InputError(f"{checkpoint} was made with another configuration; delete it or train without --resume")
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["optimizer"])
        start = int(saved["step"])
    net.train()
    for step in range(start, cfg.steps):
        seed = batch_seed(cfg.seed, step)
        batch = sampler.sample(cfg.batch, seed)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step)
        loss, terms = training_loss(net, model, batch, torch.Generator().manual_seed(seed))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in terms.items()}}
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            with atomic_path(checkpoint) as tmp:
                torch.save({"config": asdict(cfg), "net": net.state_dict(), "optimizer": opt.state_dict(), "step": step + 1}, tmp)
        progress(step + 1, logs)
    val_sampler = ViewSampler(model, val, shape_sigma=cfg.shape_sigma)
    scores = validate(net, model, val_sampler, cfg.validation_views, batch_seed(cfg.seed + 1, 0))
    manifest = {
        "data": str(data_path), "data_sha256": file_digest(data_path), "train_poses": len(train),
        "validation_trials": list(VALIDATION_TRIALS), "validation_poses": len(val), "body_model": model.name,
        "command": "bodyfit " + " ".join(sys.argv[1:]), "validation": scores, "torch": str(torch.__version__),
    }  # fmt: skip
    save_network(out, cfg.kind, net, asdict(cfg), manifest)
    return scores
