"""`--init regressor|spin` and `--method regressor|spin`: one network pass from keypoints to parameters.

Two trained regressors can sit side by side in `models/`: `regressor_<body>.pt`, learned from synthetic views
of motion capture (`bodyfit train regressor`), and `regressor_spin_<body>.pt`, that one trained further with
fitting (LGD by default) in the loop on detected people (`bodyfit train spin`, SPIN).
"""

from __future__ import annotations

import torch
from torch import nn

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.networks import state
from bodyfit_cli.networks.weights import load_network

# `--init` / `--method` name -> the weight file's name in models/ (`<file>_<body model>.pt`).
VARIANTS = {"regressor": "regressor", "spin": "regressor_spin"}


def load_regressor(model: BodyModel, variant: str) -> nn.Module:
    """The trained regressor `variant` for a body model, or a one-line error saying how to make it."""
    how = (
        None
        if variant == "regressor"
        else (f"train them with: bodyfit train spin DETECTIONS.npz --body-model {model.name}")
    )
    return load_network("regressor", model.name, model.num_betas, model.v_template.device, VARIANTS[variant], how)


class Regressor:
    """Predicts `BodyParams` from `Observations` alone. As a backend it ignores the initialisation it is
    given, which makes `--method regressor` (or `spin`) the regressor's own result, unrefined."""

    def __init__(self, model: BodyModel, variant: str = "regressor") -> None:
        self.name = variant
        self.model = model
        self.net = load_regressor(model, variant)
        self._last: tuple[Observations, BodyParams] | None = None

    @torch.no_grad()
    def predict(self, obs: Observations) -> torch.Tensor:
        """The state (see `networks.state`) for each person."""
        return self.net(state.keypoint_features(obs, person_box(obs), self.net.world))

    @torch.no_grad()
    def __call__(self, obs: Observations) -> BodyParams:
        params = state.to_params(self.model, state.decode(self.predict(obs), person_box(obs)))
        self._last = (obs, params)
        return params

    def fit(self, obs: Observations, init: BodyParams) -> BodyParams:
        # With `--init regressor` (`spin`) the initialisation already is this network's answer for these observations.
        if self._last is not None and self._last[0] is obs and self._last[1] is init:
            return init
        return self(obs)


class SpinRegressor(Regressor):
    """`--method spin`: the regressor trained with fitting in the loop, unrefined."""

    def __init__(self, model: BodyModel) -> None:
        super().__init__(model, variant="spin")
