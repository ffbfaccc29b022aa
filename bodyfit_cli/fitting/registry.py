"""The one place where `--method` names map to fitting backends."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Protocol

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.errors import BodyfitError, MethodUnavailable
from bodyfit_cli.fitting.hund import NeuralDescentFitter
from bodyfit_cli.fitting.init import MeanInit
from bodyfit_cli.fitting.lgd import LearnedGradientDescent
from bodyfit_cli.fitting.priors import PosePrior, load_prior
from bodyfit_cli.fitting.regressor import Regressor
from bodyfit_cli.fitting.smplify import SMPLify
from bodyfit_cli.fitting.types import BodyParams, Observations


class Backend(Protocol):
    name: str

    def fit(self, obs: Observations, init: BodyParams) -> BodyParams: ...


# Every backend is made from the body model and the pose prior (learned backends may ignore the prior).
METHODS: dict[str, Callable[[BodyModel, PosePrior], Backend]] = {
    "smplify": SMPLify,
    "lgd": LearnedGradientDescent,
    "hund": NeuralDescentFitter,
    "regressor": Regressor,  # no refinement: the regressor's own result
    "spin": partial(Regressor, variant="spin"),  # the same, for the regressor trained with fitting in the loop
}
INITS = ("auto", "mean", "regressor", "spin")


class Initialiser(Protocol):
    name: str

    def __call__(self, obs: Observations) -> BodyParams: ...


def check_method(name: str) -> None:
    if name not in METHODS:
        raise BodyfitError(f"unknown method '{name}' (choose from {', '.join(METHODS)})")


def make_backend(name: str, model: BodyModel, prior: str = "gmm") -> Backend:
    check_method(name)
    return METHODS[name](model, load_prior(prior, model.v_template.device))


def make_init(name: str, model: BodyModel, backend: Backend | None = None) -> Initialiser:
    """`--init`: mean pose, the keypoint regressor (`spin`: the one trained with fitting in the loop), or auto
    (the backend's own `auto_init` where it names one, else the best trained for this body model: spin, else
    the mocap-only regressor, else the mean pose). With `--method regressor` (`spin`) the backend's own
    regressor is the initialiser too: one network pass per fit."""
    if name not in INITS:
        raise BodyfitError(f"unknown --init '{name}' (choose from {', '.join(INITS)})")
    if name == "auto":
        name = getattr(backend, "auto_init", name)
    if name == "mean":
        return MeanInit(model)
    if isinstance(backend, Regressor) and name in ("auto", backend.name):
        return backend
    if name != "auto":
        try:
            return Regressor(model, variant=name)
        except MethodUnavailable as e:
            raise BodyfitError(f"--init {name}: {e}") from None
    # spin first: as good as the mocap-only regressor on synthetic views, better on a real detector's keypoints.
    for variant in ("spin", "regressor"):
        try:
            return Regressor(model, variant=variant)
        except MethodUnavailable:
            continue
    logging.getLogger("bodyfit").info(
        "no trained regressor for body model '%s': starting from the mean pose", model.name
    )
    return MeanInit(model)
