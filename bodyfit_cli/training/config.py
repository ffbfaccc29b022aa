"""What a training run depends on besides its data: the configuration of the synthetic-view trainer
(`training.trainer`) that the regressor, LGD and hund train with, and how a config field declares the
command-line option it is.

Each learned method's shipped recipe is a config instance in its own folder (`learned/<method>/recipe.py`);
`bodyfit train <method>` takes each option's default from that recipe and its help, flag names and limits
from the field here. Nothing here imports torch, so that the command line can show its options without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# Weights of the synthetic views' loss terms (`objectives.state_loss`).
WEIGHTS = {"rotations": 1.0, "points3d": 10.0, "keypoints2d": 10.0, "betas": 0.1, "camera": 1.0}


SHARE = {"min": 0.0, "max": 1.0}  # the limits of an option that is a share of the batch


def option(default: Any, help: str, *decls: str, **limits: Any) -> Any:  # noqa: A002 - the option's help text
    """A config field that its training command shows as an option: its help text, its flag names where they
    are not the field's own (`--field-name`, `--flag/--no-flag` for booleans) and its limits (`min`, `max`,
    `choices`); `argument=True` makes it the command's positional argument, `path=True` a file's name."""
    metadata = {"help": help, "decls": decls, "limits": limits}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class NetworkConfig:
    """A run of the trainer on synthetic views (`training.trainer`); stored with the weights. The defaults
    are the trainer's generic ones; the shipped recipes are each method's `recipe.RECIPE`."""

    kind: str  # "regressor", "lgd" or "hund"
    steps: int = option(2000, "Training steps.", min=1)
    batch: int = option(256, "Synthetic views per step (LGD and hund run every step or stage on each).", min=1)
    lr: float = option(1e-3, "Peak learning rate.")
    warmup: int = 100
    hidden: int = option(512, "Width of the network (hund: its LSTM memory).", min=8)
    blocks: int = 2
    lgd_steps: int = option(5, "Descent steps the network takes per fit (3-5 in the paper).", min=1)
    stages: int = option(5, "Recurrent stages per fit.", min=1)
    meta_loss: str = option(
        "sum", "Train every step's result (sum, their mean) or only the last (last).", choices=("sum", "last")
    )
    masks: float = option(0.7, "Share of synthetic people given a mask.", **SHARE)
    unlabelled: list[str] = option(
        [],
        "Detected people without truth ('bodyfit train detect' files) for self-supervised batches; repeat; "
        "none for no self-supervised batches.",
    )
    unlabelled_every: int = option(2, "With --unlabelled, every k-th batch is self-supervised.", min=1)
    shape_sigma: float = 1.0
    mix_parts: float = option(
        0.0,
        "Share of training poses whose legs, arms, spine and head each come, with even odds, from another pose: "
        "poses beyond the mocap's.",
        **SHARE,
    )
    tilt: float = option(
        0.0,
        "Share of training poses turned about a random horizontal axis by up to 100 degrees: lying, crawling "
        "and bending-over orientations the mocap lacks.",
        **SHARE,
    )
    landmarks: float = option(
        0.0,
        "Share of synthetic views given MediaPipe-like 3D world landmarks; above 0 the network reads the "
        "detector's world landmarks beside the 2D keypoints (people without them still fit from 2D).",
        **SHARE,
    )
    regressor_starts: float = option(
        0.0,
        "Share of training fits that start from the trained regressor's prediction (models/regressor_<body-model>.pt), "
        "as fits do at test time; the rest start from the mean pose or perturbed truth.",
        **SHARE,
    )
    gradient_step: bool = option(
        False,
        "Each step also moves against the raw gradient by learned step sizes; the network predicts a correction "
        "to that step.",
        "--gradient-step",
    )
    body3d: bool = option(False, "Stages also read the body's 3D keypoints and joints (pelvis-relative, camera frame).")
    turns: bool = option(
        False,
        "Stages also read, per limb, the turn of its joint that would align its projection with the detected limb "
        "(closed-form geometry, no gradient).",
    )
    weight_2d: float = option(
        WEIGHTS["keypoints2d"],
        "Weight of the 2D keypoint loss (against the true projections) beside the 3D and parameter losses.",
        min=0.0,
    )
    seed: int = option(0, "Seed for the network's start and every batch.")
    checkpoint_every: int = 250
    validation_views: int = 1024


# The options every refining method's command shows after its own: poses, starts, and the run's basics.
REFINER_OPTIONS = ("mix_parts", "tilt", "landmarks", "regressor_starts", "lr", "hidden", "seed")


def help_of(config: type, name: str) -> str:
    """The help text of option `name` of a config class."""
    return {f.name: f.metadata.get("help", "") for f in fields(config)}[name]
