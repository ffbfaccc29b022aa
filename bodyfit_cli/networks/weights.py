"""Trained network files: one per network kind and body model, with how they were made.

The shipped ones are read from the shipped models folder (`bodyfit_cli.shipped`, the repository's `models/`);
`bodyfit train` writes new ones under `TRAIN_DIR` unless told otherwise, never over the shipped ones.

A file holds the architecture, the weights, the training configuration and a data manifest (which pose
dataset, which command), so that every shipped weight can be traced back and rebuilt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bodyfit_cli.errors import MethodUnavailable
from bodyfit_cli.io.atomic import atomic_path
from bodyfit_cli.shipped import shipped_file

# Where `bodyfit train` writes what it makes by default, relative to the working folder.
TRAIN_DIR = Path("data/models")


def weights_file(kind: str, body_model: str) -> Path:
    """The shipped weights of `kind` for a body model."""
    return shipped_file(f"{kind}_{body_model}.pt")


def trained_file(kind: str, body_model: str) -> Path:
    """Where `bodyfit train` writes `kind`'s weights for a body model unless given --out."""
    return TRAIN_DIR / f"{kind}_{body_model}.pt"


def save_network(path: Path, kind: str, net: nn.Module, training: dict[str, Any], manifest: dict[str, Any]) -> None:
    blob = {
        "kind": kind,
        "architecture": net.architecture,
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "training": training,
        "manifest": manifest,
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def read_network_file(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def build_network(blob: dict[str, Any], network: type[nn.Module]) -> nn.Module:
    """The `network` a file's contents describe, with its weights, ready to run."""
    net = network(**blob["architecture"])
    net.load_state_dict(blob["state_dict"])
    return net.eval()


def load_network(
    network: type[nn.Module],
    kind: str,
    body_model: str,
    num_betas: int,
    device: torch.device,
    file: str | None = None,
    how: str | None = None,
) -> nn.Module:
    """The trained `kind` network (a `network`) for a body model, or a one-line error saying how to train it
    (`how`). `file` names a variant's weight file (`<file>_<body model>.pt`) instead of `kind`'s."""
    path = weights_file(file or kind, body_model)
    how = how or (
        f"train them with: bodyfit train data --body-model {body_model} --model-dir DIR && "
        f"bodyfit train {kind} --body-model {body_model} --model-dir DIR"
    )
    if not path.is_file():
        raise MethodUnavailable(f"no {kind} weights for body model '{body_model}' ({path} is missing); {how}")
    try:
        blob = read_network_file(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise MethodUnavailable(f"cannot read {kind} weights {path} ({type(e).__name__}: {e}); {how}") from None
    if blob.get("kind") != kind:
        raise MethodUnavailable(f"{path} holds {blob.get('kind')} weights, not {kind}; {how}")
    if blob["architecture"].get("num_betas") != num_betas:
        raise MethodUnavailable(f"{path} holds {kind} weights for another body model; {how}")
    try:
        net = build_network(blob, network)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise MethodUnavailable(f"cannot read {kind} weights {path} ({type(e).__name__}: {e}); {how}") from None
    return net.to(device)
