"""Precision/recall (Kynkaanniemi et al. 2019, k=3) and density/coverage (Naeem et al. 2020, k=5).

With NND_k(x) the distance from x to its k-th nearest neighbour in its own set (itself excluded),
real features r_1..r_N and fake features f_1..f_M:

    precision = 1/M  sum_j  1[ exists i: |f_j - r_i| <= NND_k(r_i) ]
    recall    = 1/N  sum_i  1[ exists j: |r_i - f_j| <= NND_k(f_j) ]
    density   = 1/(kM) sum_j sum_i 1[ |f_j - r_i| <= NND_k(r_i) ]
    coverage  = 1/N  sum_i  1[ min_j |r_i - f_j| <= NND_k(r_i) ]

Vectorised over row chunks (memory O(chunk x N)); one pass over the real-fake distances serves all four
numbers. Squared distances are compared with squared radii (same order, no square roots).

Precision of the decisions: every comparison and every radius is that of float64 distances. The features
are first centred on the real features' mean (in float64; distances do not change), so a float32 matrix
product per chunk screens the pairs accurately and fast; the few pairs within a margin of a radius
(1e-4 x (|a|^2 + |b|^2) of the centred features, far above float32's rounding of the product) and the k
nearest neighbours behind each radius are recomputed exactly in float64 as |a - b|^2. (With float32
alone a sample near a ball's boundary flips for features of large norm.)

Boundary rule: a point at distance exactly equal to a radius is inside the ball (<=, as NVlabs'
precision/recall code); the prdc package uses < and differs only for ties, e.g. duplicated points.
"""

from __future__ import annotations

import torch

MARGIN = 1e-4  # relative band around a radius inside which a float32 distance is recomputed in float64
EXTRA = 4  # neighbour candidates beyond k+1 re-ranked in float64


def sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a_i - b_j|^2 for all pairs, from one matrix product (clamped at 0), in the inputs' dtype."""
    d = torch.addmm((a * a).sum(1, keepdim=True), a, b.T, alpha=-2)
    return d.add_((b * b).sum(1)).clamp_min_(0)


def exact_sq(a: torch.Tensor, b: torch.Tensor, i: torch.Tensor, j: torch.Tensor, block: int = 8192) -> torch.Tensor:
    """float64 |a_i - b_j|^2 for the index pairs (i, j), as the sum of squared differences."""
    out = torch.empty(len(i), dtype=torch.float64)
    for s in range(0, len(i), block):
        out[s : s + block] = (a[i[s : s + block]].double() - b[j[s : s + block]].double()).pow_(2).sum(1)
    return out


def _le(d: torch.Tensor, r: torch.Tensor, margin: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact (float64) |a_i - b_j|^2 <= r_ij for a chunk of float32 distances d: decided in float32 outside
    the band |d - r| <= margin (float32 rounding is far below the margin there), recomputed in float64
    inside it. `r`: float64 squared radii broadcasting to d; `a`, `b`: the float64 features."""
    gap = d - r.float()
    out = gap <= 0
    i, j = (gap.abs_() <= margin).nonzero(as_tuple=True)
    if len(i):
        out[i, j] = exact_sq(a, b, i, j) <= r.expand_as(d)[i, j]
    return out


def centred(x: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(float32, float64) copies of x - mean, the subtraction in float64."""
    x64 = x.double() - mean
    return x64.float(), x64


def knn_sq(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """N x (k+1) smallest squared distances (float64) of each row of x to the rows of x (column 0: itself)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} needs at least k+1 points, got {len(x)}")
    x32, x64 = centred(x, x.double().mean(0))
    m = min(len(x), k + 1 + EXTRA)
    out = []
    for s in range(0, len(x), chunk):
        cand = sq_dists(x32[s : s + chunk], x32).topk(m, dim=1, largest=False).indices  # c x m
        rows = torch.arange(s, s + len(cand))[:, None].expand_as(cand)
        exact = exact_sq(x64, x64, rows.reshape(-1), cand.reshape(-1)).view(cand.shape)
        out.append(exact.sort(1).values[:, : k + 1])
    return torch.cat(out)


def knn_radii(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance of each row of x to its k-th nearest other row."""
    return knn_sq(x, k, chunk)[:, k].sqrt()


@torch.no_grad()
def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    k_pr: int = 3,
    k_dc: int = 5,
    chunk: int = 1024,
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
    mean = real.double().mean(0)
    (real, real64), (fake, fake64) = centred(real, mean), centred(fake, mean)
    if real_knn is None or real_knn.shape != (len(real), kmax + 1) or real_knn.dtype != torch.float64:
        real_knn = knn_sq(real, kmax, chunk)
    r_pr, r_dc = real_knn[:, k_pr], real_knn[:, k_dc]
    f_pr = knn_sq(fake, k_pr, chunk)[:, k_pr]
    n_real, n_fake = real.pow(2).sum(1), fake.pow(2).sum(1)
    precise = torch.zeros(len(fake), dtype=torch.bool)
    dense = torch.zeros(len(fake), dtype=torch.long)
    recalled = torch.zeros(len(real), dtype=torch.bool)
    covered = torch.zeros(len(real), dtype=torch.bool)
    for j in range(0, len(fake), chunk):
        f64 = fake64[j : j + chunk]
        d = sq_dists(fake[j : j + chunk], real)  # c x N, float32
        margin = torch.add(n_fake[j : j + chunk, None], n_real[None, :]).mul_(MARGIN)
        precise[j : j + chunk] = _le(d, r_pr[None, :], margin, f64, real64).any(1)
        in_dc = _le(d, r_dc[None, :], margin, f64, real64)
        dense[j : j + chunk] = in_dc.sum(1)
        covered |= in_dc.any(0)
        recalled |= _le(d, f_pr[j : j + chunk, None], margin, f64, real64).any(0)
    return {
        "precision": precise.double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": dense.double().sum().item() / (k_dc * len(fake)),
        "coverage": covered.double().mean().item(),
    }


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    m = prdc(real, fake, k_pr=k, k_dc=k)
    return m["precision"], m["recall"]


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    m = prdc(real, fake, k_pr=k, k_dc=k)
    return m["density"], m["coverage"]
