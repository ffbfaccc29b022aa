"""SPIN (Kolotouros, Pavlakos, Black, Daniilidis, ICCV 2019): the keypoint regressor trained with fitting in
the loop, on detected people whose 3D truth nobody knows.

The mocap-only regressor learned from synthetic views of the body model's own landmarks; a real detector
puts its points a little elsewhere and fails in its own ways. Here it learns from the detector itself:

    detections -> regressor -> a fit from its prediction -> best fit per person so far (`BestFits`)
               -> the regressor learns to predict those fits (and keeps learning synthetic mocap views)

SPIN fits with SMPLify (`teacher="smplify"`). The default teacher is LGD: SMPLify lands in nearly the same
place from any reasonable start, so a better regressor does not give it better fits to learn from, while
LGD's fits are more accurate than SMPLify's on held-out detections and improve as its start improves, so
each helps the other as SPIN intends. A fit is only learned from when it explains the keypoints
(reprojection error below `max_error` of the person's size) with a plausible shape (|betas| at most
`max_betas`). Each step also learns from `replay` kept fits of earlier steps (more learning per fit) and
from the prediction's own reprojection onto the detections (SPIN's 2D keypoint loss); each person is also
learned from in a mirror (`mirror`). Like `training.trainer`: seeded (epoch e's order and step i's batches
come from the seed alone), checkpointed with the fits, resumable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.errors import InputError
from bodyfit_cli.fitting.losses import reprojection_error_px
from bodyfit_cli.fitting.priors import load_prior
from bodyfit_cli.fitting.smplify import SMPLify, SMPLifyConfig
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix
from bodyfit_cli.learned.lgd.fit import LearnedGradientDescent
from bodyfit_cli.learned.lgd.recipe import FILE as LGD_FILE
from bodyfit_cli.learned.regressor import train as regressor
from bodyfit_cli.learned.regressor.network import KeypointRegressor
from bodyfit_cli.learned.regressor.recipe import FILE as REGRESSOR_FILE
from bodyfit_cli.learned.spin.recipe import TEACHERS, InTheLoopConfig
from bodyfit_cli.networks import state
from bodyfit_cli.networks.weights import build_network, read_network_file, save_network, weights_file
from bodyfit_cli.training.config import NetworkConfig
from bodyfit_cli.training.detections import DetectionSet
from bodyfit_cli.training.objectives import state_loss
from bodyfit_cli.training.runs import (
    file_digest,
    load_checkpoint,
    manifest,
    save_checkpoint,
    training_poses,
)
from bodyfit_cli.training.trainer import Learner, Progress, batch_seed, validate
from bodyfit_cli.training.views import Batch, ViewSampler

SEEN = 0.3  # a keypoint counts as detected at this confidence (as in `reprojection_error_px`)


# What may differ between a checkpoint and the run resuming it: how long it runs and how it reports; and
# the files it started from (the detections must be the same files: their digests are checked).
RESUMABLE_CHANGES = {"epochs", "checkpoint_every", "validation_views", "detections", "start_from"}
# Options added after checkpoints were first written, as runs before them did it (not today's defaults).
BEFORE_OPTIONS = {"teacher": "smplify", "mirror": False, "tilt": 0.0}


class BestFits:
    """Per detected person, the best acceptable fit seen so far (SPIN's fits dictionary).

    A fit is acceptable when its mean reprojection error (share of the person's box diagonal) is at most
    `max_error` and every |beta| at most `max_betas`; it replaces the kept one only when its error is lower.
    People without an acceptable fit yet have error inf and are not learned from.
    """

    def __init__(self, size: int, num_betas: int, max_error: float, max_betas: float) -> None:
        self.params = torch.zeros(size, 3 + 69 + num_betas + 3)
        self.error = torch.full((size,), math.inf)
        self.max_error, self.max_betas = max_error, max_betas

    def acceptable(self, params: BodyParams, error: torch.Tensor) -> torch.Tensor:
        return (error <= self.max_error) & (params.betas.abs().amax(-1) <= self.max_betas) & error.isfinite()

    def update(self, index: torch.Tensor, params: BodyParams, error: torch.Tensor) -> tuple[int, int]:
        """Offer fits for people `index`; returns (accepted: kept as the new best, rejected: unacceptable)."""
        params, error = params.map(lambda t: t.detach().cpu()), error.detach().cpu()
        ok = self.acceptable(params, error)
        better = ok & (error < self.error[index])
        self.params[index[better]] = params.flatten()[better]
        self.error[index[better]] = error[better]
        return int(better.sum()), int((~ok).sum())

    def has_fit(self, index: torch.Tensor) -> torch.Tensor:
        return self.error[index].isfinite()

    def get(self, index: torch.Tensor) -> BodyParams:
        return BodyParams.unflatten(self.params[index].clone())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"params": self.params, "error": self.error}

    def load_state_dict(self, saved: dict[str, torch.Tensor]) -> None:
        self.params, self.error = saved["params"].clone(), saved["error"].clone()


def usable_rows(data: DetectionSet, min_keypoints: int) -> np.ndarray:
    """Rows with at least `min_keypoints` detected keypoints: fewer do not constrain a body."""
    return np.flatnonzero((data.keypoints[..., 2] >= SEEN).sum(-1) >= min_keypoints)


def fit_targets(model: BodyModel, fits: BodyParams, obs: Observations, world: bool) -> Batch:
    """The fits as a training `Batch`, so `state_loss` compares predictions with them as with synthetic truth;
    `world`: the features hold the world landmarks (`state.world_features`)."""
    box = person_box(obs)
    rotations = axis_angle_to_matrix(torch.cat([fits.global_orient[:, None], fits.body_pose], 1))
    body = fits.pose(model)
    return Batch(
        obs=obs,
        box=box,
        features=state.keypoint_features(obs, box, world),
        rotations=rotations,
        betas=fits.betas,
        keypoints=body.keypoints,
        joints=body.joints,
        state=state.encode(model, fits, box),
    )


def detection_loss(model: BodyModel, x: torch.Tensor, target: Batch) -> torch.Tensor:
    """(B,) confidence-weighted mean distance of the prediction's projected keypoints to the detections, in
    box sizes (SPIN's 2D keypoint loss, with the detections in place of annotations)."""
    body = state.pose(model, state.decode(x, target.box))
    uv = project(body.keypoints, target.obs.focal, target.obs.center)
    conf = target.obs.keypoints[..., 2]
    dist = (uv - target.obs.keypoints[..., :2]).norm(dim=-1) / target.box.size[:, None]
    return (conf * dist).sum(-1) / conf.sum(-1).clamp(min=1e-6)


def load_start(path: Path, model: BodyModel) -> tuple[KeypointRegressor, dict]:
    """The regressor to start from (normally the mocap-only one) and its file's contents."""
    if not path.is_file():
        raise InputError(
            f"no regressor to start from: {path} (train one with 'bodyfit train regressor', or give --start-from)"
        )
    try:
        blob = read_network_file(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same input error
        raise InputError(f"cannot read regressor weights {path} ({type(e).__name__}: {e})") from None
    if blob.get("kind") != "regressor" or blob["architecture"].get("num_betas") != model.num_betas:
        raise InputError(f"{path} does not hold regressor weights for body model '{model.name}'")
    try:
        net = build_network(blob, KeypointRegressor)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same input error
        raise InputError(f"cannot read regressor weights {path} ({type(e).__name__}: {e})") from None
    assert isinstance(net, KeypointRegressor)
    return net, blob


class InTheLoopRun:
    """One run's state: the network, its optimiser, the fits, the per-epoch counts and the step reached."""

    def __init__(self, cfg: InTheLoopConfig, model: BodyModel, data: DetectionSet, net: KeypointRegressor) -> None:
        if cfg.teacher not in TEACHERS:
            raise InputError(f"unknown in-the-loop teacher '{cfg.teacher}' (choose from {', '.join(TEACHERS)})")
        self.cfg, self.model, self.data = cfg, model, data
        self.device = model.v_template.device
        self.net = net.to(self.device).train()
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.rows = usable_rows(data, cfg.min_keypoints)
        if len(self.rows) == 0:
            raise InputError(f"no detected person has {cfg.min_keypoints} keypoints or more to fit")
        self.fits = BestFits(len(data), model.num_betas, cfg.max_error, cfg.max_betas)
        iters = cfg.smplify_iters
        self.teacher: SMPLify | LearnedGradientDescent = (
            SMPLify(
                model, load_prior("gmm", self.device), SMPLifyConfig(torso_iters=max(1, iters // 3), full_iters=iters)
            )
            if cfg.teacher == "smplify"
            else LearnedGradientDescent(model)
        )
        self.steps_per_epoch = -(-len(self.rows) // cfg.batch)
        self.step = 0
        self.history: list[dict[str, float]] = []

    def epoch_order(self, epoch: int) -> np.ndarray:
        return self.rows[np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.rows))]

    def train_step(self, sampler: ViewSampler) -> dict[str, float]:
        """One step: predict a batch of detections, fit them with the teacher, keep the best fits, learn from them
        (and from `replay` more people's kept fits) and from mocap views."""
        cfg, model = self.cfg, self.model
        epoch, k = divmod(self.step, self.steps_per_epoch)
        rows = torch.from_numpy(self.epoch_order(epoch)[k * cfg.batch : (k + 1) * cfg.batch])
        obs = self.data.observations(rows, self.device)
        with torch.no_grad():
            box = person_box(obs)
            features = state.keypoint_features(obs, box, self.net.world)
            start = state.to_params(model, state.decode(self.net(features), box))
            fitted = self.teacher.fit(obs, start)
            error = reprojection_error_px(fitted.pose(model).keypoints, obs) / obs.scale
        accepted, rejected = self.fits.update(rows, fitted, error)
        learn = torch.cat([rows, self.replayed()])
        learn = learn[self.fits.has_fit(learn)]
        loss = torch.zeros((), device=self.device)
        if len(learn):
            obs = self.data.observations(learn, self.device)
            with torch.no_grad():
                target = fit_targets(model, self.fits.get(learn).map(lambda t: t.to(self.device)), obs, self.net.world)
            x = self.net(target.features)
            per_person, _ = state_loss(model, x, target)
            if cfg.detection_weight:
                per_person = per_person + cfg.detection_weight * detection_loss(model, x, target)
            loss = loss + cfg.fit_weight * per_person.mean()
        synthetic = sampler.sample(cfg.synthetic_batch, batch_seed(cfg.seed, self.step))
        synthetic_loss, _ = state_loss(model, self.net(synthetic.features), synthetic)
        loss = loss + cfg.synthetic_weight * synthetic_loss.mean()
        for group in self.opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (self.step + 1) / max(cfg.warmup, 1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        self.count(epoch, len(rows), accepted, rejected)
        self.step += 1
        return {"loss": float(loss.detach()), "epoch": epoch, "learned": len(learn), **self.history[-1]}

    def replayed(self) -> torch.Tensor:
        """`replay` people drawn (seeded by the step) from those with a kept fit: more learning per fit."""
        known = torch.nonzero(self.fits.error.isfinite()).flatten()
        if not self.cfg.replay or len(known) == 0:
            return torch.zeros(0, dtype=torch.long)
        gen = torch.Generator().manual_seed(batch_seed(self.cfg.seed, self.step))
        return known[torch.randint(len(known), (self.cfg.replay,), generator=gen)]

    def count(self, epoch: int, fitted: int, accepted: int, rejected: int) -> None:
        """Per-epoch counts for the manifest: fits made, accepted as new bests, rejected; and at the
        epoch's end so far, how many people have a fit and its mean reprojection error."""
        if len(self.history) <= epoch:
            self.history.append({"epoch": epoch + 1, "fitted": 0, "accepted": 0, "rejected": 0})
        entry = self.history[epoch]
        entry["fitted"] += fitted
        entry["accepted"] += accepted
        entry["rejected"] += rejected
        known = self.fits.error[self.fits.error.isfinite()]
        entry["with_fit"] = int(known.numel())
        entry["mean_error"] = round(float(known.mean()), 5) if known.numel() else math.nan

    def save_checkpoint(self, path: Path, digests: list[str]) -> None:
        state = {"net": self.net.state_dict(), "optimizer": self.opt.state_dict(), "fits": self.fits.state_dict()}
        save_checkpoint(path, asdict(self.cfg), self.step, detections_sha256=digests, history=self.history, **state)

    def resume(self, path: Path, digests: list[str]) -> None:
        config = asdict(self.cfg)
        saved = load_checkpoint(path, self.device, config, RESUMABLE_CHANGES, BEFORE_OPTIONS, detections_sha256=digests)
        self.net.load_state_dict(saved["net"])
        self.opt.load_state_dict(saved["optimizer"])
        self.fits.load_state_dict({k: v.cpu() for k, v in saved["fits"].items()})
        self.step, self.history = int(saved["step"]), saved["history"]


def train_in_the_loop(
    cfg: InTheLoopConfig,
    model: BodyModel,
    detections: Sequence[Path],
    data_path: Path,
    start_from: Path,
    out: Path,
    checkpoint: Path,
    resume: bool,
    progress: Progress = lambda done, total, logs: None,
) -> dict:
    """Train from `start_from` on the detected people of `detections` (their truth, if any, is never read);
    writes the weights with a manifest to `out` and returns the manifest."""
    if not detections:
        raise InputError("in-the-loop training needs at least one detection set (bodyfit train detect)")
    sets = [DetectionSet.load(p) for p in detections]
    digests = [file_digest(p) for p in detections]
    data = DetectionSet.concatenate(sets)
    if cfg.mirror:
        data = DetectionSet.concatenate([data, data.mirrored()])
    train, val = training_poses(data_path)
    torch.manual_seed(cfg.seed)
    net, start = load_start(start_from, model)
    run = InTheLoopRun(cfg, model, data, net)
    if resume and checkpoint.is_file():
        run.resume(checkpoint, digests)
    # A regressor that reads world landmarks keeps seeing them in its synthetic views, as it was trained.
    landmarks = start["training"].get("landmarks") or None
    sampler = ViewSampler(model, train, shape_sigma=cfg.shape_sigma, tilt=cfg.tilt, landmarks=landmarks)
    total = cfg.epochs * run.steps_per_epoch
    while run.step < total:
        logs = run.train_step(sampler)
        if run.step % cfg.checkpoint_every == 0 or run.step == total:
            run.save_checkpoint(checkpoint, digests)
        progress(run.step, total, logs)
    # Scored as the mocap-only regressor is: what in-the-loop training must not forget.
    learner = Learner(regressor.STEP, run.net, model, NetworkConfig(kind="regressor"))
    scores = validate(
        learner,
        ViewSampler(model, val, shape_sigma=cfg.shape_sigma, landmarks=landmarks),
        cfg.validation_views,
        batch_seed(cfg.seed + 1, 0),
    )
    lgd_file = weights_file(LGD_FILE, model.name)
    learned_from = {
        "method": f"in the loop (SPIN): {cfg.teacher} fits of detected people, mixed with synthetic mocap views",
        # The fits learned from are the teacher's: with LGD, they depend on its weights.
        "teacher_weights": {"file": str(lgd_file), "sha256": file_digest(lgd_file)} if cfg.teacher == "lgd" else None,
        "start_from": str(start_from),
        "start_from_sha256": file_digest(start_from),
        "start_from_command": start.get("manifest", {}).get("command"),
        "detections": [{"file": str(p), "sha256": d, "people": len(s)} for p, d, s in zip(detections, digests, sets)],
        "people_used": len(run.rows),
        "steps": run.step,
        "epochs": run.history,
    }
    made = manifest(data_path, train, val, model, scores, **learned_from)
    save_network(out, "regressor", run.net, {"kind": "regressor", "in_the_loop": asdict(cfg)}, made)
    return made


def train(
    cfg: InTheLoopConfig,
    model: BodyModel,
    data: Path,
    out: Path,
    checkpoint: Path,
    resume: bool,
    progress: Progress = lambda done, total, logs: None,
) -> dict[str, float]:
    """`bodyfit train spin`: `train_in_the_loop` on `cfg.detections` from `cfg.start_from` (default: the shipped
    regressor); returns the validation scores."""
    start_from = Path(cfg.start_from) if cfg.start_from is not None else weights_file(REGRESSOR_FILE, model.name)
    detections = [Path(p) for p in cfg.detections]
    return train_in_the_loop(cfg, model, detections, data, start_from, out, checkpoint, resume, progress)["validation"]


def describe(logs: dict[str, float]) -> str:
    """The progress line of a step: the epoch, the loss, and how many people have a fit to learn from."""
    return (
        f"epoch {logs['epoch'] + 1}, loss {logs['loss']:.3f}, {logs['with_fit']} people with a fit "
        f"({logs['rejected']} fits rejected this epoch)"
    )
