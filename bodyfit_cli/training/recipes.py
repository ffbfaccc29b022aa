"""What every training run depends on besides its data, and the shipped recipes: the one place where the
settings of every shipped weight are written down.

`bodyfit train regressor|lgd|hund` with no options trains `RECIPES[kind]`; `bodyfit train spin DETECTIONS`
trains `InTheLoopConfig()`. Each option of those commands takes its default and its help
from here (`help_of`), and `tests/test_recipes.py` checks every shipped weight against them. Nothing here
imports torch, so that the command line can show its options without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

# Weights of the synthetic views' loss terms (`objectives.state_loss`).
WEIGHTS = {"rotations": 1.0, "points3d": 10.0, "keypoints2d": 10.0, "betas": 0.1, "camera": 1.0}


def _opt(default: Any, help: str) -> Any:  # noqa: A002 - the option's help text
    """A config field with the help text its command-line option shows."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class NetworkConfig:
    """A run of the regressor, LGD or hund trainer on synthetic views (`training.networks`); stored with the
    weights. The defaults are the trainer's generic ones; the shipped recipes are `RECIPES`."""

    kind: str  # "regressor", "lgd" or "hund"
    steps: int = _opt(2000, "Training steps.")
    batch: int = _opt(256, "Synthetic views per step (LGD and hund run every step or stage on each).")
    lr: float = _opt(1e-3, "Peak learning rate.")
    warmup: int = 100
    hidden: int = _opt(512, "Width of the network (hund: its LSTM memory).")
    blocks: int = 2
    lgd_steps: int = _opt(5, "Descent steps the network takes per fit (3-5 in the paper).")
    stages: int = _opt(5, "Recurrent stages per fit.")
    meta_loss: str = _opt("sum", "Train every step's result (sum, their mean) or only the last (last).")
    masks: float = _opt(0.7, "Share of synthetic people given a mask.")
    unlabelled: list[str] = _opt(
        [],
        "Detected people without truth ('bodyfit train detect' files) for self-supervised batches; repeat; "
        "none for no self-supervised batches.",
    )
    unlabelled_every: int = _opt(2, "With --unlabelled, every k-th batch is self-supervised.")
    shape_sigma: float = 1.0
    mix_parts: float = _opt(
        0.0,
        "Share of training poses whose legs, arms, spine and head each come, with even odds, from another pose: "
        "poses beyond the mocap's.",
    )
    tilt: float = _opt(
        0.0,
        "Share of training poses turned about a random horizontal axis by up to 100 degrees: lying, crawling "
        "and bending-over orientations the mocap lacks.",
    )
    landmarks: float = _opt(
        0.0,
        "Share of synthetic views given MediaPipe-like 3D world landmarks; above 0 the network reads the "
        "detector's world landmarks beside the 2D keypoints (people without them still fit from 2D).",
    )
    regressor_starts: float = _opt(
        0.0,
        "Share of training fits that start from the trained regressor's prediction (models/regressor_<body-model>.pt), "
        "as fits do at test time; the rest start from the mean pose or perturbed truth.",
    )
    gradient_step: bool = _opt(
        False,
        "Each step also moves against the raw gradient by learned step sizes; the network predicts a correction "
        "to that step.",
    )
    body3d: bool = _opt(False, "Stages also read the body's 3D keypoints and joints (pelvis-relative, camera frame).")
    turns: bool = _opt(
        False,
        "Stages also read, per limb, the turn of its joint that would align its projection with the detected limb "
        "(closed-form geometry, no gradient).",
    )
    weight_2d: float = _opt(
        WEIGHTS["keypoints2d"],
        "Weight of the 2D keypoint loss (against the true projections) beside the 3D and parameter losses.",
    )
    seed: int = _opt(0, "Seed for the network's start and every batch.")
    checkpoint_every: int = 250
    validation_views: int = 1024


_BASE = NetworkConfig(kind="")
# The shipped weights' recipes, trained in the order of docs/methods.md (the files they read first).
RECIPES: dict[str, NetworkConfig] = {
    "regressor": replace(_BASE, kind="regressor", steps=2000, batch=256, landmarks=0.7, tilt=0.2),
    "lgd": replace(
        _BASE, kind="lgd", steps=10000, batch=128, unlabelled=["data/renders_train.npz"], unlabelled_every=4
    ),
    "hund": replace(
        _BASE,
        kind="hund",
        steps=8000,
        batch=128,
        hidden=256,
        stages=4,
        unlabelled=["data/detections_media.npz"],
        unlabelled_every=4,
        body3d=True,
        turns=True,
        landmarks=0.7,
        tilt=0.1,
    ),
}

TEACHERS = ("lgd", "smplify")


@dataclass
class InTheLoopConfig:
    """A run of SPIN's training with fitting in the loop (`training.in_the_loop`); stored with the weights.
    The defaults are the shipped spin's recipe."""

    epochs: int = _opt(20, "Passes over the detected people.")
    batch: int = _opt(64, "Detected people per step, each fitted by the teacher.")
    replay: int = 128  # people with a kept fit, drawn from all epochs' fits, learned from besides the batch
    synthetic_batch: int = _opt(128, "Synthetic mocap views per step, so that the regressor keeps what it knew.")
    lr: float = _opt(1e-4, "Peak learning rate.")
    warmup: int = 20  # steps of linear warm-up: Adam's first steps would otherwise jolt the trained weights
    fit_weight: float = 1.0  # state losses against the fits
    detection_weight: float = 10.0  # the prediction's keypoints against the detections (box sizes)
    synthetic_weight: float = 1.0
    max_error: float = _opt(
        0.04,
        "Fits off the keypoints by more than this share of the person's box diagonal (mean) are not learned from.",
    )
    max_betas: float = 3.0  # ... and fits with a |beta| beyond this
    min_keypoints: int = 8  # people with fewer detected keypoints are left out
    teacher: str = _opt(
        "lgd", "What fits the detected people from the regressor's prediction: lgd, or smplify (as in SPIN)."
    )
    smplify_iters: int = 60  # teacher smplify: its full stage (its torso stage runs a third of this)
    mirror: bool = _opt(True, "Also learn from each person's mirror image.")
    shape_sigma: float = 1.0
    tilt: float = _opt(0.0, NetworkConfig.__dataclass_fields__["tilt"].metadata["help"])
    seed: int = _opt(0, "Seed for the order of the people and every batch.")
    checkpoint_every: int = 10  # steps
    validation_views: int = 1024


def help_of(config: type, name: str) -> str:
    """The help text of option `name` of a config class."""
    return {f.name: f.metadata.get("help", "") for f in fields(config)}[name]
