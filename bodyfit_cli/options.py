"""The options of a fit, where each input's results go, and how a finished input is read back.

Nothing here needs a model or a numerical library (torch, MediaPipe, OpenCV, numpy), so that a run can
tell which inputs are finished, and print what `--json` prints for them, before it loads anything: a
re-run with nothing left to do costs little more than Python's own start.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from bodyfit_cli.fitting.registry import INITS, METHODS, POSE_PRIORS
from bodyfit_cli.io.inputs import InputItem
from bodyfit_cli.vocabulary import BODY_MODEL_NAMES, DEVICES, MESH_FORMATS

# The per-track animation files of a clip (`--export`): BVH, animated glTF binary, AMASS-style .npz.
EXPORT_FORMATS: tuple[str, ...] = ("bvh", "glb", "amass")


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """An enum of option values (each its own name), so that `--help` lists them and the parser refuses others."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


Method = choices("Method", METHODS)
Init = choices("Init", INITS)
Prior = choices("Prior", POSE_PRIORS)
Device = choices("Device", DEVICES)
BodyModelName = choices("BodyModelName", BODY_MODEL_NAMES)
MeshFormat = choices("MeshFormat", MESH_FORMATS)


@dataclass
class Options:
    """What a fit of images (and the frames of videos) is asked for; the command line's defaults are these."""

    method: str = "smplify"
    out: Path = Path("bodyfit_out")
    device: str = "auto"
    keypoints: Path | None = None
    focal: float | None = None
    body_model: str = "default"
    model_dir: Path | None = None
    max_people: int = 4
    render: bool = True
    mesh_format: str = "obj"
    seed: int = 0
    init: str = "auto"
    pose_model: Path | None = None


def image_result_path(opts: Options, item: InputItem) -> Path:
    """`<out>/<folder under its argument>/<stem>.json`, written last: it marks the image as done (no models
    needed, so a driver can skip finished inputs before any worker starts)."""
    return opts.out / item.rel.parent / f"{item.path.stem}.json"


def clip_result_path(opts: Options, item: InputItem) -> Path:
    """`<out>/<folder under its argument>/<stem>.jsonl`, renamed into place last: it marks the clip as done."""
    return opts.out / item.rel.parent / f"{item.path.stem}.jsonl"


def clip_outputs(opts: Options, mesh_every: int, exports: tuple[str, ...], item: InputItem) -> dict[str, str | None]:
    """Where a clip's results go (None: not asked for); no models needed, so a driver can read finished clips."""
    final = clip_result_path(opts, item)
    stem = item.path.stem
    return {
        "jsonl": str(final),
        "npz": str(final.with_suffix(".npz")),
        "overlay": str(final.with_name(f"{stem}_overlay.mp4")) if opts.render else None,
        "meshes": str(final.with_name(f"{stem}_meshes")) if mesh_every else None,
        "animation": str(final.with_name(f"{stem}_animation")) if exports else None,
    }


def animation_name(stem: str, track_id: int, export: str) -> str:
    """The file of one track's animation in `<stem>_animation/`: `<stem>_t<id>.bvh`, `.glb`, `_poses.npz`
    (AMASS's name for its motion files)."""
    return f"{stem}_t{track_id}" + {"bvh": ".bvh", "glb": ".glb", "amass": "_poses.npz"}[export]


def parse_exports(text: str) -> tuple[str, ...]:
    """`--export`: comma-separated formats of `EXPORT_FORMATS`, or `none`; raises ValueError naming a bad one."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    bad = [n for n in names if n not in EXPORT_FORMATS]
    if bad or not names:
        raise ValueError(f"--export takes {', '.join(EXPORT_FORMATS)} (comma-separated) or none, not '{text}'")
    return tuple(n for n in EXPORT_FORMATS if n in names)


def read_summary(item: InputItem, outputs: dict[str, str | None]) -> dict:
    """The `--json` summary of a clip finished earlier, read back from its .jsonl (line by line)."""
    frames = 0
    per_track: Counter[int] = Counter()
    with open(outputs["jsonl"] or "", encoding="utf-8") as f:
        for line in f:
            frames += 1
            per_track.update(p["track_id"] for p in json.loads(line)["people"])
    present = {k: v if v is not None and Path(v).exists() else None for k, v in outputs.items()}
    return {
        "input": str(item.path),
        "frames": frames,
        "tracks": [{"track_id": k, "frames": v} for k, v in sorted(per_track.items())],
        "outputs": present,
        "skipped": True,
    }
