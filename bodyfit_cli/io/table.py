"""An .npz table written row by row: rows go to anonymous temporary files as they come, so memory
stays flat however many rows a long video gives; the .npz is assembled from them at the end."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO

import numpy as np


class RowTable:
    """Columns of fixed row shape and dtype (set by the first row), appended one row at a time."""

    def __init__(self, spool_dir: Path) -> None:
        self._dir = spool_dir
        self._files: dict[str, IO[bytes]] = {}
        self._kinds: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self.rows = 0

    def append(self, **row: np.ndarray) -> None:
        """One row: a value per column, every column each time (the first row names them)."""
        if self.rows and row.keys() != self._kinds.keys():
            raise ValueError(f"row has columns {sorted(row)}, the table {sorted(self._kinds)}")
        for key, value in row.items():
            value = np.asarray(value)
            if key not in self._files:
                self._kinds[key] = (value.shape, value.dtype)
                self._files[key] = tempfile.TemporaryFile(dir=self._dir)  # deleted by the OS on close or crash
            shape, dtype = self._kinds[key]
            if value.shape != shape:
                raise ValueError(f"column {key}: row shape {value.shape}, expected {shape}")
            self._files[key].write(np.ascontiguousarray(value, dtype=dtype).tobytes())
        self.rows += 1

    def write_npz(self, path: Path, empty: dict[str, tuple[tuple[int, ...], np.dtype]], **extra: np.ndarray) -> None:
        """Write the columns (each (rows, *row shape)) and `extra` arrays as they are, to a new file
        (the caller makes it atomic). `empty`: the columns' row shapes and dtypes, for a table without rows."""
        kinds = self._kinds if self.rows else empty
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as npz:
            for key, (shape, dtype) in kinds.items():
                with npz.open(f"{key}.npy", "w", force_zip64=True) as member:
                    header = {
                        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                        "fortran_order": False,
                        "shape": (self.rows, *shape),
                    }
                    np.lib.format.write_array_header_2_0(member, header)
                    if self.rows:
                        self._files[key].seek(0)
                        shutil.copyfileobj(self._files[key], member)
            for key, value in extra.items():
                with npz.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
