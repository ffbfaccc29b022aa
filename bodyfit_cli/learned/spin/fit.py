"""`--init spin` and `--method spin`: the keypoint regressor trained further with fitting in the loop."""

from __future__ import annotations

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.learned.regressor.fit import Regressor, load_regressor
from bodyfit_cli.learned.spin.recipe import FILE


class SpinRegressor(Regressor):
    """The regressor with SPIN's weights (`bodyfit train spin`), unrefined as a method."""

    name = "spin"

    def __init__(self, model: BodyModel) -> None:
        how = f"train them with: bodyfit train spin --body-model {model.name}"
        super().__init__(model, load_regressor(model, FILE, how))
