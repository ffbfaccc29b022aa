"""Writes that never leave a half-written file behind.

Batch pipelines skip inputs whose outputs already exist, so a file cut short by a crash, a full
disk or Ctrl-C would be taken as done. Every output is therefore written to a hidden temporary
file in the same directory and renamed over the final name only once it is complete.
Once Ctrl-C has been pressed (`io.ctrl_c`) nothing is renamed any more.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bodyfit_cli.errors import OutputError
from bodyfit_cli.io.ctrl_c import stop_if_ctrl_c


def ensure_dir(path: Path) -> Path:
    """Create `path` and its parents if needed, turning OS failures into one-line OutputErrors."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        # Name the file that is in the way, which may be an ancestor rather than `path` itself.
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise OutputError(f"cannot create directory: {path} ({blocker} is a file, not a directory)") from exc
    except OSError as exc:
        raise OutputError(f"cannot create directory: {path} ({exc.strerror or exc})") from exc
    return path


def _create_temp(final: Path) -> Path:
    """Create an empty hidden temporary file next to `final`, keeping its suffix.

    The suffix stays last so writers that pick a format by suffix still work; creating it with
    mode 0o666 (minus the umask) gives the renamed result the permissions of a plain open().
    """
    while True:
        tmp = final.with_name(f".{final.stem}.tmp-{secrets.token_hex(4)}{final.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write: {final} ({exc.strerror or exc})") from exc


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces `final` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and an existing
    `final` is left untouched. OSErrors from the block become OutputErrors naming `final`.
    """
    final = Path(final)
    ensure_dir(final.parent)
    tmp = _create_temp(final)
    try:
        yield tmp
        # Flush to disk before the rename so a power cut cannot leave an empty file under `final`.
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        stop_if_ctrl_c()
        os.replace(tmp, final)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write: {final} ({exc.strerror or exc})") from exc
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, as UTF-8 whatever the locale."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    """Turn numpy scalars and arrays into plain Python values for json."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON; NaN/inf raise ValueError since they are not valid JSON."""
    text = json.dumps(obj, indent=2, allow_nan=False, default=_json_default)
    write_text_atomic(path, text + "\n")


def write_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write `arrays` to an .npz file atomically (through a file object, so numpy adds no suffix)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a hidden temporary directory to fill; it replaces the directory `final` only if the
    block succeeds, and is removed otherwise (including on KeyboardInterrupt)."""
    final = Path(final)
    ensure_dir(final.parent)
    tmp = final.with_name(f".{final.name}.tmp-{secrets.token_hex(4)}")
    ensure_dir(tmp)
    try:
        yield tmp
        stop_if_ctrl_c()
        if final.is_dir():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write: {final} ({exc.strerror or exc})") from exc
        raise
