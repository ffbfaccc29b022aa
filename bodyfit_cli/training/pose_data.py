"""The pose dataset every learned part trains on: motion capture retargeted to the body model.

    mocap trials -> 3D joints -> fit pose (one shape per subject) -> drop near-duplicate frames
    -> add left-right mirrored copies -> split into train / validation by trial

Rebuilding from the same files, settings and body model gives the same dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.errors import InputError
from bodyfit_cli.fitting.fit3d import TORSO_JOINTS, fit_joints3d
from bodyfit_cli.geometry.procrustes import rigid_transform
from bodyfit_cli.io.atomic import ensure_dir, write_npz_atomic
from bodyfit_cli.mocap import SUFFIXES, AmassClip, MocapClip, read_mocap
from bodyfit_cli.vocabulary import SMPL_JOINT_INDEX, SMPL_JOINT_NAMES, mirror_name

# Whole CMU subjects that no shipped weight, prior or tuned constant sees: the accuracy benchmarks'
# people (06 basketball, 10 soccer kicks, 13 sitting on a stool, squats, everyday motions), beside
# another lab's actors (HDM05). `bodyfit train data` skips their trials.
HELD_OUT_SUBJECTS = ("06", "10", "13")
# Watched during training (never fitted to): one trial of five training subjects.
VALIDATION_TRIALS = ("01_01", "02_01", "03_01", "05_01", "14_01")


@dataclass
class PoseDataset:
    """N poses. global_orient (N, 3) and body_pose (N, 69) axis-angle in the mocap's y-up world;
    betas (N, 10) of the subject; trial (N,) names; frame (N,) source frame; mirrored (N,) bool;
    fit_error_mm (N,) mean joint distance of the retargeted pose to the mocap joints."""

    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    trial: np.ndarray
    frame: np.ndarray
    mirrored: np.ndarray
    fit_error_mm: np.ndarray

    def __len__(self) -> int:
        return len(self.trial)

    def select(self, mask: np.ndarray) -> PoseDataset:
        return PoseDataset(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    def split(self, validation: tuple[str, ...] = VALIDATION_TRIALS) -> tuple[PoseDataset, PoseDataset]:
        """(train, validation), split by whole trials so no validation frame has a neighbour in training."""
        val = np.isin(self.trial, validation)
        return self.select(~val), self.select(val)

    def save(self, path: Path) -> None:
        ensure_dir(path.parent)
        write_npz_atomic(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @staticmethod
    def load(path: Path) -> PoseDataset:
        try:
            with np.load(path) as data:
                return PoseDataset(**{f.name: data[f.name] for f in fields(PoseDataset)})
        except FileNotFoundError:
            raise InputError(
                f"cannot read pose dataset: {path} (no such file; make it with 'bodyfit train data')"
            ) from None
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(f"cannot read pose dataset: {path} (not a bodyfit pose dataset: {exc})") from None

    @staticmethod
    def concatenate(parts: list[PoseDataset]) -> PoseDataset:
        return PoseDataset(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(PoseDataset)})


def cmu_subject(path: Path) -> str:
    """The subject number of a CMU-named trial ("13" for 13_29.bvh or 13_29.amc); other names give ""."""
    head, _, rest = path.stem.partition("_")
    return head if head.isdigit() and rest.isdigit() else ""


def find_trials(roots: list[Path]) -> list[Path]:
    """Mocap files under the given files or folders, sorted so the dataset does not depend on listing order."""
    found: list[Path] = []
    for root in roots:
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES]
        elif root.is_file():
            found.append(root)
        else:
            raise InputError(f"no such mocap file or folder: {root}")
    if not found:
        raise InputError(f"no mocap files (.amc, .bvh, .npz) under {', '.join(map(str, roots))}")
    return sorted(set(found))


def training_trials(roots: list[Path], hold_out: tuple[str, ...]) -> list[Path]:
    """find_trials without the trials of the held-out CMU subjects."""
    trials = [p for p in find_trials(roots) if cmu_subject(p) not in hold_out]
    if not trials:
        raise InputError(
            f"every mocap trial under {', '.join(map(str, roots))} is of a held-out subject ({', '.join(hold_out)})"
        )
    return trials


# Mirroring across the body's sagittal plane (x -> -x): swap left and right joints, and an axis-angle
# rotation (x, y, z) becomes (x, -y, -z).
_MIRROR_JOINTS = [SMPL_JOINT_INDEX[mirror_name(n)] for n in SMPL_JOINT_NAMES]
_MIRROR_SIGNS = np.array([1.0, -1.0, -1.0])


def mirror(global_orient: np.ndarray, body_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-right mirrored poses: (N, 3), (N, 69) -> same shapes."""
    full = np.concatenate([global_orient[:, None], body_pose.reshape(-1, 23, 3)], 1)
    full = full[:, _MIRROR_JOINTS] * _MIRROR_SIGNS.astype(full.dtype)
    return full[:, 0], full[:, 1:].reshape(-1, 69)


def distinct_frames(joints: np.ndarray, min_move: float) -> np.ndarray:
    """Indices of frames kept when dropping near-duplicates, greedily in time order.

    joints (T, J, 3) root-relative and unrotated; a frame is kept when some joint moved more than
    `min_move` metres from the last kept frame, so a held pose counts once.
    """
    kept = [0]
    for t in range(1, len(joints)):
        if np.abs(joints[t] - joints[kept[-1]]).max() > min_move:
            kept.append(t)
    return np.array(kept)


@dataclass
class RetargetConfig:
    fps: float = 30.0  # CMU's 120 fps has many near-identical frames; 30 fps keeps the motion
    min_move: float = 0.05  # metres; see distinct_frames
    shape_frames: int = 96  # frames per subject used to fit its shape
    batch: int = 1024
    hold_out: tuple[str, ...] = HELD_OUT_SUBJECTS  # CMU subjects whose trials are skipped


def canonical_joints(clip: MocapClip) -> np.ndarray:
    """(T, J, 3) joints with each frame's torso rigidly aligned to the first frame's: what is left is
    the pose itself, without where the body is or which way it faces."""
    torso = [clip.joint_names.index(n) for n in TORSO_JOINTS if n in clip.joint_names]
    x = torch.from_numpy(clip.positions).double()
    rot, shift = rigid_transform(x[:, torso], x[:1, torso].expand(len(x), -1, -1))
    return (x @ rot.transpose(1, 2) + shift[:, None]).numpy()


def retarget_subject(
    model: BodyModel, clips: list[MocapClip], cfg: RetargetConfig, progress: Callable[[str], None]
) -> list[tuple[BodyParams, np.ndarray]]:
    """Fit one shape to a subject's clips, then every clip's poses. Returns (params, error_m) per clip."""
    names = clips[0].joint_names
    joints = [SMPL_JOINT_INDEX[n] for n in names]
    all_frames = torch.tensor(np.concatenate([c.positions for c in clips]))
    pick = np.linspace(0, len(all_frames) - 1, min(cfg.shape_frames, len(all_frames))).round().astype(int)
    fitted, _ = fit_joints3d(model, all_frames[pick], joints, fit_betas=True)
    betas = fitted.betas[:1]
    out = []
    for clip in clips:
        if clip.joint_names != names:
            raise InputError(f"{clip.source}: joints differ from the subject's other trials")
        target = torch.tensor(clip.positions)
        parts = [
            fit_joints3d(model, target[s : s + cfg.batch], joints, betas=betas)
            for s in range(0, len(target), cfg.batch)
        ]
        params = BodyParams(*[torch.cat([getattr(p, f.name) for p, _ in parts]) for f in fields(BodyParams)])
        out.append((params, torch.cat([e for _, e in parts]).numpy()))
        progress(clip.name)
    return out


def subject_key(path: Path) -> str:
    """Trials of one subject share a shape: CMU's AMC files by their subject number, others by folder."""
    return path.stem.split("_")[0] if path.suffix.lower() == ".amc" else str(path.parent)


def _entries(params: BodyParams, error_m: np.ndarray, trial: str, frames: np.ndarray) -> PoseDataset:
    """Dataset rows for one trial's fitted frames, and their mirror images."""
    orient, pose = params.global_orient.numpy(), params.body_pose.flatten(1).numpy()
    m_orient, m_pose = mirror(orient, pose)
    betas = params.betas.numpy()
    n = len(frames)
    return PoseDataset(
        global_orient=np.concatenate([orient, m_orient]).astype(np.float32),
        body_pose=np.concatenate([pose, m_pose]).astype(np.float32),
        betas=np.concatenate([betas, betas]).astype(np.float32),
        trial=np.array([trial] * (2 * n)),
        frame=np.concatenate([frames, frames]).astype(np.int32),
        mirrored=np.repeat([False, True], n),
        fit_error_mm=np.tile(error_m * 1000, 2).astype(np.float32),
    )


def _rest_relative_joints(model: BodyModel, params: BodyParams) -> np.ndarray:
    """Joints posed by body_pose alone (no orientation or translation), for comparing SMPL poses."""
    with torch.no_grad():
        zeros = torch.zeros_like(params.global_orient)
        return BodyParams(zeros, params.body_pose, params.betas, zeros).pose(model).joints.numpy()


def build_pose_dataset(
    model: BodyModel,
    roots: list[Path],
    cfg: RetargetConfig | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> PoseDataset:
    """Read, retarget, thin out and mirror every trial under `roots`."""
    cfg = cfg or RetargetConfig()
    trials = training_trials(roots, cfg.hold_out)
    by_subject: dict[str, list[Path]] = {}
    for path in trials:
        by_subject.setdefault(subject_key(path), []).append(path)
    parts = []
    for paths in by_subject.values():
        clips, amass = [], []
        for path in paths:
            clip = read_mocap(path)
            (amass if isinstance(clip, AmassClip) else clips).append(clip)
        # Thin each trial to its distinct poses before fitting: fewer fits, same variety.
        frames = []
        for clip in clips:
            step = max(1, round(clip.fps / cfg.fps))
            kept = np.arange(0, clip.num_frames, step)
            frames.append(kept[distinct_frames(canonical_joints(clip)[kept], cfg.min_move)])
        thinned = [replace(c, positions=c.positions[f]) for c, f in zip(clips, frames)]
        fitted = retarget_subject(model, thinned, cfg, progress) if clips else []
        for clip, kept, (params, error) in zip(clips, frames, fitted):
            parts.append(_entries(params, error, clip.name, kept))
        for clip in amass:  # already SMPL parameters: no retargeting; SMPL's betas mean nothing to other models
            frames = np.arange(0, len(clip.global_orient), max(1, round(clip.fps / cfg.fps)))
            orient = torch.tensor(clip.global_orient[frames], dtype=torch.float32)
            pose = torch.tensor(clip.body_pose[frames], dtype=torch.float32).view(-1, 23, 3)
            params = BodyParams(orient, pose, torch.zeros(len(frames), model.num_betas), torch.zeros_like(orient))
            keep = distinct_frames(_rest_relative_joints(model, params), cfg.min_move)
            parts.append(_entries(params.select(torch.from_numpy(keep)), np.zeros(len(keep)), clip.name, frames[keep]))
            progress(clip.name)
    return PoseDataset.concatenate(parts)
