"""Where the files shipped with bodyfit live: the default body model, the pose prior and the trained weights.

They sit in the repository's top-level `models/` folder, which the wheel installs as the package
`bodyfit_models` (pyproject's `package-dir`); an editable install maps that package onto the same folder.
`models_dir()` is the one place that resolves it; every loader of a shipped file asks it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

MODELS_PACKAGE = "bodyfit_models"


@cache
def models_dir() -> Path:
    """The folder of the shipped model files (whether or not they are all there)."""
    try:
        return Path(str(files(MODELS_PACKAGE)))
    except ModuleNotFoundError:  # a checkout run without (re)installing since `bodyfit_models` existed
        return Path(__file__).resolve().parents[1] / "models"


def shipped_file(name: str) -> Path:
    """A shipped model file by name, e.g. `default_body.npz` or `lgd_default.pt`."""
    return models_dir() / name
