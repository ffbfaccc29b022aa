"""Build bodyfit's open default body model from the `anny` package (build time only).

    pip install -e '.[build]'
    python -m bodyfit_cli.body.build_default --out models/default_body.npz --seed 0

anny (Apache-2.0 code, CC0 MakeHuman-based data) is a 104-bone rig in an A-pose, z-up. This script
turns it into an SMPL-format model that `smplx.SMPL` can load through a data struct:

1. samples adult phenotypes (sex, age, muscle, weight, height, proportions) with a fixed seed;
2. re-poses every sample into SMPL's T-pose with anny's own 104-bone skin weights, in SMPL's frame
   (y up, facing +z, the body's left at +x, meters);
3. merges the 104 bones into SMPL's 24 joints (skin weights summed, joint centres from bone heads);
4. takes 10 PCA components of the T-posed samples, scaled to unit variance like SMPL's betas;
5. fits `J_regressor` and the keypoint landmarks as sparse convex vertex combinations that follow
   the shape across all samples.

Same anny version + same seed gives the same file (float64 throughout, deterministic solvers).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from bodyfit_cli.vocabulary import KEYPOINT_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS

NUM_BETAS = 10

# Which anny bones each SMPL joint drives (the joint's rotation moves these bones' skin).
JOINT_BONES: dict[str, tuple[str, ...]] = {
    "pelvis": ("root", "pelvis.L", "pelvis.R", "spine05", "spine04"),
    "spine1": ("spine03",),
    "spine2": ("spine02",),
    "spine3": ("spine01",),
    "neck": ("neck01", "neck02", "neck03"),
    "head": ("head", "eye.L", "eye.R"),
}
for _s, _side in (("left", "L"), ("right", "R")):
    JOINT_BONES[f"{_s}_hip"] = (f"upperleg01.{_side}", f"upperleg02.{_side}")
    JOINT_BONES[f"{_s}_knee"] = (f"lowerleg01.{_side}", f"lowerleg02.{_side}")
    JOINT_BONES[f"{_s}_ankle"] = (f"foot.{_side}",)
    JOINT_BONES[f"{_s}_foot"] = tuple(
        f"toe{t}-{k}.{_side}" for t in range(1, 6) for k in range(1, 4) if not (t == 1 and k == 3)
    )
    JOINT_BONES[f"{_s}_collar"] = (f"clavicle.{_side}", f"shoulder01.{_side}")
    JOINT_BONES[f"{_s}_shoulder"] = (f"upperarm01.{_side}", f"upperarm02.{_side}")
    JOINT_BONES[f"{_s}_elbow"] = (f"lowerarm01.{_side}", f"lowerarm02.{_side}")
    JOINT_BONES[f"{_s}_wrist"] = (f"wrist.{_side}",) + tuple(f"metacarpal{k}.{_side}" for k in range(1, 5))
    JOINT_BONES[f"{_s}_hand"] = tuple(f"finger{f}-{k}.{_side}" for f in range(1, 6) for k in range(1, 4))

# Where each SMPL joint centre sits: the mean of these anny bone heads.
JOINT_CENTRES: dict[str, tuple[str, ...]] = {
    "pelvis": ("spine04",),
    "spine1": ("spine03",),
    "spine2": ("spine02",),
    "spine3": ("spine01",),
    "neck": ("neck01",),
    "head": ("head",),
}
for _s, _side in (("left", "L"), ("right", "R")):
    JOINT_CENTRES[f"{_s}_hip"] = (f"upperleg01.{_side}",)
    JOINT_CENTRES[f"{_s}_knee"] = (f"lowerleg01.{_side}",)
    JOINT_CENTRES[f"{_s}_ankle"] = (f"foot.{_side}",)
    JOINT_CENTRES[f"{_s}_foot"] = tuple(f"toe{t}-1.{_side}" for t in range(1, 6))
    JOINT_CENTRES[f"{_s}_collar"] = (f"clavicle.{_side}",)
    JOINT_CENTRES[f"{_s}_shoulder"] = (f"upperarm01.{_side}",)
    JOINT_CENTRES[f"{_s}_elbow"] = (f"lowerarm01.{_side}",)
    JOINT_CENTRES[f"{_s}_wrist"] = (f"wrist.{_side}",)
    JOINT_CENTRES[f"{_s}_hand"] = tuple(f"finger{f}-1.{_side}" for f in range(2, 6))

# Adult phenotype ranges sampled uniformly (anny's age 0.5 ~ 18 years, 0.85 ~ 60 years).
PHENOTYPE_RANGES: dict[str, tuple[float, float]] = {
    "gender": (0.0, 1.0),
    "age": (0.55, 0.85),
    "muscle": (0.1, 0.9),
    "weight": (0.1, 0.9),
    "height": (0.0, 1.0),
    "proportions": (0.0, 1.0),
}

# anny is z-up and faces -y; SMPL is y-up and faces +z. This rotation (-90 deg about x) maps one to the other.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation matrix taking direction a to direction b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def subtree(parents: list[int], root: int) -> list[int]:
    """The bone `root` and all its descendants."""
    out = [root]
    for b in range(len(parents)):
        if b != root and any(p == root for p in _ancestors(parents, b)):
            out.append(b)
    return out


def _ancestors(parents: list[int], b: int) -> list[int]:
    chain = []
    while parents[b] >= 0:
        b = parents[b]
        chain.append(b)
    return chain


def t_pose(
    verts: np.ndarray, heads: np.ndarray, weights: np.ndarray, parents: list[int], labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Re-pose one A-posed sample into a T-pose (arms along +-x, legs straight down).

    Each limb segment is rotated about its proximal joint so that it points along the target axis,
    parents first; vertices follow by linear blend skinning with anny's 104-bone weights.
    """
    idx = {n: i for i, n in enumerate(labels)}
    transforms = np.tile(np.eye(4), (len(labels), 1, 1))

    def posed_head(name: str) -> np.ndarray:
        b = idx[name]
        return transforms[b, :3, :3] @ heads[b] + transforms[b, :3, 3]

    chains = []
    for side, sign in (("L", 1.0), ("R", -1.0)):
        arm = np.array([sign, 0.0, 0.0])
        chains += [
            (f"upperarm01.{side}", f"lowerarm01.{side}", arm),
            (f"lowerarm01.{side}", f"wrist.{side}", arm),
            (f"wrist.{side}", f"finger3-1.{side}", arm),
            (f"upperleg01.{side}", f"lowerleg01.{side}", np.array([0.0, -1.0, 0.0])),
            (f"lowerleg01.{side}", f"foot.{side}", np.array([0.0, -1.0, 0.0])),
        ]
    for start, end, target in chains:
        pivot = posed_head(start)
        rot = rotation_between(posed_head(end) - pivot, target)
        step = np.eye(4)
        step[:3, :3] = rot
        step[:3, 3] = pivot - rot @ pivot
        for b in subtree(parents, idx[start]):
            transforms[b] = step @ transforms[b]
    homo = np.concatenate([verts, np.ones((len(verts), 1))], 1)
    per_vertex = np.einsum("vb,bij->vij", weights, transforms)
    new_verts = np.einsum("vij,vj->vi", per_vertex, homo)[:, :3]
    new_heads = np.einsum("bij,bj->bi", transforms, np.concatenate([heads, np.ones((len(heads), 1))], 1))[:, :3]
    return new_verts, new_heads


def fit_sparse_regressor(
    samples: np.ndarray, targets: np.ndarray, candidates: np.ndarray, ridge: float = 1e-4
) -> np.ndarray:
    """Convex weights over `candidates` vertices that reproduce `targets` in every sample.

    samples: (N, V, 3) vertices; targets: (N, 3); returns (len(candidates),) non-negative weights
    summing to one, so the point moves with the shape and with rigid motions of the body.
    """
    n = len(samples)
    a = samples[:, candidates, :].transpose(0, 2, 1).reshape(n * 3, len(candidates))
    b = targets.reshape(n * 3)
    scale = np.sqrt(n * 3)
    rows = [a, scale * np.ones((1, len(candidates))), np.sqrt(ridge) * np.eye(len(candidates))]
    rhs = [b, [scale], np.zeros(len(candidates))]
    w, _ = nnls(np.concatenate(rows), np.concatenate([np.asarray(r, float) for r in rhs]), maxiter=5000)
    return w / w.sum()


def nearest(points: np.ndarray, target: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k allowed vertices nearest to target."""
    ids = np.flatnonzero(allowed)
    order = np.argsort(np.linalg.norm(points[ids] - target, axis=1))
    return ids[order[:k]]


def landmark_targets(verts: np.ndarray, joints: np.ndarray, body: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample target positions of the vocabulary points that are not single vertices.

    Annotators and MediaPipe place hips at the outer hip, below and outside the hip joint centre; the
    other limb points sit at the joint centres.
    """
    j = {n: joints[i] for i, n in enumerate(SMPL_JOINT_NAMES)}
    out: dict[str, np.ndarray] = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for name in ("shoulder", "elbow", "wrist", "knee", "ankle"):
            out[f"{side}_{name}"] = j[f"{side}_{name}"]
        hip = j[f"{side}_hip"]
        level = body & (np.abs(verts[:, 1] - hip[1]) < 0.015) & (np.sign(verts[:, 0]) == sign)
        outer = verts[level][np.argmax(sign * verts[level, 0])]
        out[f"{side}_hip"] = hip + 0.4 * np.array([outer[0] - hip[0], 0.0, 0.0]) + np.array([0.0, -0.02, 0.0])
    return out


def single_vertex_landmarks(
    verts: np.ndarray,
    joints: np.ndarray,
    heads: np.ndarray,
    labels: list[str],
    dominant: np.ndarray,
    components: np.ndarray,
) -> dict[str, int]:
    """Vocabulary points that are surface features: one vertex each, chosen on the mean shape."""
    idx = {n: i for i, n in enumerate(labels)}
    j = {n: joints[i] for i, n in enumerate(SMPL_JOINT_NAMES)}
    body = components == 0
    head_region = body & (verts[:, 1] > j["neck"][1] + 0.03)
    mid = head_region & (np.abs(verts[:, 0]) < 0.01)
    out = {"nose": int(np.flatnonzero(mid)[np.argmax(verts[mid, 2])])}
    for side, sign, s in (("left", 1.0, "L"), ("right", -1.0, "R")):
        eye = heads[idx[f"eye.{s}"]]
        eyeball = (components > 0) & (np.linalg.norm(verts - eye, axis=1) < 0.02)
        out[f"{side}_eye"] = int(np.flatnonzero(eyeball)[np.argmax(verts[eyeball, 2])])
        ear_band = head_region & (np.abs(verts[:, 1] - (eye[1] - 0.025)) < 0.012)
        ear_band &= np.abs(verts[:, 2] - (j["head"][2] - 0.01)) < 0.03
        out[f"{side}_ear"] = int(np.flatnonzero(ear_band)[np.argmax(sign * verts[ear_band, 0])])
        foot = body & np.isin(
            dominant, [idx[f"foot.{s}"]] + [idx[b] for b in labels if b.startswith("toe") and b.endswith(s)]
        )
        low = foot & (verts[:, 1] < j[f"{side}_ankle"][1] - 0.02)
        out[f"{side}_heel"] = int(np.flatnonzero(low)[np.argmin(verts[low, 2])])
        toe = body & np.isin(dominant, [idx[f"toe1-1.{s}"], idx[f"toe1-2.{s}"]])
        out[f"{side}_big_toe"] = int(np.flatnonzero(toe)[np.argmax(verts[toe, 2])])
    return out


def sample_phenotypes(model, n: int, seed: int) -> dict[str, np.ndarray]:
    """Adult phenotypes whose statures follow adult statistics.

    anny's `height` spans roughly 1.3-2.4 m, so instead of sampling it uniformly, each sample draws a
    stature (men 1.75 +- 0.07 m, women 1.62 +- 0.065 m, blended by anny's `gender`, 0 = male) and
    solves for the `height` value that gives it.
    """
    rng = np.random.default_rng(seed)
    phen = {k: rng.uniform(lo, hi, n) for k, (lo, hi) in PHENOTYPE_RANGES.items()}
    grid = np.linspace(0.0, 1.0, 6)
    statures = np.stack([_statures(model, {**phen, "height": np.full(n, g)}) for g in grid], 1)
    female = phen["gender"]
    target = rng.normal(1.75 - 0.13 * female, 0.07 - 0.005 * female)
    phen["height"] = np.array([np.interp(t, s, grid) for t, s in zip(target, statures)])
    return phen


def _statures(model, phen: dict[str, np.ndarray]) -> np.ndarray:
    verts, _ = _rest(model, phen)
    return verts[..., 2].max(1) - verts[..., 2].min(1)


def _rest(model, phen: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A-pose rest vertices (N, V, 3) and bone heads (N, 104, 3) in anny's frame."""
    n = len(next(iter(phen.values())))
    eye = torch.eye(4, dtype=torch.float64)[None, None].repeat(n, model.bone_count, 1, 1)
    with torch.no_grad():
        out = model(pose_parameters=eye, phenotype_kwargs={k: torch.tensor(v) for k, v in phen.items()})
    return out["rest_vertices"].numpy(), out["rest_bone_heads"].numpy()


def build(n_samples: int, seed: int) -> dict[str, np.ndarray]:
    import anny  # build-time dependency only: `pip install -e '.[build]'`

    model = anny.Anny().to(dtype=torch.float64)
    labels: list[str] = list(model.bone_labels)
    parents: list[int] = [int(p) for p in model.bone_parents]
    phen = sample_phenotypes(model, n_samples, seed)
    rest_v, rest_h = _rest(model, phen)
    rest_v = rest_v @ ANNY_TO_SMPL.T
    rest_h = rest_h @ ANNY_TO_SMPL.T
    n_verts = rest_v.shape[1]

    bone_w = np.zeros((n_verts, len(labels)))
    vbi = model.vertex_bone_indices.numpy()
    vbw = model.vertex_bone_weights.numpy()
    np.add.at(bone_w, (np.repeat(np.arange(n_verts), vbi.shape[1]), vbi.reshape(-1)), vbw.reshape(-1))
    bone_w /= bone_w.sum(1, keepdims=True)

    faces = model.faces.numpy().astype(np.int64)
    verts_t = np.empty_like(rest_v)
    heads_t = np.empty_like(rest_h)
    for s in range(n_samples):
        verts_t[s], heads_t[s] = t_pose(rest_v[s], rest_h[s], bone_w, parents, labels)

    idx = {n: i for i, n in enumerate(labels)}
    joints_t = np.stack([heads_t[:, [idx[b] for b in JOINT_CENTRES[n]]].mean(1) for n in SMPL_JOINT_NAMES], 1)
    # Centre every sample on its pelvis joint so that betas never move the root.
    verts_t -= joints_t[:, :1]
    heads_t -= joints_t[:, :1]
    joints_t -= joints_t[:, :1]

    # Shape space: PCA of the T-posed samples, unit-variance coefficients like SMPL's betas.
    mean = verts_t.mean(0)
    centred = (verts_t - mean).reshape(n_samples, -1)
    gram = centred @ centred.T / (n_samples - 1)
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1][:NUM_BETAS]
    comps = centred.T @ evecs[:, order]
    comps /= np.linalg.norm(comps, axis=0)
    std = np.sqrt(evals[order])
    shapedirs = (comps * std).reshape(n_verts, 3, NUM_BETAS)
    height = verts_t[:, :, 1].max(1) - verts_t[:, :, 1].min(1)
    coeffs = centred @ comps / std
    for k in range(NUM_BETAS):  # deterministic signs: first beta grows height, others largest entry positive
        flip = (
            np.corrcoef(coeffs[:, 0], height)[0, 1] < 0
            if k == 0
            else shapedirs[..., k].reshape(-1)[np.argmax(np.abs(shapedirs[..., k]))] < 0
        )
        if flip:
            shapedirs[..., k] *= -1

    components = np.zeros(n_verts, dtype=np.int64)
    import trimesh

    mesh = trimesh.Trimesh(mean, faces, process=False)
    parts = sorted(trimesh.graph.connected_components(mesh.edges, nodes=np.arange(n_verts)), key=len, reverse=True)
    for c, part in enumerate(parts):
        components[part] = c
    body = components == 0

    joint_w = np.zeros((n_verts, len(SMPL_JOINT_NAMES)))
    for j, name in enumerate(SMPL_JOINT_NAMES):
        joint_w[:, j] = bone_w[:, [idx[b] for b in JOINT_BONES[name]]].sum(1)
    assert np.allclose(joint_w.sum(1), 1.0), "every anny bone must map to an SMPL joint"

    mean_joints = joints_t.mean(0)
    j_regressor = np.zeros((len(SMPL_JOINT_NAMES), n_verts))
    for j in range(len(SMPL_JOINT_NAMES)):
        cand = nearest(mean, mean_joints[j], body, 160)
        j_regressor[j, cand] = fit_sparse_regressor(verts_t, joints_t[:, j], cand)

    dominant = bone_w.argmax(1)
    singles = single_vertex_landmarks(mean, mean_joints, heads_t.mean(0), labels, dominant, components)
    per_sample = [landmark_targets(verts_t[s], joints_t[s], body) for s in range(n_samples)]
    k_max = 160
    lm_ids = np.zeros((len(KEYPOINT_NAMES), k_max), dtype=np.int64)
    lm_w = np.zeros((len(KEYPOINT_NAMES), k_max))
    for i, name in enumerate(KEYPOINT_NAMES):
        if name in singles:
            lm_ids[i, 0], lm_w[i, 0] = singles[name], 1.0
            continue
        targets = np.stack([p[name] for p in per_sample])
        cand = nearest(mean, targets.mean(0), body, k_max)
        lm_ids[i], lm_w[i] = cand, fit_sparse_regressor(verts_t, targets, cand)

    kintree = np.stack([np.array(SMPL_PARENTS), np.arange(len(SMPL_PARENTS))]).astype(np.int64)
    import importlib.metadata

    return {
        "v_template": mean.astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "J_regressor": j_regressor.astype(np.float32),
        "weights": joint_w.astype(np.float32),
        "kintree_table": kintree,
        "f": faces.astype(np.int32),
        "landmark_names": np.array(KEYPOINT_NAMES),
        "landmark_ids": lm_ids.astype(np.int32),
        "landmark_weights": lm_w.astype(np.float32),
        "build_info": np.array(
            f"anny {importlib.metadata.version('anny')}; seed {seed}; {n_samples} adult samples; "
            f"bodyfit_cli.body.build_default"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("models/default_body.npz"))
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    data = build(args.samples, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data)
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.1f} MB) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
