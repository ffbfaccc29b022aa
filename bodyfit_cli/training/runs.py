"""What every network trainer shares: the pose dataset's split, checkpoints that only resume the same run,
and the manifest written with the weights (the shared trainer, `training.trainer`, and SPIN's, `learned/spin/train.py`, use these).

A checkpoint holds the run's configuration, its step and whatever state the trainer needs to go on exactly
where it stopped; it is written atomically, so a run killed mid-write resumes from the one before.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.errors import InputError
from bodyfit_cli.io.atomic import atomic_path
from bodyfit_cli.training.pose_data import VALIDATION_TRIALS, PoseDataset


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def training_poses(data_path: Path) -> tuple[PoseDataset, PoseDataset]:
    """The pose dataset's training and validation trials; a one-line error when either is empty."""
    train, val = PoseDataset.load(data_path).split()
    if len(train) == 0 or len(val) == 0:
        raise InputError(
            f"{data_path}: training needs poses both in and out of the validation trials {VALIDATION_TRIALS}"
        )
    return train, val


def same_config(saved: dict, now: dict, ignore: set[str], before: dict[str, Any]) -> bool:
    """Whether a run with config `now` continues the one that saved `saved`: equal but for `ignore` (how long
    it runs, how it reports); options added since the checkpoint was written take `before`, what runs did
    without them."""
    saved = {**before, **saved}
    return {k: v for k, v in saved.items() if k not in ignore} == {k: v for k, v in now.items() if k not in ignore}


def save_checkpoint(path: Path, config: dict, step: int, **state: Any) -> None:
    with atomic_path(path) as tmp:
        torch.save({"config": config, "step": step, **state}, tmp)


def load_checkpoint(
    path: Path, device: torch.device, config: dict, ignore: set[str], before: dict[str, Any], **same: Any
) -> dict:
    """The checkpoint at `path`, if it was made by this run: the same config (`same_config`) and the same
    values of `same` (e.g. the digests of the files it learned from); else a one-line error."""
    saved = torch.load(path, map_location=device, weights_only=True)
    if not same_config(saved["config"], config, ignore, before) or any(saved.get(k) != v for k, v in same.items()):
        raise InputError(f"{path} was made with another configuration or data; delete it or train without --resume")
    return saved


def manifest(
    data_path: Path, train: PoseDataset, val: PoseDataset, model: BodyModel, scores: dict, **specific: Any
) -> dict:
    """What a weight file records of its making: the trainer's own entries, then the pose dataset, the body
    model, the command that ran, the validation scores and torch's version."""
    return {
        **specific,
        "data": str(data_path),
        "data_sha256": file_digest(data_path),
        "train_poses": len(train),
        "validation_trials": list(VALIDATION_TRIALS),
        "validation_poses": len(val),
        "body_model": model.name,
        "command": "bodyfit " + " ".join(sys.argv[1:]),
        "validation": scores,
        "torch": str(torch.__version__),
    }
