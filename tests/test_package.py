"""bodyfit as a package: the shipped files resolve through one function, pyproject lists what the code needs,
`--version` reads the metadata, and `bodyfit train` never writes over the shipped files by default.
(scripts/check_wheel.sh checks the same from a built wheel installed in a fresh environment.)"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bodyfit_cli.body.loaders import search_dirs
from bodyfit_cli.cli import app
from bodyfit_cli.fitting.priors import SHIPPED_PRIOR
from bodyfit_cli.networks.weights import TRAIN_DIR, weights_file
from bodyfit_cli.shipped import models_dir, shipped_file

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SHIPPED = [
    "default_body.npz",
    "pose_prior.npz",
    "regressor_default.pt",
    "regressor_spin_default.pt",
    "lgd_default.pt",
    "hund_default.pt",
]
# Modules bodyfit_cli imports that are not named as the distribution providing them.
PROVIDED_BY = {"cv2": "mediapipe", "OpenGL": "pyopengl"}  # mediapipe brings opencv-contrib-python


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower()


def test_the_resolver_finds_every_shipped_file(monkeypatch) -> None:
    monkeypatch.delenv("BODYFIT_MODEL_DIR", raising=False)
    for name in SHIPPED:
        assert shipped_file(name).is_file(), shipped_file(name)
    # Every model file in models/ is package data; from a checkout the resolver is that very folder.
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["bodyfit_models"]
    for path in (ROOT / "models").iterdir():
        if path.suffix in (".npz", ".pt"):
            assert any(path.match(p) for p in patterns), path
    assert models_dir().samefile(ROOT / "models")
    # and every loader of a shipped file goes through it
    assert search_dirs(None) == [models_dir()]
    assert SHIPPED_PRIOR == shipped_file("pose_prior.npz")
    assert weights_file("lgd", "default") == shipped_file("lgd_default.pt")


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bodyfit_cli").rglob("__init__.py")}
    assert found | {"bodyfit_models"} == listed
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"bodyfit_models": "models"}


def test_dependencies_are_what_the_code_imports() -> None:
    imported = set()
    for path in (ROOT / "bodyfit_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {PROVIDED_BY.get(m, m) for m in imported - set(sys.stdlib_module_names) - {"bodyfit_cli"}}
    required = {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {requirement_name(r) for rs in PYPROJECT["project"]["optional-dependencies"].values() for r in rs}
    assert third_party - required - extras == set()  # every import is declared
    assert required - third_party == set()  # and nothing is required that the code does not import
    assert "opencv-python" not in required | extras  # cv2 is mediapipe's opencv-contrib-python
    assert "torch==2.13.0" in PYPROJECT["project"]["dependencies"]


def test_version_prints_the_pyproject_version_without_torch() -> None:
    script = (
        "import sys; from typer.testing import CliRunner; from bodyfit_cli.cli import app; "
        "r = CliRunner().invoke(app, ['--version']); print(r.exit_code, r.stdout.strip(), 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.stdout.strip() == f"0 bodyfit {PYPROJECT['project']['version']} False", done.stderr
    cli = subprocess.run([sys.executable, "-m", "bodyfit_cli", "--version"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and cli.stdout == f"bodyfit {PYPROJECT['project']['version']}\n"


@pytest.mark.parametrize(
    ("args", "target", "expected"),
    [
        (["prior"], "bodyfit_cli.training.commands.make_pose_prior", TRAIN_DIR / "pose_prior.npz"),
        (["lgd"], "bodyfit_cli.training.commands.make_weights", TRAIN_DIR / "lgd_default.pt"),
        (["hund"], "bodyfit_cli.training.commands.make_weights", TRAIN_DIR / "hund_default.pt"),
        (["regressor"], "bodyfit_cli.training.commands.make_weights", TRAIN_DIR / "regressor_default.pt"),
        (["spin", "d.npz"], "bodyfit_cli.training.commands.make_weights", TRAIN_DIR / "regressor_spin_default.pt"),
        (["lgd", "--out", "models/xyz.pt"], "bodyfit_cli.training.commands.make_weights", Path("models/xyz.pt")),
    ],
)
def test_training_writes_to_a_working_folder_unless_told(monkeypatch, args, target, expected) -> None:
    module, name = target.rsplit(".", 1)
    seen = []
    monkeypatch.setattr(f"{module}.{name}", lambda *a, **k: seen.append([x for x in a if isinstance(x, Path)]))
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    [paths] = seen
    assert expected in paths
    assert not any(p.is_relative_to(models_dir()) for p in paths if p != expected)
    assert TRAIN_DIR == Path("data/models") and not TRAIN_DIR.is_absolute()
