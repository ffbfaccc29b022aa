"""Training LGD's update network: the shared trainer, through every descent step from the starting state."""

from __future__ import annotations

from functools import partial

import torch

from bodyfit_cli.core.types import Observations
from bodyfit_cli.learned.lgd.fit import descend
from bodyfit_cli.learned.lgd.network import UpdateNetwork
from bodyfit_cli.learned.regressor.fit import mocap_regressor
from bodyfit_cli.training.config import NetworkConfig
from bodyfit_cli.training.trainer import Learner, TrainingStep, describe, train_network


def build(cfg: NetworkConfig, num_betas: int) -> UpdateNetwork:
    return UpdateNetwork(num_betas, cfg.lgd_steps, cfg.hidden, cfg.blocks, cfg.gradient_step, world=cfg.landmarks > 0)


def predictions(
    learner: Learner, obs: Observations, features: torch.Tensor, x0: torch.Tensor | None
) -> list[torch.Tensor]:
    assert x0 is not None and isinstance(learner.net, UpdateNetwork)
    return descend(learner.net, learner.model, obs, x0)


STEP = TrainingStep(build, predictions, start_regressor=mocap_regressor)
# What `bodyfit train` runs, as in every learned method's train.py: `train(cfg, model, data, out, checkpoint,
# resume, progress)`, returning the validation scores, and `describe(logs)`, a step's progress line.
train = partial(train_network, STEP)
__all__ = ["STEP", "describe", "train"]
