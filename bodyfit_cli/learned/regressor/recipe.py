"""The keypoint regressor's shipped recipe: `bodyfit train regressor` with no options trains this."""

from __future__ import annotations

from bodyfit_cli.training.config import NetworkConfig

FILE = "regressor"  # models/regressor_<body model>.pt
SUMMARY = "Train the keypoint regressor (--init regressor, --method regressor) on synthetic views of the pose dataset."
RECIPE = NetworkConfig(kind="regressor", steps=40000, batch=256, hidden=1024, landmarks=0.7, tilt=0.2)
OPTIONS = ("steps", "batch", "lr", "hidden", "tilt", "landmarks", "seed")
