"""Gaussian mixture fitting by expectation-maximisation (full covariances), for the pose prior.

Small and deterministic: k-means++ seeding from a seeded generator, float64 throughout, a fixed
number of iterations, and a floor added to every covariance so that directions the data never
moves in (joints that motion capture does not observe) stay finite rather than singular.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Mixture:
    """weights (K,), means (K, D), covariances (K, D, D)."""

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) under each component, weighted: (N, D) -> (N, K)."""
        chol = torch.linalg.cholesky(self.covariances)
        diff = (x[None] - self.means[:, None]).transpose(1, 2)  # (K, D, N): all points as one right-hand side
        white = torch.linalg.solve_triangular(chol, diff, upper=False)
        maha = white.pow(2).sum(1).T  # (N, K)
        log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        d = x.shape[1]
        return torch.log(self.weights) - 0.5 * (maha + log_det + d * math.log(2 * math.pi))


def kmeans_plus_plus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k starting centres spread over the data (Arthur & Vassilvitskii, 2007)."""
    centres = [x[torch.randint(len(x), (1,), generator=gen)].squeeze(0)]
    for _ in range(1, k):
        dist = torch.cdist(x, torch.stack(centres)).min(1).values.pow(2)
        centres.append(x[torch.multinomial(dist / dist.sum(), 1, generator=gen)].squeeze(0))
    return torch.stack(centres)


def fit_gmm(
    x: torch.Tensor,
    components: int = 8,
    iters: int = 100,
    floor: float = 1e-3,
    seed: int = 0,
    progress=lambda it, ll: None,
) -> Mixture:
    """EM on data x (N, D). `floor` is added to every covariance's diagonal (variance units)."""
    x = x.double()
    n, d = x.shape
    gen = torch.Generator().manual_seed(seed)
    means = kmeans_plus_plus(x, components, gen)
    eye = torch.eye(d, dtype=x.dtype)
    # Start from hard k-means-like assignments to the seeds, then alternate E and M steps.
    resp = torch.nn.functional.one_hot(torch.cdist(x, means).argmin(1), components).double()
    mix = None
    for it in range(iters):
        count = resp.sum(0) + 1e-10
        means = (resp.T @ x) / count[:, None]
        centred = x[None] - means[:, None]  # (K, N, D)
        covs = (centred * resp.T[..., None]).transpose(1, 2) @ centred / count[:, None, None] + floor * eye
        mix = Mixture(count / n, means, covs)
        log_p = mix.log_prob(x)
        total = torch.logsumexp(log_p, 1)
        resp = torch.exp(log_p - total[:, None])
        progress(it, float(total.mean()))
    assert mix is not None
    return mix
