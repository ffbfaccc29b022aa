"""The people of a clip's frames read from the keypoint files another tool wrote, instead of detected.

OpenPose run on a clip (`--video clip.mp4 --write_json DIR`) writes one `clip_000000000042_keypoints.json`
per frame, people or none. The number in a file's name is the frame it is for (0-based, as bodyfit counts),
so files are matched to frames by it, never by their order: a folder holding some frames only, or frames
that `--start` and `--stride` skip, still lines up. Each file is read as `--keypoints` reads a photo's
(detection/keypoint_files.py), so its errors are the same one line naming the file; a frame with no file
has nobody in it.
"""

from __future__ import annotations

import re
from pathlib import Path

from bodyfit_cli.detection.keypoint_files import read_keypoint_file
from bodyfit_cli.detection.types import PersonKeypoints, most_confident
from bodyfit_cli.errors import InputError
from bodyfit_cli.io.video import Frame

# `<prefix><frame>_keypoints.json`; OpenPose's prefix is the clip's stem and an underscore.
_FRAME_FILE = re.compile(r"(?P<prefix>.*?)(?P<frame>\d+)_keypoints\.json")


def clip_keypoint_files(root: Path, clip: Path) -> dict[int, Path]:
    """The keypoint file of each frame of `clip` that has one, under `--keypoints` `root`.

    One folder per clip, `root/<stem>/`, where there is one: its files are the clip's whatever their prefix,
    so a clip renamed after OpenPose ran still finds them. Otherwise `root` itself, where several clips'
    files can lie side by side: only the files named for this clip, `<stem>_<frame>_keypoints.json`.
    """
    own = root / clip.stem
    folder = own if own.is_dir() else root
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        raise InputError(f"cannot read keypoint folder: {folder} ({exc.strerror or exc})") from exc
    by_prefix: dict[str, dict[int, Path]] = {}
    for name in names:
        match = _FRAME_FILE.fullmatch(name)
        if match is None:
            continue
        frames = by_prefix.setdefault(match["prefix"], {})
        frame = int(match["frame"])
        if frame in frames:
            raise InputError(f"two keypoint files for frame {frame} in {folder}: {frames[frame].name}, {name}")
        frames[frame] = folder / name
    named = f"{clip.stem}_"
    if named in by_prefix:
        return by_prefix[named]
    if folder == own and len(by_prefix) == 1:
        return next(iter(by_prefix.values()))
    pattern = f"{named}<frame>_keypoints.json"
    if folder == own and by_prefix:
        prefixes = ", ".join(f"{p}*" for p in by_prefix)
        raise InputError(f"keypoint files of several clips in {own} ({prefixes}) and none named {pattern}")
    if folder == own:
        raise InputError(f"no keypoint files (<name>_<frame>_keypoints.json) in {own}")
    raise InputError(f"no keypoint files for {clip.name} in {root}: neither {pattern} files nor a folder {own}")


class KeypointFrames:
    """A clip's people, frame by frame, from its keypoint files: the video pipeline's finder with no detector."""

    def __init__(self, files: dict[int, Path], size: tuple[int, int], max_people: int) -> None:
        """files: by frame (`clip_keypoint_files`); size: the upright frame's (W, H), which the keypoints
        must lie in; max_people: the most confident this many of a frame's people are kept."""
        self.files = files
        self.size = size
        self.max_people = max_people

    def find(self, frame: Frame) -> list[PersonKeypoints]:
        path = self.files.get(frame.index)
        if path is None:
            return []
        return most_confident(read_keypoint_file(path, image_size=self.size), self.max_people)
