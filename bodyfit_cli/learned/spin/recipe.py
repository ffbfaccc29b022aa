"""SPIN's shipped recipe: `bodyfit train spin` with no options trains this (from the shipped regressor, with
the shipped LGD as the teacher)."""

from __future__ import annotations

from dataclasses import dataclass

from bodyfit_cli.training.config import SHARE, NetworkConfig, help_of, option

FILE = "regressor_spin"  # models/regressor_spin_<body model>.pt: a regressor's weights, trained further
SUMMARY = (
    "Train the keypoint regressor further on detected people with fitting (LGD or SMPLify) in the loop (SPIN): "
    "the regressor --init/--method spin use."
)

TEACHERS = ("lgd", "smplify")


@dataclass
class InTheLoopConfig:
    """A run of SPIN's training with fitting in the loop (`train.py`); stored with the weights. The defaults
    are the shipped spin's recipe."""

    detections: list[str] = option(
        ["data/renders_train.npz", "data/renders_dev.npz", "data/detections_media.npz"],
        "Detected people ('bodyfit train detect' files).",
        argument=True,
    )
    start_from: str | None = option(
        None, "Regressor to start from (default: the shipped models/regressor_<body-model>.pt).", path=True
    )
    epochs: int = option(20, "Passes over the detected people.", min=1)
    batch: int = option(64, "Detected people per step, each fitted by the teacher.", "--people", min=1)
    replay: int = 128  # people with a kept fit, drawn from all epochs' fits, learned from besides the batch
    synthetic_batch: int = option(
        128, "Synthetic mocap views per step, so that the regressor keeps what it knew.", min=1
    )
    lr: float = option(1e-4, "Peak learning rate.")
    warmup: int = 20  # steps of linear warm-up: Adam's first steps would otherwise jolt the trained weights
    fit_weight: float = 1.0  # state losses against the fits
    detection_weight: float = 10.0  # the prediction's keypoints against the detections (box sizes)
    synthetic_weight: float = 1.0
    max_error: float = option(
        0.04,
        "Fits off the keypoints by more than this share of the person's box diagonal (mean) are not learned from.",
        min=0.0,
    )
    max_betas: float = 3.0  # ... and fits with a |beta| beyond this
    min_keypoints: int = 8  # people with fewer detected keypoints are left out
    teacher: str = option(
        "lgd",
        "What fits the detected people from the regressor's prediction: lgd, or smplify (as in SPIN).",
        choices=TEACHERS,
    )
    smplify_iters: int = 60  # teacher smplify: its full stage (its torso stage runs a third of this)
    mirror: bool = option(True, "Also learn from each person's mirror image.")
    shape_sigma: float = 1.0
    tilt: float = option(0.0, help_of(NetworkConfig, "tilt"), **SHARE)
    seed: int = option(0, "Seed for the order of the people and every batch.")
    checkpoint_every: int = 10  # steps
    validation_views: int = 1024


RECIPE = InTheLoopConfig()
OPTIONS = (
    "detections",
    "start_from",
    "epochs",
    "batch",
    "synthetic_batch",
    "lr",
    "max_error",
    "teacher",
    "mirror",
    "tilt",
    "seed",
)
