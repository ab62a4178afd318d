"""Precision/recall (Kynkaanniemi et al. 2019, k=3) and density/coverage (Naeem et al. 2020, k=5).

With NND_k(x) the distance from x to its k-th nearest neighbour in its own set (itself excluded),
real features r_1..r_N and fake features f_1..f_M:

    precision = 1/M  sum_j  1[ exists i: |f_j - r_i| <= NND_k(r_i) ]
    recall    = 1/N  sum_i  1[ exists j: |r_i - f_j| <= NND_k(f_j) ]
    density   = 1/(kM) sum_j sum_i 1[ |f_j - r_i| <= NND_k(r_i) ]
    coverage  = 1/N  sum_i  1[ min_j |r_i - f_j| <= NND_k(r_i) ]

All four numbers and the k-NN radii come from the tiled float32 Gram passes of `gan_lab.metrics.pairwise`
(shared with KID when both are computed), one pass over each pair of sets, memory O(tile^2) per step.
Squared distances are compared with squared radii (same order, no square roots).

Precision of the decisions: every comparison and every radius is that of float64 distances (the sum of
squared differences of centred features, in float64: each set's own neighbours on its own mean, fake-real
pairs on the real mean). A float32 distance decides only
where it is further from the radius than its proven rounding bound, (D + 16) 2^-24 (|a|^2 + |b|^2); the
pairs within the bound and the k nearest neighbours behind each radius are recomputed in float64 (see
`pairwise`). (With float32 alone a sample near a ball's boundary flips for features of large norm.)

Boundary rule: a point at distance exactly equal to a radius is inside the ball (<=, as NVlabs'
precision/recall code); the prdc package uses < and differs only for ties, e.g. duplicated points.
"""

from __future__ import annotations

import torch

from gan_lab.metrics.pairwise import TILE, PrdcSpec, kid_prdc
from gan_lab.metrics.pairwise import kth_sq as kth_sq


def knn_radii(x: torch.Tensor, k: int, chunk: int = TILE) -> torch.Tensor:
    """Distance of each row of x to its k-th nearest other row (float64)."""
    return kth_sq(x, (k,), chunk)[:, 0].sqrt()


def check(real: torch.Tensor, fake: torch.Tensor, k_pr: int, k_dc: int) -> None:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be N x D with the same D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    kmax = max(k_pr, k_dc)
    if len(real) <= kmax or len(fake) <= k_pr:
        raise ValueError(
            f"precision/recall/density/coverage need more than {kmax} real and {k_pr} fake points, "
            f"got {len(real)} and {len(fake)}"
        )


def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    k_pr: int = 3,
    k_dc: int = 5,
    chunk: int = TILE,
    real_radii: torch.Tensor | None = None,
) -> dict[str, float]:
    """{'precision', 'recall' (k=k_pr), 'density', 'coverage' (k=k_dc)} of N x D real vs M x D fake features.

    `chunk`: the Gram tile size. `real_radii`: optional precomputed `kth_sq(real, (k_pr, k_dc))`, to reuse
    across calls.
    """
    check(real, fake, k_pr, k_dc)
    cache = {}
    if real_radii is not None and real_radii.dtype == torch.float64:
        cache[("kth_sq64", (k_pr, k_dc))] = real_radii
    return kid_prdc(real, fake, prdc=PrdcSpec(k_pr, k_dc), tile=chunk, cache=cache)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    m = prdc(real, fake, k_pr=k, k_dc=k)
    return m["precision"], m["recall"]


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    m = prdc(real, fake, k_pr=k, k_dc=k)
    return m["density"], m["coverage"]
