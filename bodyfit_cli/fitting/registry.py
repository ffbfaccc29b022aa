"""The one place where `--method` names map to fitting backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.errors import BodyfitError
from bodyfit_cli.fitting.priors import PosePrior, load_prior
from bodyfit_cli.fitting.smplify import SMPLify
from bodyfit_cli.fitting.types import BodyParams, Observations


class Backend(Protocol):
    name: str

    def fit(self, obs: Observations, init: BodyParams) -> BodyParams: ...


class MethodUnavailable(BodyfitError):
    """A known method whose weights or code are not part of this build."""


def _not_yet(name: str, issue: str) -> Callable[[BodyModel, PosePrior], Backend]:
    def make(model: BodyModel, prior: PosePrior) -> Backend:
        raise MethodUnavailable(f"method '{name}' is not available in this version yet ({issue}); use --method smplify")

    return make


# Every backend is made from the body model and the pose prior (learned backends may ignore the prior).
METHODS: dict[str, Callable[[BodyModel, PosePrior], Backend]] = {
    "smplify": SMPLify,
    "lgd": _not_yet("lgd", "learned gradient descent weights are not trained yet"),
    "hund": _not_yet("hund", "neural descent weights are not trained yet"),
}


def check_method(name: str) -> None:
    if name not in METHODS:
        raise BodyfitError(f"unknown method '{name}' (choose from {', '.join(METHODS)})")


def make_backend(name: str, model: BodyModel, prior: str = "gmm") -> Backend:
    check_method(name)
    return METHODS[name](model, load_prior(prior, model.v_template.device))
