"""The box around a person's detected keypoints: the frame the learned backends see a person in, and the
window of the person's mask."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bodyfit_cli.core.types import Observations

SEEN = 0.05  # keypoints with at most this confidence count as not detected


@dataclass
class PersonBox:
    """Per person: box centre (B, 2) and size (B,) in pixels (size = `Observations.scale`, the box
    diagonal), mean focal length (B,) and principal point (B, 2)."""

    center: torch.Tensor
    size: torch.Tensor
    focal: torch.Tensor
    principal: torch.Tensor


def person_box(obs: Observations) -> PersonBox:
    """The box around the detected keypoints (the whole image centre when none is detected)."""
    uv, seen = obs.keypoints[..., :2], obs.keypoints[..., 2:] > SEEN
    lo = torch.where(seen, uv, math.inf).amin(1)
    hi = torch.where(seen, uv, -math.inf).amax(1)
    center = torch.where(seen.any(1), (lo + hi) / 2, obs.center)
    return PersonBox(center=center, size=obs.scale, focal=obs.focal.mean(-1), principal=obs.center)
