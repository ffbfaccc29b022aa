"""The package's layers depend one way: each module imports only from lower layers and its own folder.

Read from the source (every import, inside functions and TYPE_CHECKING blocks too), so the test needs
nothing imported and fails on the line that crosses a layer upwards.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bodyfit_cli"

# Lowest first. A folder (or top-level module) may import from the layers below it, never above or beside.
LAYERS: list[set[str]] = [
    {"__init__", "errors", "vocabulary", "shipped", "progress"},  # words and where shipped files are
    {"geometry", "io"},  # rotations and cameras; files, images, video frames, atomic writes
    {"body", "mocap", "detection", "render"},  # the body model, mocap readers, keypoint detectors, drawing
    {"core"},  # the people's parameters and evidence, the person box, the device
    {"networks", "synthetic"},  # the state networks read and write, MLP blocks, weight files; synthetic views
    {"fitting"},  # SMPLify, the losses and priors, and the one registry that chooses a method by name
    {"options", "results"},  # what a run is asked for, where results go; fitted people as result files hold them
    {"pipeline", "export", "evaluation"},  # one image; animation files; accuracy
    {"video", "training"},  # clips; the training data and the trainer the learned methods share
    {"learned"},  # one folder per learned method (network, fit, training, recipe), reached by name from below
    {"batch"},  # inputs spread over engines
    {"cli"},  # parses options and calls the layers below
    {"__main__"},  # python -m bodyfit_cli
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """`bodyfit_cli.fitting.lgd` -> `fitting`; `bodyfit_cli` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every bodyfit_cli module `path` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bodyfit_cli":  # from bodyfit_cli import x: a module, or a name of __init__
                found += [
                    (node.lineno, f"bodyfit_cli.{a.name}" if a.name in LAYER else "bodyfit_cli") for a in node.names
                ]
            elif node.module.startswith("bodyfit_cli."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("bodyfit_cli.")]
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_folder_has_a_layer() -> None:
    units = {unit_of(".".join(("bodyfit_cli", *p.relative_to(PACKAGE).with_suffix("").parts))) for p in modules()}
    assert units - set(LAYER) == set(), "add new folders to LAYERS"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path: Path) -> None:
    own = unit_of(".".join(("bodyfit_cli", *path.relative_to(PACKAGE).with_suffix("").parts)))
    upward = [
        f"{path.relative_to(PACKAGE)}:{line} imports {module} ({unit_of(module)} is not below {own})"
        for line, module in imports(path)
        if unit_of(module) != own and LAYER.get(unit_of(module), len(LAYERS)) >= LAYER[own]
    ]
    assert upward == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The rule itself: networks importing fitting is the kind of line this test exists to stop."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from bodyfit_cli.fitting.types import BodyParams\n", encoding="utf-8")
    assert [(unit_of(m), LAYER[unit_of(m)] >= LAYER["networks"]) for _, m in imports(bad)] == [("fitting", True)]
