"""Precision/recall (Kynkaanniemi et al. 2019, k=3) and density/coverage (Naeem et al. 2020, k=5).

With NND_k(x) the distance from x to its k-th nearest neighbour in its own set (itself excluded),
real features r_1..r_N and fake features f_1..f_M:

    precision = 1/M  sum_j  1[ exists i: |f_j - r_i| <= NND_k(r_i) ]
    recall    = 1/N  sum_i  1[ exists j: |r_i - f_j| <= NND_k(f_j) ]
    density   = 1/(kM) sum_j sum_i 1[ |f_j - r_i| <= NND_k(r_i) ]
    coverage  = 1/N  sum_i  1[ min_j |r_i - f_j| <= NND_k(r_i) ]

Vectorised over row chunks (memory O(chunk x N)); one pass over the real-fake distances serves all four
numbers. Squared distances from one matrix product per chunk are compared with squared radii (same
order, no square roots).
"""

from __future__ import annotations

import torch


def sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a_i - b_j|^2 for all pairs, from one matrix product (clamped at 0)."""
    d = torch.addmm((a * a).sum(1, keepdim=True), a, b.T, alpha=-2)
    return d.add_((b * b).sum(1)).clamp_min_(0)


def knn_sq(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """N x (k+1) smallest squared distances of each row of x to the rows of x (column 0: itself)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} needs at least k+1 points, got {len(x)}")
    return torch.cat(
        [
            sq_dists(x[i : i + chunk], x).topk(k + 1, dim=1, largest=False, sorted=True).values
            for i in range(0, len(x), chunk)
        ]
    )


def knn_radii(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance of each row of x to its k-th nearest other row."""
    return knn_sq(x, k, chunk)[:, k].sqrt()


@torch.no_grad()
def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    k_pr: int = 3,
    k_dc: int = 5,
    chunk: int = 2048,
    real_knn: torch.Tensor | None = None,
) -> dict[str, float]:
    """{'precision', 'recall' (k=k_pr), 'density', 'coverage' (k=k_dc)} of N x D real vs M x D fake features.

    `real_knn`: optional precomputed `knn_sq(real, max(k_pr, k_dc))`, to reuse across calls.
    """
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be N x D with the same D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    kmax = max(k_pr, k_dc)
    if len(real) <= kmax or len(fake) <= k_pr:
        raise ValueError(
            f"precision/recall/density/coverage need more than {kmax} real and {k_pr} fake points, "
            f"got {len(real)} and {len(fake)}"
        )
    fake = fake.to(real.dtype)
    if real_knn is None or real_knn.shape != (len(real), kmax + 1):
        real_knn = knn_sq(real, kmax, chunk)
    r_pr, r_dc = real_knn[:, k_pr], real_knn[:, k_dc]
    f_pr = knn_sq(fake, k_pr, chunk)[:, k_pr]
    precise = torch.zeros(len(fake), dtype=torch.bool)
    dense = torch.zeros(len(fake), dtype=torch.long)
    recalled = torch.zeros(len(real), dtype=torch.bool)
    nearest_fake = torch.full((len(real),), float("inf"), dtype=real.dtype)
    for j in range(0, len(fake), chunk):
        d = sq_dists(fake[j : j + chunk], real)  # c x N
        precise[j : j + chunk] = (d <= r_pr).any(1)
        dense[j : j + chunk] = (d <= r_dc).sum(1, dtype=torch.int32)
        recalled |= (d <= f_pr[j : j + chunk, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, d.amin(0))
    return {
        "precision": precise.double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": dense.double().sum().item() / (k_dc * len(fake)),
        "coverage": (nearest_fake <= r_dc).double().mean().item(),
    }


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    m = prdc(real, fake, k_pr=k, k_dc=k)
    return m["precision"], m["recall"]


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    m = prdc(real, fake, k_pr=k, k_dc=k)
    return m["density"], m["coverage"]
