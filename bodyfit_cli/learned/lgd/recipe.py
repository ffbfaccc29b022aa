"""Learned Gradient Descent's shipped recipe: `bodyfit train lgd` with no options trains this."""

from __future__ import annotations

from bodyfit_cli.training.config import REFINER_OPTIONS, NetworkConfig

FILE = "lgd"  # models/lgd_<body model>.pt
SUMMARY = (
    "Train Learned Gradient Descent's update network (--method lgd) on synthetic views of the pose dataset, and "
    "self-supervised batches of detected people (detections of rendered motion capture keep it trained on motion "
    "capture only)."
)
RECIPE = NetworkConfig(kind="lgd", steps=10000, batch=128, unlabelled=["data/renders_train.npz"], unlabelled_every=4)
OPTIONS = (
    "steps",
    "batch",
    "lgd_steps",
    "weight_2d",
    "gradient_step",
    "unlabelled",
    "unlabelled_every",
    *REFINER_OPTIONS,
)
