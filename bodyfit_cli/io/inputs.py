"""Turning command-line arguments (files, directories, globs, `-` for stdin) into input files."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bodyfit_cli.errors import InputError

# Formats OpenCV reads (images) or commonly holds video in; matched on the lower-cased suffix.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".jp2",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
        ".sr",
        ".ras",
    }
)
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".mts", ".m2ts"}
)
_EXTENSIONS_BY_KIND: dict[str, frozenset[str]] = {"image": IMAGE_EXTENSIONS, "video": VIDEO_EXTENSIONS}
_KIND_ORDER = ("image", "video")


@dataclass(frozen=True)
class InputItem:
    """One input file; `rel` is where its outputs go, mirroring the tree under its argument."""

    path: Path
    rel: Path


def expand_inputs(
    args: list[str],
    kinds: set[str],
    stdin: TextIO | None = None,
    errors: list[tuple[str, InputError]] | None = None,
) -> list[InputItem]:
    """Expand arguments into input files, in argument order, each file once (first one kept).

    A directory is searched recursively (sorted, hidden entries skipped) for files whose suffix
    is of `kinds` ({"image"}, {"video"} or both); a glob pattern expands likewise; `-` reads one
    path per line from `stdin` (default sys.stdin). A file named explicitly is taken whatever its
    suffix, so the reader, not the suffix, decides whether it is usable.

    errors: when given, an argument (or stdin line) that is missing or holds no inputs is recorded
    here as (argument, error) and the others are still expanded; otherwise the first such raises.
    """
    unknown = kinds - _EXTENSIONS_BY_KIND.keys()
    if not kinds or unknown:
        raise ValueError(f"kinds must be a non-empty subset of {set(_KIND_ORDER)}, got {kinds}")
    extensions = frozenset().union(*(_EXTENSIONS_BY_KIND[k] for k in kinds))
    noun = " or ".join(f"{k}s" for k in _KIND_ORDER if k in kinds)

    items: list[InputItem] = []
    seen: set[str] = set()

    def add(arg: str, expand: Callable[[], list[InputItem]]) -> None:
        try:
            found = expand()
        except InputError as e:
            if errors is None:
                raise
            errors.append((arg, e))
            return
        for item in found:
            key = os.path.normcase(os.path.abspath(item.path))
            if key not in seen:
                seen.add(key)
                items.append(item)

    for arg in args:
        if arg == "-":
            lines = (stdin if stdin is not None else sys.stdin).read().splitlines()
            for line in (s.strip() for s in lines):
                if line:
                    add(line, lambda line=line: _expand_path(Path(line), extensions, noun))
        elif not os.path.lexists(arg) and _is_pattern(arg):
            add(arg, lambda arg=arg: _expand_glob(arg, extensions, noun))
        else:
            add(arg, lambda arg=arg: _expand_path(Path(arg), extensions, noun))
    return items


def _is_pattern(arg: str) -> bool:
    """Whether `arg` has glob wildcards (checked only for arguments that do not exist as named)."""
    return any(c in arg for c in "*?[")


def _expand_path(path: Path, extensions: frozenset[str], noun: str) -> list[InputItem]:
    """A file as itself; a directory as its matching files, relative to the directory."""
    if path.is_dir():
        found = [InputItem(path / rel, rel) for rel in _walk(path, extensions)]
        if not found:
            raise InputError(f"no {noun} found in {path}")
        return found
    if not path.exists():
        raise InputError(f"no such file or directory: {path}")
    return [InputItem(path, Path(path.name))]


def _expand_glob(pattern: str, extensions: frozenset[str], noun: str) -> list[InputItem]:
    """Files matching a glob, relative to the pattern's fixed leading directories.

    Keeping the matched directory parts in `rel` (e.g. `shoot*/*.jpg` -> `shoot1/a.jpg`) stops
    files with the same name in different directories from overwriting each other's outputs.
    """
    parts = Path(pattern).parts
    fixed = next((i for i, p in enumerate(parts) if _is_pattern(p)), len(parts))
    base = Path(*parts[:fixed])
    found: list[InputItem] = []
    for path in sorted(map(Path, glob.glob(pattern, recursive=True))):
        rel = path.relative_to(base)
        if path.is_dir():
            found += [InputItem(path / r, rel / r) for r in _walk(path, extensions)]
        elif path.suffix.lower() in extensions:
            found.append(InputItem(path, rel))
    if not found:
        raise InputError(f"no {noun} match {pattern}")
    return found


def _walk(root: Path, extensions: frozenset[str]) -> list[Path]:
    """Sorted paths, relative to `root`, of the non-hidden matching files below it.

    Symlinked directories are followed (datasets are often linked in), each real directory once
    so that a link loop cannot recurse forever.
    """

    def fail(exc: OSError) -> None:
        raise InputError(f"cannot read directory: {exc.filename} ({exc.strerror or exc})") from exc

    found: list[Path] = []
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, onerror=fail, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames.clear()
            continue
        visited.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root)
        found += [
            rel_dir / name for name in filenames if not name.startswith(".") and Path(name).suffix.lower() in extensions
        ]
    return sorted(found)
