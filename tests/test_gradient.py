"""The closed-form gradient LGD reads (body/gradient.py) against autograd through the same loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_learned import toy_dataset

from bodyfit_cli.body.loaders import load_body_model
from bodyfit_cli.body.model import BodyModel, BodyModelData
from bodyfit_cli.fitting.init import MeanInit
from bodyfit_cli.learned.lgd.fit import reprojection_gradient
from bodyfit_cli.networks import state
from bodyfit_cli.training.views import ViewSampler
from bodyfit_cli.vocabulary import NUM_KEYPOINTS, NUM_SMPL_JOINTS, SMPL_PARENTS


def random_model(extra_joints: int, seed: int = 0) -> BodyModel:
    """A small random model with pose correctives; with extra joints (hanging from the head and wrists, as
    SMPL-X's) it is not in SMPL's layout, and one SMPL joint (the right hand) maps to none of them."""
    g = np.random.default_rng(seed)
    n_v = 300
    parents = list(SMPL_PARENTS) + [15, 20, 21][:extra_joints]
    n_j = len(parents)
    # Each vertex mostly follows one joint, as on a body: rest points near their joints.
    joints_rest = np.cumsum(g.normal(scale=0.1, size=(n_j, 3)), 0)
    owner = g.integers(0, n_j, n_v)
    weights = g.random((n_v, n_j)) ** 6 + 4 * np.eye(n_j)[owner]
    weights /= weights.sum(1, keepdims=True)
    v_template = joints_rest[owner] + g.normal(scale=0.05, size=(n_v, 3))
    j_reg = np.eye(n_j)[owner].T
    j_reg /= j_reg.sum(1, keepdims=True).clip(min=1)
    pose_joints = np.arange(1, NUM_SMPL_JOINTS)
    if extra_joints:
        pose_joints[-1] = -1
    return BodyModel(
        BodyModelData(
            name=f"random-{n_j}",
            v_template=v_template,
            shapedirs=g.normal(size=(n_v, 3, 10)) * 0.01,
            J_regressor=j_reg,
            weights=weights,
            parents=np.array(parents),
            faces=g.integers(0, n_v, (500, 3)),
            landmark_ids=g.integers(0, n_v, (NUM_KEYPOINTS, 4)),
            landmark_weights=np.full((NUM_KEYPOINTS, 4), 0.25),
            posedirs=g.normal(size=((n_j - 1) * 9, n_v * 3)) * 0.01,
            pose_joints=pose_joints,
        )
    )


@pytest.mark.parametrize("kind", ["default", "correctives", "smplx-like layout"])
def test_closed_form_gradient_equals_autograd(kind: str) -> None:
    model = {
        "default": lambda: BodyModel(load_body_model("default")),
        "correctives": lambda: random_model(extra_joints=0),
        "smplx-like layout": lambda: random_model(extra_joints=3),
    }[kind]()
    assert model.has_posedirs == (kind != "default") and model.smpl_layout == (kind != "smplx-like layout")
    batch = ViewSampler(model, toy_dataset()).sample(8, seed=1)
    x = state.encode(model, MeanInit(model)(batch.obs), batch.box)
    x = x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))  # away from any rest pose
    expected = reprojection_gradient(model, x, batch.obs, batch.box, closed_form=False)
    got = reprojection_gradient(model, x, batch.obs, batch.box)
    rotations, betas = NUM_SMPL_JOINTS * 6, model.num_betas
    for part in (slice(0, rotations), slice(rotations, rotations + betas), slice(rotations + betas, None)):
        scale = expected[:, part].abs().max()
        assert scale > 0
        assert torch.allclose(got[:, part], expected[:, part], atol=1e-5 * float(scale), rtol=0)
