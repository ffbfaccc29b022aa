"""Every shipped weight reproduces from its training command's defaults.

Each weight file records the configuration it was trained with and the command that ran. The configuration
must be the recipe the command trains with no options (`learned/<method>/recipe.py`), and the command may only have
named files (where the data, weights and checkpoint go), or repeated a default: so `bodyfit train <kind>`
with no options, in the order of docs/methods.md, retrains what ships.
"""

from __future__ import annotations

import importlib
import shlex
from dataclasses import asdict, fields
from types import ModuleType

import pytest
import typer
from typer._click.core import ParameterSource

from bodyfit_cli.cli import app
from bodyfit_cli.fitting.registry import learned_methods
from bodyfit_cli.learned.spin.train import BEFORE_OPTIONS
from bodyfit_cli.networks.weights import read_network_file, weights_file
from bodyfit_cli.training.config import NetworkConfig

# Options that name files, not how the weights are trained.
FILE_OPTIONS = {"data", "out", "checkpoint", "resume", "detections", "start_from"}
# What does not change the weights: how often a run saves and how it reports.
NOT_RECIPE = {"checkpoint_every", "validation_views"}
METHODS = learned_methods()


def recipe(kind: str) -> ModuleType:
    return importlib.import_module(f"{METHODS[kind]}.recipe")


def recorded(kind: str) -> dict:
    path = weights_file(recipe(kind).FILE, "default")
    if not path.is_file():
        pytest.skip(f"{path} is not shipped in this build")
    return read_network_file(path)


def recipe_fields(saved: dict, recipe: dict, before: dict) -> tuple[dict, dict]:
    """Both sides without what does not shape the weights; options newer than the file take the value
    its run had without them (`before`, else today's default)."""
    saved = {**recipe, **before, **saved}
    keep = set(recipe) - NOT_RECIPE
    return {k: saved[k] for k in keep}, {k: recipe[k] for k in keep}


@pytest.mark.parametrize("kind", [k for k in METHODS if isinstance(recipe(k).RECIPE, NetworkConfig)])
def test_each_network_was_trained_with_its_recipe(kind: str) -> None:
    blob = recorded(kind)
    wanted = asdict(recipe(kind).RECIPE)
    before = {f.name: f.default for f in fields(NetworkConfig) if f.name != "kind" and f.name not in blob["training"]}
    saved, wanted = recipe_fields(blob["training"], wanted, before)
    assert saved == wanted


def test_spin_was_trained_with_its_recipe() -> None:
    blob = recorded("spin")
    saved, wanted = recipe_fields(blob["training"]["in_the_loop"], asdict(recipe("spin").RECIPE), BEFORE_OPTIONS)
    assert saved == wanted


def given_options(command: str) -> tuple[str, dict, dict]:
    """The train subcommand a recorded command ran, the options it set, and that subcommand's defaults."""
    words = shlex.split(command)
    assert words[:2] == ["bodyfit", "train"], command
    group = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    sub = group.commands[words[2]]
    ctx = sub.make_context(words[2], words[3:])
    given = {k: v for k, v in ctx.params.items() if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    required = [w for w in words[3:] if not w.startswith("-")][: len([p for p in sub.params if p.required])]
    defaults = sub.make_context(words[2], required).params
    return words[2], given, defaults


@pytest.mark.parametrize("kind", list(METHODS))
def test_each_command_only_named_files(kind: str) -> None:
    command, given, defaults = given_options(recorded(kind)["manifest"]["command"])
    assert command == kind
    changed = {k: v for k, v in given.items() if k not in FILE_OPTIONS and v != defaults[k]}
    assert changed == {}


def test_a_changed_option_is_caught() -> None:
    """The comparison itself: a command that changed the recipe is reported with the option it changed."""
    _, given, defaults = given_options("bodyfit train lgd --steps 99 --out x.pt")
    assert {k: v for k, v in given.items() if k not in FILE_OPTIONS and v != defaults[k]} == {"steps": 99}
