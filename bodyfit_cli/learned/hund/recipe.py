"""Neural descent's shipped recipe: `bodyfit train hund` with no options trains this."""

from __future__ import annotations

from bodyfit_cli.training.config import REFINER_OPTIONS, NetworkConfig

FILE = "hund"  # models/hund_<body model>.pt
SUMMARY = (
    "Train neural descent's recurrent updater (--method hund): synthetic views of the pose dataset, and "
    "self-supervised batches of detected people."
)
RECIPE = NetworkConfig(
    kind="hund",
    steps=16000,
    batch=128,
    hidden=256,
    stages=4,
    unlabelled=["data/detections_media.npz"],
    unlabelled_every=4,
    body3d=True,
    turns=True,
    landmarks=0.7,
    tilt=0.1,
)
OPTIONS = (
    "unlabelled",
    "unlabelled_every",
    "steps",
    "batch",
    "stages",
    "meta_loss",
    "masks",
    "body3d",
    "turns",
    *REFINER_OPTIONS,
)
