"""Motion-capture readers: CMU ASF/AMC and BVH as SMPL-named joint positions, AMASS as SMPL parameters."""

from __future__ import annotations

from pathlib import Path

from bodyfit_cli.errors import InputError
from bodyfit_cli.mocap.amass import AmassClip, read_amass
from bodyfit_cli.mocap.asf_amc import read_asf_amc
from bodyfit_cli.mocap.bvh import read_bvh
from bodyfit_cli.mocap.types import MocapClip

__all__ = ["AmassClip", "MocapClip", "find_skeleton", "read_amass", "read_asf_amc", "read_bvh", "read_mocap"]

SUFFIXES = (".amc", ".bvh", ".npz")


def read_mocap(path: Path | str, skeleton: Path | str | None = None) -> MocapClip | AmassClip:
    """Read a motion file by its suffix; an .amc takes its .asf from `skeleton` or from beside it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".amc":
        return read_asf_amc(path, Path(skeleton) if skeleton is not None else find_skeleton(path))
    if suffix == ".bvh":
        return read_bvh(path)
    if suffix == ".npz":
        return read_amass(path)
    raise InputError(f"cannot read motion file: {path} (unknown kind; expected one of {', '.join(SUFFIXES)})")


def find_skeleton(amc: Path) -> Path:
    """CMU's layout: `<dir>/<subject>.asf` for `<subject>_<trial>.amc`, else the folder's only .asf."""
    named = amc.with_name(amc.stem.split("_", 1)[0] + ".asf")
    if named.is_file():
        return named
    candidates = sorted(amc.parent.glob("*.asf"))
    if len(candidates) == 1:
        return candidates[0]
    found = "none" if not candidates else f"{len(candidates)}: {', '.join(c.name for c in candidates)}"
    raise InputError(f"no skeleton for {amc}: expected {named.name} beside it or a single .asf (found {found})")
