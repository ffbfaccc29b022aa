"""Learning from detected people: detection sets, the best-fit dictionary, in-the-loop (SPIN) training runs,
and choosing the in-the-loop regressor with --init/--method spin."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.detection.types import PersonKeypoints, bbox_from_keypoints
from bodyfit_cli.errors import BodyfitError, InputError, MethodUnavailable
from bodyfit_cli.fitting.registry import make_backend, make_init
from bodyfit_cli.learned.lgd.fit import LearnedGradientDescent
from bodyfit_cli.learned.regressor.network import KeypointRegressor
from bodyfit_cli.learned.spin import train as spin_training
from bodyfit_cli.learned.spin.recipe import InTheLoopConfig
from bodyfit_cli.learned.spin.train import BestFits, train_in_the_loop
from bodyfit_cli.networks import weights as weights_module
from bodyfit_cli.networks.weights import read_network_file, save_network, weights_file
from bodyfit_cli.options import Options
from bodyfit_cli.pipeline import ImagePipeline
from bodyfit_cli.training.detections import DetectionRows, DetectionSet
from bodyfit_cli.training.pose_data import PoseDataset
from bodyfit_cli.training.runs import file_digest
from bodyfit_cli.training.views import ViewSampler
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS, mirror_name


@pytest.fixture(scope="module")
def model() -> BodyModel:
    torch.set_num_threads(1)
    return BodyModel(load_body_model("default"))


def toy_poses(n: int = 32, seed: int = 0) -> PoseDataset:
    """Random mild upright poses, half of them in a validation trial."""
    g = np.random.default_rng(seed)
    orient = np.zeros((n, 3), np.float32)
    orient[:, 1] = g.uniform(-np.pi, np.pi, n)
    return PoseDataset(
        global_orient=orient,
        body_pose=(0.15 * g.standard_normal((n, 69))).astype(np.float32),
        betas=np.zeros((n, 10), np.float32),
        trial=np.array(["01_01", "01_02"] * (n // 2)),
        frame=np.arange(n),
        mirrored=np.zeros(n, bool),
        fit_error_mm=np.zeros(n, np.float32),
    )


def person(seed: int, width: int = 640, height: int = 480) -> PersonKeypoints:
    """A detected person: keypoints in a box, a few undetected, and a full-image mask."""
    g = np.random.default_rng(seed)
    lo = g.uniform([50, 40], [250, 150])
    kp = np.concatenate([lo + g.uniform(0, [180, 300], (NUM_KEYPOINTS, 2)), g.uniform(0.3, 1.0, (NUM_KEYPOINTS, 1))], 1)
    kp[g.choice(NUM_KEYPOINTS, 3, replace=False), 2] = 0.0
    mask = np.zeros((height, width), np.float32)
    x0, y0, x1, y1 = (int(v) for v in bbox_from_keypoints(kp))
    mask[max(y0, 0) : y1, max(x0, 0) : x1] = 0.9
    return PersonKeypoints(kp, bbox_from_keypoints(kp), float(kp[:, 2].mean()), mask)


def test_a_detection_set_survives_saving_and_a_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    rows = DetectionRows()
    people = [person(1), person(2)]
    people[1].mask = None
    truth = [np.random.default_rng(i).normal(size=(NUM_KEYPOINTS, 3)).astype(np.float32) for i in range(2)]
    rows.add(people, 640, 480, "a/clip.mp4", frame=15, truth=truth)
    rows.add([person(3)], 800, 600, "b.jpg", focal=900.0, truth=[truth[0]])
    data = rows.build(with_truth=True)
    data.save(tmp_path / "d.npz")
    back = DetectionSet.load(tmp_path / "d.npz")
    assert len(back) == 3
    for name in (
        "keypoints",
        "focal",
        "image_size",
        "masks",
        "has_mask",
        "source",
        "frame",
        "has_truth",
        "true_keypoints3d",
    ):
        assert np.array_equal(getattr(back, name), getattr(data, name)), name
    assert back.has_mask.tolist() == [True, False, True] and not back.masks[1].any() and back.masks[0].max() > 200
    assert back.frame.tolist() == [15, 15, 0] and back.source.tolist() == ["a/clip.mp4", "a/clip.mp4", "b.jpg"]
    assert back.focal[2] == 900.0 and back.focal[0] == pytest.approx(800.0)  # the image diagonal by default
    assert back.keypoints.dtype == np.float32 and back.image_size.dtype == np.int32 and back.masks.dtype == np.uint8
    # Without truth the file holds none.
    rows.build().save(tmp_path / "u.npz")
    assert "true_keypoints3d" not in np.load(tmp_path / "u.npz").files
    assert DetectionSet.load(tmp_path / "u.npz").true_keypoints3d is None

    with pytest.raises(InputError, match="no such file.*bodyfit train detect"):
        DetectionSet.load(tmp_path / "missing.npz")
    toy_poses().save(tmp_path / "poses.npz")
    with pytest.raises(InputError, match="not a bodyfit detection set"):
        DetectionSet.load(tmp_path / "poses.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InputError, match="not a bodyfit detection set"):
        DetectionSet.load(tmp_path / "junk.npz")


def test_a_mirrored_set_is_what_detecting_in_the_mirrored_picture_stores() -> None:
    people = [person(6), person(7)]
    for p in people:  # a mask on the left part of the box only, so a wrong flip shows
        x0, y0, x1, y1 = (int(v) for v in p.bbox)
        p.mask = np.zeros((480, 640), np.float32)
        p.mask[max(y0, 0) : y1, max(x0, 0) : (x0 + x1) // 2] = 1.0
    truth = [np.random.default_rng(i).normal(size=(NUM_KEYPOINTS, 3)).astype(np.float32) for i in range(2)]
    rows = DetectionRows()
    rows.add(people, 640, 480, "a.jpg", truth=truth)
    data = rows.build(with_truth=True)

    swap = [KEYPOINT_INDEX[mirror_name(n)] for n in KEYPOINT_NAMES]
    seen_in_mirror = []
    for p in people:
        kp = p.keypoints[swap].copy()
        kp[:, 0] = 640 - kp[:, 0]
        seen_in_mirror.append(PersonKeypoints(kp, bbox_from_keypoints(kp), p.score, p.mask[:, ::-1].copy()))
    rows = DetectionRows()
    rows.add(seen_in_mirror, 640, 480, "a.jpg", truth=[t[swap] * np.float32([-1, 1, 1]) for t in truth])
    expected = rows.build(with_truth=True)

    got = data.mirrored()
    assert np.allclose(got.keypoints, expected.keypoints, atol=1e-4)
    assert np.array_equal(got.true_keypoints3d, expected.true_keypoints3d)
    assert np.abs(got.masks.astype(int) - expected.masks.astype(int)).max() <= 2  # 8-bit rounding
    assert np.abs(got.masks.astype(int) - data.masks.astype(int)).max() > 200  # not symmetric: the flip matters
    back = got.mirrored()
    assert np.allclose(back.keypoints, data.keypoints) and np.array_equal(back.masks, data.masks)
    assert np.array_equal(got.source, data.source) and np.array_equal(got.focal, data.focal)


def test_observations_are_the_image_pipelines(tmp_path: Path) -> None:
    people = [person(4), person(5)]
    pipe = ImagePipeline(Options(out=tmp_path, render=False, method="smplify", init="mean", device="cpu"))
    expected = pipe.observations(people, 640, 480)
    rows = DetectionRows()
    rows.add(people, 640, 480, "x.jpg")
    got = rows.build().observations([0, 1])
    for name in ("keypoints", "focal", "center", "scale"):
        assert torch.allclose(getattr(got, name), getattr(expected, name), atol=1e-4), name
    assert torch.allclose(got.masks, expected.masks, atol=0.5 / 255 + 1e-6)  # stored as 8-bit
    assert rows.build().observations(1).batch_size == 1


def test_best_fits_keep_only_better_acceptable_fits() -> None:
    fits = BestFits(4, 10, max_error=0.05, max_betas=3.0)

    def params(b: int, value: float, betas: float = 0.5) -> BodyParams:
        flat = torch.full((b, 85), value)
        flat[:, 72:82] = betas
        return BodyParams.unflatten(flat)

    offered = params(3, 1.0)
    offered.betas[2, 4] = 5.0  # implausible shape
    accepted, rejected = fits.update(torch.tensor([0, 1, 2]), offered, torch.tensor([0.03, 0.2, 0.01]))
    assert (accepted, rejected) == (1, 2)  # 1: too far from the keypoints; 2: the shape
    assert fits.has_fit(torch.arange(4)).tolist() == [True, False, False, False]
    assert fits.update(torch.tensor([0]), params(1, 2.0), torch.tensor([0.04])) == (0, 0)  # worse: kept the old
    assert float(fits.get(torch.tensor([0])).global_orient[0, 0]) == 1.0
    assert fits.update(torch.tensor([0, 3]), params(2, 3.0), torch.tensor([0.02, 0.05])) == (2, 0)
    assert float(fits.get(torch.tensor([0])).global_orient[0, 0]) == 3.0
    assert fits.error.tolist()[0] == pytest.approx(0.02) and fits.has_fit(torch.tensor([3])).item()


def tiny_setup(model: BodyModel, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A toy pose dataset, two synthetic detected people, and a tiny regressor to start from."""
    poses = toy_poses()
    poses.save(tmp_path / "poses.npz")
    sampler = ViewSampler(model, poses.split()[0])
    obs = sampler.sample(2, seed=4).obs
    rows = DetectionRows()
    for i in range(2):
        kp = obs.keypoints[i].numpy().astype(np.float64)
        rows.add([PersonKeypoints(kp, bbox_from_keypoints(kp), 0.9)], 1280, 960, f"p{i}.jpg")
    rows.build().save(tmp_path / "people.npz")
    net = KeypointRegressor(model.num_betas, hidden=16, blocks=1)
    net.mean_state.copy_(sampler.sample(64, seed=0).state.mean(0))
    save_network(tmp_path / "start.pt", "regressor", net, {"kind": "regressor"}, {"command": "bodyfit test"})
    return tmp_path / "poses.npz", tmp_path / "people.npz", tmp_path / "start.pt"


def test_a_tiny_in_the_loop_run_writes_weights_with_a_manifest_and_resumes(model: BodyModel, tmp_path: Path) -> None:
    poses, people, start = tiny_setup(model, tmp_path)
    cfg = InTheLoopConfig(
        epochs=2,
        batch=1,
        replay=2,
        synthetic_batch=4,
        teacher="smplify",
        smplify_iters=3,
        mirror=False,
        min_keypoints=4,
        max_error=1.0,
        checkpoint_every=1,
        validation_views=8,
    )

    def run(c: InTheLoopConfig, name: str, resume: bool = False) -> dict:
        return train_in_the_loop(
            c, model, [people], poses, start, tmp_path / f"{name}.pt", tmp_path / f"{name}.ckpt", resume
        )

    full = run(cfg, "a")
    run(replace(cfg, epochs=1), "b")  # stopped after the first epoch (2 steps)...
    resumed = run(cfg, "b", resume=True)  # ...and continued to the second
    a, b = read_network_file(tmp_path / "a.pt"), read_network_file(tmp_path / "b.pt")
    for key, value in a["state_dict"].items():
        assert torch.allclose(value, b["state_dict"][key], atol=1e-6), key
    assert resumed["epochs"] == full["epochs"]
    start_weights = read_network_file(start)["state_dict"]
    assert not torch.equal(a["state_dict"]["mlp.out.1.weight"], start_weights["mlp.out.1.weight"])  # it learned

    manifest = a["manifest"]
    assert a["kind"] == "regressor" and a["architecture"]["hidden"] == 16  # the start's architecture
    assert manifest["steps"] == 4 and manifest["people_used"] == 2 and manifest["start_from"] == str(start)
    assert [d["people"] for d in manifest["detections"]] == [2] and len(manifest["detections"][0]["sha256"]) == 16
    assert [e["epoch"] for e in manifest["epochs"]] == [1, 2]
    for entry in manifest["epochs"]:
        assert entry["fitted"] == 2 and entry["accepted"] + entry["rejected"] <= 2
    assert manifest["epochs"][0]["accepted"] >= 1  # the first fits of a person are always kept when acceptable
    assert set(manifest["validation"]) == {"pa_mpjpe_mm", "mpjpe_mm"}
    assert manifest["teacher_weights"] is None  # SMPLify has none
    assert a["training"]["in_the_loop"]["max_error"] == 1.0
    # `bodyfit train spin` runs the same, its detections and start named in the config.
    named = replace(cfg, detections=[str(people)], start_from=str(start))
    assert (
        spin_training.train(named, model, poses, tmp_path / "c.pt", tmp_path / "c.ckpt", False)
        == manifest["validation"]
    )
    c = read_network_file(tmp_path / "c.pt")
    assert all(torch.equal(v, c["state_dict"][k]) for k, v in a["state_dict"].items())

    with pytest.raises(InputError, match="another configuration"):
        run(replace(cfg, max_error=0.5), "b", resume=True)
    # A checkpoint from before --teacher and --mirror existed was SMPLify without mirror: it resumes as that only.
    saved = torch.load(tmp_path / "b.ckpt", weights_only=True)
    for key in ("teacher", "mirror"):
        del saved["config"][key]
    torch.save(saved, tmp_path / "b.ckpt")
    run(cfg, "b", resume=True)
    with pytest.raises(InputError, match="another configuration"):
        run(replace(cfg, teacher="lgd"), "b", resume=True)
    with pytest.raises(InputError, match="no regressor to start from"):
        train_in_the_loop(
            cfg, model, [people], poses, tmp_path / "none.pt", tmp_path / "c.pt", tmp_path / "c.ckpt", False
        )


def test_lgd_can_be_the_teacher_instead_of_smplify(
    model: BodyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poses, people, start = tiny_setup(model, tmp_path)
    cfg = InTheLoopConfig(
        epochs=1,
        batch=2,
        replay=0,
        synthetic_batch=4,
        smplify_iters=3,
        mirror=False,
        min_keypoints=4,
        max_error=1.0,
        validation_views=8,
    )
    refined: list[int] = []
    lgd_fit = LearnedGradientDescent.fit
    monkeypatch.setattr(
        LearnedGradientDescent,
        "fit",
        lambda self, obs, init: refined.append(obs.batch_size) or lgd_fit(self, obs, init),
    )

    def kept_fits(teacher: str, mirror: bool = False) -> torch.Tensor:
        train_in_the_loop(
            replace(cfg, teacher=teacher, mirror=mirror),
            model,
            [people],
            poses,
            start,
            tmp_path / f"{teacher}.pt",
            tmp_path / f"{teacher}.ckpt",
            False,
        )
        return torch.load(tmp_path / f"{teacher}.ckpt", weights_only=True)["fits"]["params"]

    plain = kept_fits("smplify")
    assert refined == []
    with_lgd = kept_fits("lgd")
    assert refined == [2]  # one step, both people fitted by LGD
    teacher, lgd_file = (
        read_network_file(tmp_path / "lgd.pt")["manifest"]["teacher_weights"],
        weights_file("lgd", model.name),
    )
    assert teacher == {"file": str(lgd_file), "sha256": file_digest(lgd_file)}
    assert (with_lgd - plain).abs().max() > 1e-2
    # In a mirror there are four people: two steps of two, and the mirrored ones get fits of their own.
    mirrored = kept_fits("lgd", mirror=True)
    assert refined == [2, 2, 2] and mirrored.shape[0] == 4 and (mirrored[2:] - mirrored[:2]).abs().max() > 1e-2
    with pytest.raises(InputError, match="unknown in-the-loop teacher 'hund'"):
        kept_fits("hund")


def test_spin_chooses_the_in_the_loop_regressor(
    model: BodyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = BodyModel(replace(load_body_model("default"), name="untrained"))
    with pytest.raises(BodyfitError, match="--init spin.*bodyfit train spin"):
        make_init("spin", other)
    with pytest.raises(MethodUnavailable, match="bodyfit train spin"):
        make_backend("spin", other)

    _, _, start = tiny_setup(model, tmp_path)
    real = weights_module.weights_file
    monkeypatch.setattr(
        weights_module, "weights_file", lambda kind, body: start if kind == "regressor_spin" else real(kind, body)
    )
    init = make_init("spin", model)
    assert init.name == "spin" and init.net.architecture["hidden"] == 16
    backend = make_backend("spin", model)
    assert make_init("auto", model, backend) is backend and make_init("spin", model, backend) is backend
    # auto prefers the in-the-loop regressor, and takes the mocap-only one where there is none.
    assert make_init("auto", model).name == "spin"
    monkeypatch.setattr(
        weights_module,
        "weights_file",
        lambda kind, body: tmp_path / "none.pt" if kind == "regressor_spin" else real(kind, body),
    )
    assert make_init("auto", model).name == "regressor"
