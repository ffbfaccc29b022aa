"""`--init regressor` and `--method regressor`: one network pass from keypoints to parameters, learned from
synthetic views of motion capture (`bodyfit train regressor`). `--init/--method spin` is the same network
trained further with fitting in the loop (`learned/spin`)."""

from __future__ import annotations

from pathlib import Path

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.learned.regressor.network import KeypointRegressor
from bodyfit_cli.learned.regressor.recipe import FILE
from bodyfit_cli.networks import state
from bodyfit_cli.networks.weights import load_network, weights_file


def load_regressor(model: BodyModel, file: str = FILE, how: str | None = None) -> KeypointRegressor:
    """The trained regressor in `models/<file>_<body model>.pt`, or a one-line error saying how to make it."""
    net = load_network(KeypointRegressor, "regressor", model.name, model.num_betas, model.v_template.device, file, how)
    assert isinstance(net, KeypointRegressor)
    return net


def mocap_regressor(model: BodyModel) -> tuple[KeypointRegressor, Path]:
    """The shipped mocap-only regressor and its file: where LGD and hund training starts some fits."""
    return load_regressor(model), weights_file(FILE, model.name)


class Regressor:
    """Predicts `BodyParams` from `Observations` alone. As a backend it ignores the initialisation it is
    given, which makes `--method regressor` (or `spin`) the regressor's own result, unrefined."""

    name = "regressor"

    def __init__(self, model: BodyModel, net: KeypointRegressor | None = None) -> None:
        self.model = model
        self.net = net or load_regressor(model)
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
