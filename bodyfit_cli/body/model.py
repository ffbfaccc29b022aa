"""The body model used by every fitting backend: SMPL-format data plus landmarks, as a torch module.

Fitting only needs joints and the vocabulary's landmarks, so the forward pass poses just the few
hundred vertices the landmarks use; the full mesh is posed only when asked for (export, render).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from bodyfit_cli.body import lbs
from bodyfit_cli.vocabulary import KEYPOINT_NAMES, NUM_SMPL_JOINTS


@dataclass
class BodyModelData:
    """Arrays of an SMPL-family model, named as in SMPL's files.

    v_template (V, 3); shapedirs (V, 3, S); posedirs ((J-1)*9, V*3) or None when the model has no
    pose correctives; J_regressor (J, V); weights (V, J); parents (J,); faces (F, 3).
    landmark_ids / landmark_weights (K, N): each vocabulary keypoint as a convex combination of N
    vertices (rows with zero weight: the model does not define that keypoint).
    smpl_joints (24,): which model joints are SMPL's 24 (SMPL-X has more joints).
    pose_joints (23,): model joint receiving each row of a 23-joint SMPL body_pose, -1 where the
    model has no such joint (SMPL-X has no separate hand joints).
    """

    name: str
    v_template: np.ndarray
    shapedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray
    landmark_ids: np.ndarray
    landmark_weights: np.ndarray
    posedirs: np.ndarray | None = None
    smpl_joints: np.ndarray = field(default_factory=lambda: np.arange(NUM_SMPL_JOINTS))
    pose_joints: np.ndarray = field(default_factory=lambda: np.arange(1, NUM_SMPL_JOINTS))


@dataclass
class BodyOutput:
    """joints (B, 24, 3) SMPL joints; keypoints (B, K, 3) vocabulary points; vertices (B, V, 3) or None;
    points (B, P, 3) the vertices of a `PointSet` when one was asked for."""

    joints: torch.Tensor
    keypoints: torch.Tensor
    vertices: torch.Tensor | None
    points: torch.Tensor | None = None


@dataclass
class Skeleton:
    """A posed kinematic chain in the model's own joint layout (J joints): what skinning and its gradient
    read. betas (B, num_betas); rotations (B, J, 3, 3) local; posed_joints (B, J, 3);
    transforms (B, J, 4, 4) from rest to posed points; pose_features (B, (J-1)*9), None without correctives."""

    betas: torch.Tensor
    rotations: torch.Tensor
    posed_joints: torch.Tensor
    transforms: torch.Tensor
    pose_features: torch.Tensor | None


@dataclass
class PointSet:
    """The model's data for a fixed subset of vertices, sliced once: posing a few hundred surface points
    (for a silhouette) costs a fraction of the full mesh."""

    ids: torch.Tensor
    template: torch.Tensor
    shapedirs: torch.Tensor
    weights: torch.Tensor
    posedirs: torch.Tensor | None


class BodyModel(torch.nn.Module):
    """Poses an SMPL-family model from rotation matrices (SMPL's 24-joint interface)."""

    def __init__(self, data: BodyModelData, num_betas: int = 10) -> None:
        super().__init__()
        self.name = data.name
        self.num_betas = min(num_betas, data.shapedirs.shape[-1])
        self.parents = [int(p) for p in data.parents]
        self.parents[0] = -1
        self.num_joints = len(self.parents)
        self.schedule = lbs.ancestor_schedule(self.parents)

        def buf(name: str, array: np.ndarray) -> None:
            self.register_buffer(
                name, torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32), persistent=False
            )

        # For the closed-form gradient (body/gradient.py): each joint's parent (J stands for none) and
        # subtree (row j marks j and its descendants).
        parent_index = torch.tensor([p if p >= 0 else self.num_joints for p in self.parents])
        self.register_buffer("parent_index", parent_index, persistent=False)
        subtree = np.eye(self.num_joints)
        for j in range(self.num_joints - 1, 0, -1):  # parents come before their children
            subtree[self.parents[j]] += subtree[j]
        buf("subtree", subtree)

        shapedirs = data.shapedirs[..., : self.num_betas]
        buf("v_template", data.v_template)
        buf("shapedirs", shapedirs)
        buf("weights", data.weights)
        self.register_buffer("faces", torch.as_tensor(data.faces.astype(np.int64)), persistent=False)
        # Joints are linear in the shaped vertices: precompute them in the shape space.
        buf("joint_template", data.J_regressor @ data.v_template)
        buf("joint_shapedirs", np.einsum("jv,vcs->jcs", data.J_regressor, shapedirs))
        self.has_posedirs = data.posedirs is not None and bool(np.any(data.posedirs))
        if self.has_posedirs:
            buf("posedirs", data.posedirs)

        # Keep only as many columns as the widest landmark uses (heaviest weights first).
        order = np.argsort(-data.landmark_weights, axis=1, kind="stable")
        width = max(int((data.landmark_weights > 0).sum(1).max()), 1)
        lm_ids = np.take_along_axis(data.landmark_ids, order, 1)[:, :width]
        lm_w = np.take_along_axis(data.landmark_weights, order, 1)[:, :width]
        used = lm_w > 0
        subset, inverse = np.unique(lm_ids[used], return_inverse=True)
        lm_index = np.zeros_like(lm_ids)
        lm_index[used] = inverse
        self.register_buffer("subset", torch.as_tensor(subset, dtype=torch.long), persistent=False)
        self.register_buffer("landmark_index", torch.as_tensor(lm_index, dtype=torch.long), persistent=False)
        buf("landmark_weights", np.where(used, lm_w, 0.0))
        buf("subset_template", data.v_template[subset])
        buf("subset_shapedirs", shapedirs[subset])
        buf("subset_weights", data.weights[subset])
        if self.has_posedirs:
            cols = (subset[:, None] * 3 + np.arange(3)).reshape(-1)
            buf("subset_posedirs", data.posedirs[:, cols])
        self.register_buffer("keypoint_defined", torch.as_tensor(used.any(1), dtype=torch.bool), persistent=False)
        self.smpl_joints = torch.as_tensor(data.smpl_joints, dtype=torch.long)
        self.pose_joints = torch.as_tensor(data.pose_joints, dtype=torch.long)
        # SMPL's own layout (24 joints, body_pose rows = joints 1..23) needs no re-indexing per call.
        self.smpl_layout = len(self.parents) == NUM_SMPL_JOINTS and np.array_equal(
            data.pose_joints, np.arange(1, NUM_SMPL_JOINTS)
        )
        assert len(KEYPOINT_NAMES) == lm_ids.shape[0]

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    def _rotations(self, rotations: torch.Tensor) -> torch.Tensor:
        """SMPL's 24 local rotations (B, 24, 3, 3) -> this model's (B, J, 3, 3)."""
        if self.smpl_layout:
            return rotations
        eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
        rots = eye.expand(rotations.shape[0], self.num_joints, 3, 3).clone()
        rots[:, 0] = rotations[:, 0]
        keep = self.pose_joints >= 0
        rots[:, self.pose_joints[keep]] = rotations[:, 1:][:, keep]
        return rots

    def _betas(self, betas: torch.Tensor) -> torch.Tensor:
        """(B, num_betas): extra columns dropped, missing ones zero."""
        if betas.shape[1] == self.num_betas:  # no slicing: fitting differentiates through this at every step
            return betas
        betas = betas[:, : self.num_betas]
        if betas.shape[1] < self.num_betas:
            betas = torch.nn.functional.pad(betas, (0, self.num_betas - betas.shape[1]))
        return betas

    def point_set(self, ids: torch.Tensor) -> PointSet:
        ids = ids.to(self.v_template.device)
        posedirs = None
        if self.has_posedirs:
            posedirs = self.posedirs[:, (ids[:, None] * 3 + torch.arange(3, device=ids.device)).reshape(-1)]
        return PointSet(ids, self.v_template[ids], self.shapedirs[ids], self.weights[ids], posedirs)

    def root_position(self, betas: torch.Tensor) -> torch.Tensor:
        """(B, 3): where the root joint (SMPL's pelvis) is without translation, in any pose, since the global
        orientation turns the body about it. Relates `transl` to the pelvis without posing the body."""
        return self.joint_template[0] + self._betas(betas) @ self.joint_shapedirs[0].T

    def forward(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        betas: torch.Tensor,
        transl: torch.Tensor | None = None,
        vertices: bool = False,
    ) -> BodyOutput:
        """global_orient (B, 3, 3), body_pose (B, 23, 3, 3), betas (B, S<=num_betas), transl (B, 3)."""
        return self.pose_rotations(torch.cat([global_orient[:, None], body_pose], 1), betas, transl, vertices)

    def skeleton(self, rotations: torch.Tensor, betas: torch.Tensor) -> Skeleton:
        """The kinematic chain posed by SMPL's 24 local rotations (B, 24, 3, 3), root first."""
        betas = self._betas(betas)
        rots = self._rotations(rotations)
        rest_joints = self.joint_template + lbs.blend_shapes(betas, self.joint_shapedirs)
        posed_joints, transforms = lbs.rigid_transforms(rots, rest_joints, self.parents, self.schedule)
        feats = lbs.pose_features(rots) if self.has_posedirs else None
        return Skeleton(betas, rots, posed_joints, transforms, feats)

    def rest_points(
        self, skeleton: Skeleton, template: torch.Tensor, shapedirs: torch.Tensor, posedirs: torch.Tensor | None
    ) -> torch.Tensor:
        """Points shaped by the betas (and corrected for the pose, where the model has correctives), before skinning."""
        pts = template + lbs.blend_shapes(skeleton.betas, shapedirs)
        if skeleton.pose_features is not None:
            pts = pts + (skeleton.pose_features @ posedirs).reshape(pts.shape)
        return pts

    def landmarks(self, subset_points: torch.Tensor) -> torch.Tensor:
        """The keypoints (B, K, 3) from the posed subset (B, P, 3)."""
        return (subset_points[:, self.landmark_index] * self.landmark_weights[..., None]).sum(2)

    def pose_rotations(
        self,
        rotations: torch.Tensor,
        betas: torch.Tensor,
        transl: torch.Tensor | None = None,
        vertices: bool = False,
        points: PointSet | None = None,
    ) -> BodyOutput:
        """As `forward`, with all of SMPL's 24 local rotations in one (B, 24, 3, 3) tensor, root first;
        also poses `points` when given."""
        return self.pose_skeleton(self.skeleton(rotations, betas), transl, vertices, points)

    def pose_skeleton(
        self,
        sk: Skeleton,
        transl: torch.Tensor | None = None,
        vertices: bool = False,
        points: PointSet | None = None,
    ) -> BodyOutput:
        """The body on an already posed chain, for callers that also read the chain (neural descent's stages)."""

        def pose_points(template, shapedirs, weights, posedirs) -> torch.Tensor:
            return lbs.skin(self.rest_points(sk, template, shapedirs, posedirs), weights, sk.transforms)

        sub = pose_points(
            self.subset_template,
            self.subset_shapedirs,
            self.subset_weights,
            self.subset_posedirs if self.has_posedirs else None,
        )
        keypoints = self.landmarks(sub)
        verts = None
        if vertices:
            verts = pose_points(
                self.v_template, self.shapedirs, self.weights, self.posedirs if self.has_posedirs else None
            )
        pts = None
        if points is not None:
            pts = pose_points(points.template, points.shapedirs, points.weights, points.posedirs)
        joints = sk.posed_joints if self.smpl_layout else sk.posed_joints[:, self.smpl_joints]
        if transl is not None:
            joints = joints + transl[:, None]
            keypoints = keypoints + transl[:, None]
            verts = verts + transl[:, None] if verts is not None else None
            pts = pts + transl[:, None] if pts is not None else None
        return BodyOutput(joints=joints, keypoints=keypoints, vertices=verts, points=pts)
