"""The one place where `--method` names map to fitting backends, and `--init` names to starts.

Each method is one line: its name and where its backend class lives. The classes are imported only when a
backend is made, so that the command line can list and check the names (`--help`, a typo's usage error)
without loading torch. A learned method's line points into its folder under `learned/` (its `fit.py`);
`bodyfit train` makes a command for each of those from the folder's `recipe.py` and `train.py`.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Protocol

from bodyfit_cli.errors import BodyfitError, MethodUnavailable

if TYPE_CHECKING:
    from bodyfit_cli.body.model import BodyModel
    from bodyfit_cli.core.types import BodyParams, Observations

METHODS: dict[str, str] = {
    "smplify": "bodyfit_cli.fitting.smplify:SMPLify",
    "lgd": "bodyfit_cli.learned.lgd.fit:LearnedGradientDescent",
    "hund": "bodyfit_cli.learned.hund.fit:NeuralDescentFitter",
    "regressor": "bodyfit_cli.learned.regressor.fit:Regressor",  # no refinement: the regressor's own result
    "spin": "bodyfit_cli.learned.spin.fit:SpinRegressor",  # the same, trained with fitting in the loop
}
# The methods that predict from the keypoints alone, and so can start the others (`--init`).
REGRESSORS = ("regressor", "spin")
INITS = ("auto", "mean", *REGRESSORS)
POSE_PRIORS = ("gmm", "simple")  # SMPLify's (`priors.load_prior`): the learned mixture, the hand-set Gaussian


class Backend(Protocol):
    name: str

    def fit(self, obs: Observations, init: BodyParams) -> BodyParams: ...


class Initialiser(Protocol):
    name: str

    def __call__(self, obs: Observations) -> BodyParams: ...


def check_method(name: str) -> None:
    if name not in METHODS:
        raise BodyfitError(f"unknown method '{name}' (choose from {', '.join(METHODS)})")


def learned_methods() -> dict[str, str]:
    """Each learned method's name and its folder's package (`bodyfit_cli.learned.<name>`)."""
    return {
        name: where.split(":")[0].rsplit(".", 1)[0]
        for name, where in METHODS.items()
        if where.startswith("bodyfit_cli.learned.")
    }


def backend_class(name: str) -> type:
    check_method(name)
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_backend(name: str, model: BodyModel, prior: str = "gmm") -> Backend:
    """The backend `name` for `model`; `prior` names the pose prior of the backends that use one (SMPLify)."""
    backend = backend_class(name)
    if getattr(backend, "uses_prior", False):
        from bodyfit_cli.fitting.priors import load_prior

        return backend(model, load_prior(prior, model.v_template.device))
    return backend(model)


def make_init(name: str, model: BodyModel, backend: Backend | None = None) -> Initialiser:
    """`--init`: mean pose, the keypoint regressor (`spin`: the one trained with fitting in the loop), or auto
    (the best trained for this body model: spin, else the mocap-only regressor, else the mean pose). With
    `--method regressor` (`spin`) the backend's own regressor is the initialiser too: one network pass per fit."""
    from bodyfit_cli.fitting.init import MeanInit

    if name not in INITS:
        raise BodyfitError(f"unknown --init '{name}' (choose from {', '.join(INITS)})")
    if name == "mean":
        return MeanInit(model)
    if backend is not None and backend.name in REGRESSORS and name in ("auto", backend.name):
        return backend  # type: ignore[return-value] - a regressor is its own initialiser
    if name != "auto":
        try:
            return backend_class(name)(model)
        except MethodUnavailable as e:
            raise BodyfitError(f"--init {name}: {e}") from None
    # spin first: as good as the mocap-only regressor on synthetic views, better on a real detector's keypoints.
    for regressor in ("spin", "regressor"):
        try:
            return backend_class(regressor)(model)
        except MethodUnavailable:
            continue
    logging.getLogger("bodyfit").info(
        "no trained regressor for body model '%s': starting from the mean pose", model.name
    )
    return MeanInit(model)
