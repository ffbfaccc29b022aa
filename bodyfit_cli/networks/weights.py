"""Trained network files in `models/`: one per network kind and body model, with how they were made.

A file holds the architecture, the weights, the training configuration and a data manifest (which pose
dataset, which command), so that every shipped weight can be traced back and rebuilt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bodyfit_cli.body.loaders import MODELS_DIR
from bodyfit_cli.errors import MethodUnavailable
from bodyfit_cli.io.atomic import atomic_path
from bodyfit_cli.networks.hund import NeuralDescent
from bodyfit_cli.networks.lgd import UpdateNetwork
from bodyfit_cli.networks.regressor import KeypointRegressor

NETWORKS: dict[str, type[nn.Module]] = {"regressor": KeypointRegressor, "lgd": UpdateNetwork, "hund": NeuralDescent}


def weights_file(kind: str, body_model: str, models_dir: Path = MODELS_DIR) -> Path:
    return models_dir / f"{kind}_{body_model}.pt"


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


def build_network(blob: dict[str, Any]) -> nn.Module:
    net = NETWORKS[blob["kind"]](**blob["architecture"])
    net.load_state_dict(blob["state_dict"])
    return net.eval()


def load_network(
    kind: str, body_model: str, num_betas: int, device: torch.device, file: str | None = None, how: str | None = None
) -> nn.Module:
    """The trained `kind` network for a body model, or a one-line error saying how to train it (`how`).
    `file` names a variant's weight file (`models/<file>_<body model>.pt`) instead of `kind`'s."""
    path = weights_file(file or kind, body_model)
    how = how or (
        f"train them with: bodyfit train data --body-model {body_model} --model-dir DIR && "
        f"bodyfit train {kind} --body-model {body_model} --model-dir DIR"
    )
    if not path.is_file():
        raise MethodUnavailable(f"no {kind} weights for body model '{body_model}' ({path} is missing); {how}")
    try:
        blob = read_network_file(path)
        net = build_network(blob)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise MethodUnavailable(f"cannot read {kind} weights {path} ({type(e).__name__}: {e}); {how}") from None
    if blob["kind"] != kind or blob["architecture"].get("num_betas") != num_betas:
        raise MethodUnavailable(f"{path} holds {blob['kind']} weights for another body model; {how}")
    return net.to(device)
