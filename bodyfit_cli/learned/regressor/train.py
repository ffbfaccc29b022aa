"""Training the keypoint regressor: the shared trainer, with one state predicted from the keypoints alone."""

from __future__ import annotations

from functools import partial

import torch

from bodyfit_cli.core.types import Observations
from bodyfit_cli.learned.regressor.network import KeypointRegressor
from bodyfit_cli.training.config import NetworkConfig
from bodyfit_cli.training.trainer import Learner, TrainingStep, batch_seed, describe, train_network
from bodyfit_cli.training.views import ViewSampler


def build(cfg: NetworkConfig, num_betas: int) -> KeypointRegressor:
    return KeypointRegressor(num_betas, cfg.hidden, cfg.blocks, world=cfg.landmarks > 0)


def predictions(
    learner: Learner, obs: Observations, features: torch.Tensor, x0: torch.Tensor | None
) -> list[torch.Tensor]:
    return [learner.net(features)]


def start_at_the_mean(net: torch.nn.Module, sampler: ViewSampler, seed: int) -> None:
    """Predictions are offsets from the training views' mean state."""
    net.mean_state.copy_(sampler.sample(4096, batch_seed(seed, -1)).state.mean(0))


STEP = TrainingStep(build, predictions, refines=False, unused=frozenset({"lgd_steps"}), prepare=start_at_the_mean)
# What `bodyfit train` runs, as in every learned method's train.py: `train(cfg, model, data, out, checkpoint,
# resume, progress)`, returning the validation scores, and `describe(logs)`, a step's progress line.
train = partial(train_network, STEP)
__all__ = ["STEP", "describe", "train"]
