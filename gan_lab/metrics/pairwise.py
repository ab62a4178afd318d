"""KID and precision/recall/density/coverage from ONE set of Gram matrices of the real and generated features.

    out = kid_prdc(real, fake, kid=KidSpec(subsets=100, size=1000), prdc=PrdcSpec(k_pr=3, k_dc=5))
    out["kid"]                       # per-subset unbiased MMD^2 (S values)
    out["precision"], out["recall"], out["density"], out["coverage"]

Both metrics are functions of the pairwise dot products: KID's polynomial kernel k(a, b) = (a.b / D + 1)^3 and
PRDC's squared distances |a|^2 + |b|^2 - 2 a.b. Three passes over float32 Gram tiles (`tile` x `tile`) compute
each product once and feed every consumer from it: real-real and fake-fake (symmetric: only the tiles on and
above the diagonal) and fake-real. No N x M matrix is ever held: the peak is a few tiles.

- KID: the kernel of the pairs of each random subset, gathered from the tile, summed in float64 per subset
  (float32 kernel values, as torchmetrics-style batching; within 1e-4 of its float64 `poly_mmd`, tested).
- k nearest neighbours (the radii): each row keeps its k + 1 + EXTRA smallest float32 distances, re-ranked
  exactly in float64 at the end.
- Ball tests (fake-real pass, with the radii of the first two).

For 10k vs 10k 2048-d features that is 2.1 products of 10k x 10k x 2048 (~4.3e11 multiply-adds) instead of
the 6 that KID (3 x 100 subsets of 1000^2 pairs) and PRDC (3 full distance matrices) take separately.

Exactness. Features are centred in float64 (distances do not change): each set on its own mean for its own
neighbours, both on the real mean for fake-real pairs, so that the norms, and with them the error bounds,
stay small even when the two sets lie far apart. The float32 squared distance differs from the float64 one
(the sum of squared differences of the float64 centred features) by at most
e(a, b) = (D + 16) 2^-24 (|a|^2 + |b|^2): the rounding bound of a float32 dot product in any summation order,
gamma_D sum |a_i b_i| <= D 2^-24 (|a|^2 + |b|^2) / 2, doubled, plus the roundings of the inputs, norms and
sums. Hence:
- a ball test d <= r is decided in float32 below r - band and above r + band (band: the bound of the ball's
  point plus the largest bound among the tile's other points; thresholds rounded outwards to float32) and
  recomputed in float64 between, so every decision is that of the float64 distance (boundary rule <=);
- k-NN: each row keeps its k + 1 + EXTRA smallest float32 distances. When the float32 gaps around the k-th
  neighbour exceed twice the row's largest bound, its rank is proven and only that pair is recomputed in
  float64. Otherwise every point whose float64 distance can be among the k + 1 smallest has a float32
  distance <= t + E + e(a, b) (t the (k+1)-th smallest float32 distance, E the largest bound among those
  k + 1): those candidates are re-ranked in float64, and a row where a point that was not kept could be one
  (more than EXTRA points crowd the boundary) is recomputed in float64 in full.
Float32 products run at "highest" precision (no TF32/bf16 products a user may have enabled elsewhere).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

U = 2.0**-24  # float32 unit roundoff
SLACK = 16  # roundings beyond the dot product's, in units of U (|a|^2 + |b|^2)
EXTRA = 8  # k-NN candidates kept per row beyond k + 1
TILE = 1024


@dataclass(frozen=True)
class KidSpec:
    """KID's protocol: `subsets` random subsets of `size` of each set (without replacement within a subset),
    drawn from a generator seeded with `seed`, `batch` subsets of real then of fake indices at a time."""

    subsets: int = 100
    size: int = 1000
    seed: int = 0
    batch: int = 10


@dataclass(frozen=True)
class PrdcSpec:
    k_pr: int = 3  # precision/recall
    k_dc: int = 5  # density/coverage


@contextmanager
def highest_precision():
    """float32 matrix products in full float32 (the error bound above assumes it)."""
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


@contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to `n` inside, restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Centred:
    """Features centred on `mean`: float32 copy, squared norms (float32 of the float64 value), each point's
    part of the distance error bound, e(a, b) = bound[a] + bound[b], and float64 rows on demand (`rows64`,
    the same values each time: no float64 copy of the whole set is kept)."""

    def __init__(self, x: torch.Tensor, mean: torch.Tensor, block: int = 2048):
        self.x, self.mean, self.n = x, mean, len(x)
        self.x32 = torch.empty(x.shape, dtype=torch.float32)
        sq = torch.empty(len(x), dtype=torch.float64)
        self.w = torch.empty(len(x), dtype=torch.float64)  # mean.(x - mean) + |mean|^2 / 2: a.b = centred + w_a + w_b
        for s in range(0, len(x), block):
            x64 = self.rows64(slice(s, s + block))
            self.x32[s : s + block] = x64
            sq[s : s + block] = x64.square().sum(1)
            self.w[s : s + block] = x64 @ mean + mean.square().sum() / 2
        self.sq = sq.float()
        self.bound = (sq * ((x.shape[1] + SLACK) * U)).float()

    def rows64(self, idx) -> torch.Tensor:
        return self.x[idx].double() - self.mean


def exact_sq(a: Centred, b: Centred, i: torch.Tensor, j: torch.Tensor, block: int = 256) -> torch.Tensor:
    """float64 |a_i - b_j|^2 for the index pairs (i, j), as the sum of squared differences."""
    out = torch.empty(len(i), dtype=torch.float64)
    for s in range(0, len(i), block):
        out[s : s + block] = (a.rows64(i[s : s + block]) - b.rows64(j[s : s + block])).pow_(2).sum(1)
    return out


def _tiles(n: int, m: int, tile: int, symmetric: bool):
    for i in range(0, n, tile):
        for j in range(i if symmetric else 0, m, tile):
            yield i, min(i + tile, n), j, min(j + tile, m)


class _Knn:
    """Running k + 1 + EXTRA smallest float32 distances (and their columns) of each row; `exact()` gives the
    float64 distance to the k-th neighbour."""

    def __init__(self, n: int, k: int):
        if not 1 <= k < n:
            raise ValueError(f"k={k} needs at least k+1 points, got {n}")
        self.k, self.m = k, min(n, k + 1 + EXTRA)
        self.v = torch.full((n, self.m), math.inf)
        self.i = torch.zeros((n, self.m), dtype=torch.long)

    def add(self, i0: int, j0: int, d: torch.Tensor) -> None:
        v, j = d.topk(min(self.m, d.shape[1]), dim=1, largest=False, sorted=False)
        rows = slice(i0, i0 + len(d))
        vals, cols = torch.cat([self.v[rows], v], 1), torch.cat([self.i[rows], j + j0], 1)
        self.v[rows], pos = vals.topk(self.m, dim=1, largest=False)
        self.i[rows] = cols.gather(1, pos)

    def exact(self, x: Centred, ks: tuple[int, ...]) -> torch.Tensor:
        """N x len(ks) float64 squared distances of each row to its k-th nearest other row, k in ks (<= self.k).

        Column j of the kept list is the k-th neighbour (j = k: the row itself is among the k + 1 nearest)
        when the float32 gaps to its kept neighbours exceed twice the largest bound of the row: then only
        that pair is recomputed. Other rows re-rank every candidate in float64 (see the module doc)."""
        n, m = x.n, self.m
        e = x.bound.double()
        v, e_kept = self.v.double(), e[self.i]
        wide = e + e_kept.max(1).values  # the largest e(row, j) over the kept j
        # candidates when the order is in doubt: t + E + e(row, j) (t the (k+1)-th distance, E its bound)
        base = v[:, self.k] + e + e_kept[:, : self.k + 1].max(1).values + e
        cand = v <= base[:, None] + e_kept
        full = self.v[:, -1].double() <= base + e.max() if m < n else torch.zeros(n, dtype=torch.bool)
        out = torch.empty(n, len(ks), dtype=torch.float64)
        ones = torch.ones(n, dtype=torch.bool)
        sure = torch.stack(
            [(v[:, k - 1] + wide < v[:, k] - wide) & ((v[:, k + 1] - wide > v[:, k] + wide) if k + 1 < m else ones)
             for k in ks], 1,
        ) & ~full[:, None]  # fmt: skip
        r, c = sure.nonzero(as_tuple=True)
        out[r, c] = exact_sq(x, x, r, self.i[r, torch.tensor(ks)[c]])
        doubt = (~sure.all(1) & ~full).nonzero().flatten()
        if len(doubt):  # the order is in doubt: every candidate of the row in float64
            r, j = cand[doubt].nonzero(as_tuple=True)
            d = torch.full((len(doubt), m), math.inf, dtype=torch.float64)
            d[r, j] = exact_sq(x, x, doubt[r], self.i[doubt[r], j])
            out[doubt] = d.sort(1).values[:, list(ks)]
        everyone = torch.arange(n)
        for row in full.nonzero().flatten().tolist():  # a point that was not kept could be a candidate
            out[row] = exact_sq(x, x, torch.full((n,), row), everyone).sort().values[list(ks)]
        return out


class _KidSums:
    """Per subset s, the float64 sum of k(a_i, b_j) over i in rows[s], j in cols[s] (i != j when the two are one
    set), from Gram tiles of the centred features (a.b = centred product + w_a + w_b): the kernel tile times
    the subsets' 0/1 membership columns (float32 products of ~tile x size / N terms, summed in float64)."""

    def __init__(self, rows, cols, w_a, w_b, n_a: int, n_b: int, dim: int):
        self.m_a, self.m_b = _membership(rows, n_a), _membership(cols, n_b)
        self.gamma = 1.0 / dim
        self.a, self.b = w_a * self.gamma + 0.5, w_b * self.gamma + 0.5  # kernel = (gamma g + a_i + b_j)^3
        self.sums = torch.zeros(len(rows), dtype=torch.float64)

    def add(self, i0: int, i1: int, j0: int, j1: int, g: torch.Tensor, diagonal: bool, weight: float) -> None:
        k = g.mul(self.gamma).add_(self.a[i0:i1, None]).add_(self.b[None, j0:j1]).pow_(3)
        m_a = self.m_a[i0:i1]
        s = (m_a * (k @ self.m_b[j0:j1])).sum(0, dtype=torch.float64)
        if diagonal:
            s -= (m_a * k.diagonal()[:, None]).sum(0, dtype=torch.float64)
        self.sums += weight * s


def _membership(idx: torch.Tensor, n: int) -> torch.Tensor:
    """n x S float32: 1 where point i is in subset s."""
    m = torch.zeros(n, len(idx))
    m[idx, torch.arange(len(idx))[:, None].expand_as(idx)] = 1
    return m


class _Balls:
    """Ball tests of the fake-real pass (rows fake, columns real): precision, recall, density, coverage."""

    def __init__(self, fake: Centred, real: Centred, r_pr, r_dc, f_pr):
        self.fake, self.real = fake, real
        self.radii = {"r_pr": r_pr, "r_dc": r_dc, "f_pr": f_pr}  # float64 squared radii
        self.precise = torch.zeros(fake.n, dtype=torch.bool)
        self.dense = torch.zeros(fake.n, dtype=torch.long)
        self.recalled = torch.zeros(real.n, dtype=torch.bool)
        self.covered = torch.zeros(real.n, dtype=torch.bool)

    def _le(self, d: torch.Tensor, name: str, i0: int, j0: int, by_row: bool) -> torch.Tensor:
        """float64-exact d <= radius for the tile: decided in float32 below radius - band and above radius + band
        (band: the radius' point's bound plus the largest bound of the tile's other points, thresholds rounded
        outwards), recomputed in float64 between."""
        rows, cols = slice(i0, i0 + d.shape[0]), slice(j0, j0 + d.shape[1])
        own, other = (
            (self.fake.bound[rows], self.real.bound[cols]) if by_row else (self.real.bound[cols], self.fake.bound[rows])
        )
        r = self.radii[name][rows if by_row else cols]
        band = own.double() + other.max().double()
        lo = torch.nextafter((r - band).float(), torch.tensor(-math.inf))
        hi = torch.nextafter((r + band).float(), torch.tensor(math.inf))
        lo, hi = (lo[:, None], hi[:, None]) if by_row else (lo[None, :], hi[None, :])
        out = d <= lo
        i, j = (d <= hi).logical_xor_(out).nonzero(as_tuple=True)
        if len(i):
            exact = exact_sq(self.fake, self.real, i + i0, j + j0)
            out[i, j] = exact <= r[i if by_row else j]
        return out

    def add(self, i0: int, j0: int, d: torch.Tensor) -> None:
        rows, cols = slice(i0, i0 + d.shape[0]), slice(j0, j0 + d.shape[1])
        self.precise[rows] |= _any(self._le(d, "r_pr", i0, j0, False), 1)
        in_dc = self._le(d, "r_dc", i0, j0, False)
        self.dense[rows] += in_dc.sum(1, dtype=torch.int32)
        self.covered[cols] |= _any(in_dc, 0)
        self.recalled[cols] |= _any(self._le(d, "f_pr", i0, j0, True), 0)

    def result(self, k_dc: int) -> dict[str, float]:
        return {
            "precision": self.precise.double().mean().item(),
            "recall": self.recalled.double().mean().item(),
            "density": self.dense.double().sum().item() / (k_dc * self.fake.n),
            "coverage": self.covered.double().mean().item(),
        }


def _any(b: torch.Tensor, dim: int) -> torch.Tensor:
    """b.any(dim) of a bool tile, as the max of its bytes (several times faster here)."""
    return b.view(torch.uint8).amax(dim).bool()


def _sq_dists(a: Centred, b: Centred, i0: int, i1: int, j0: int, j1: int, g: torch.Tensor) -> torch.Tensor:
    return g.mul(-2).add_(a.sq[i0:i1, None]).add_(b.sq[None, j0:j1]).clamp_min_(0)


def _pass(a: Centred, b: Centred | None, tile: int, knn: _Knn | None = None, kid: _KidSums | None = None,
          balls: _Balls | None = None) -> None:  # fmt: skip
    """One pass over the Gram tiles of a with b (b None: a with itself, tiles on and above the diagonal)."""
    symmetric = b is None
    b = a if symmetric else b
    threads = torch.get_num_threads()
    with highest_precision(), torch_threads(1):  # the tile's own work: one thread (OpenMP sync costs more here)
        for i0, i1, j0, j1 in _tiles(a.n, b.n, tile, symmetric):
            with torch_threads(threads):  # the Gram tile: the caller's threads
                g = a.x32[i0:i1] @ b.x32[j0:j1].T
            if kid is not None:
                kid.add(i0, i1, j0, j1, g, symmetric and i0 == j0, 2.0 if symmetric and i0 != j0 else 1.0)
            if knn is None and balls is None:
                continue
            d = _sq_dists(a, b, i0, i1, j0, j1, g)
            if knn is not None:
                knn.add(i0, j0, d)
                if symmetric and i0 != j0:
                    knn.add(j0, i0, d.T.contiguous())
            if balls is not None:
                balls.add(i0, j0, d)


def kid_subsets(n_real: int, n_fake: int, spec: KidSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(S x size real indices, S x size fake indices) of KID's random subsets (seeded, reproducible)."""
    g = torch.Generator().manual_seed(spec.seed)
    ir, jf = [], []
    for s in range(0, spec.subsets, spec.batch):
        nb = min(spec.batch, spec.subsets - s)
        ir += [torch.randperm(n_real, generator=g)[: spec.size] for _ in range(nb)]
        jf += [torch.randperm(n_fake, generator=g)[: spec.size] for _ in range(nb)]
    return torch.stack(ir), torch.stack(jf)


def kid_summary(values: torch.Tensor, size: int, n_real: int, n_fake: int) -> tuple[float, float | None]:
    """(mean, std with ddof 0) of the per-subset values; std None when every subset is the whole of both sets."""
    if size == n_real == n_fake:
        return float(values.mean()), None
    return float(values.mean()), float(values.std(unbiased=False))


def kth_sq(x: torch.Tensor, ks: tuple[int, ...], tile: int = TILE) -> torch.Tensor:
    """N x len(ks) float64 squared distances of each row of x to its k-th nearest other row, for k in ks."""
    c = Centred(x, x.double().mean(0))
    knn = _Knn(c.n, max(ks))
    _pass(c, None, tile, knn=knn)
    return knn.exact(c, tuple(ks))


@torch.no_grad()
def kid_prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    kid: KidSpec | None = None,
    prdc: PrdcSpec | None = None,
    tile: int = TILE,
    cache: dict | None = None,
) -> dict:
    """KID's per-subset values (`kid`) and/or precision, recall, density, coverage (`prdc`) of N x D real vs
    M x D fake features, from one pass over each pair of sets (see the module doc). `cache`: a dict kept with
    the real features (e.g. `RealStats.memo`): their k-NN distances and KID's real-real subset sums are read
    from it and stored in it, so that a later call with other fake features skips the real-real pass."""
    cache = {} if cache is None else cache
    mean = real.double().mean(0)
    r, f = Centred(real, mean), Centred(fake, mean)  # real-real and fake-real pairs: on the real mean
    f_own = Centred(fake, fake.double().mean(0))  # fake-fake pairs: on the fake mean (tight bounds, see above)
    dim = real.shape[1]
    out: dict = {}
    kid_rr = kid_ff = kid_fr = None
    if kid is not None:
        ir, jf = kid_subsets(r.n, f.n, kid)
        w_r, w_f = r.w.float(), f.w.float()
        rr_key = ("kid_rr", kid, f.n)
        if rr_key not in cache:
            kid_rr = _KidSums(ir, ir, w_r, w_r, r.n, r.n, dim)
        kid_ff = _KidSums(jf, jf, f_own.w.float(), f_own.w.float(), f.n, f.n, dim)
        kid_fr = _KidSums(jf, ir, w_f, w_r, f.n, r.n, dim)
    knn_r = knn_f = None
    if prdc is not None:
        ks = (prdc.k_pr, prdc.k_dc)
        radii_key = ("kth_sq64", ks)
        cached = cache.get(radii_key)
        if cached is None or cached.shape != (r.n, 2):
            knn_r = _Knn(r.n, max(ks))
        knn_f = _Knn(f.n, prdc.k_pr)
    if knn_r is not None or kid_rr is not None:
        _pass(r, None, tile, knn=knn_r, kid=kid_rr)
        if knn_r is not None:
            cache[radii_key] = knn_r.exact(r, ks)
        if kid_rr is not None:
            cache[rr_key] = kid_rr.sums
    if knn_f is not None or kid_ff is not None:
        _pass(f_own, None, tile, knn=knn_f, kid=kid_ff)
    balls = None
    if prdc is not None:
        real_radii = cache[radii_key]
        f_pr = knn_f.exact(f_own, (prdc.k_pr,))[:, 0]
        balls = _Balls(f, r, real_radii[:, 0], real_radii[:, 1], f_pr)
    _pass(f, r, tile, kid=kid_fr, balls=balls)
    if kid is not None:
        m = kid.size
        out["kid"] = (cache[rr_key] + kid_ff.sums) / (m * (m - 1)) - 2 * kid_fr.sums / m**2
    if balls is not None:
        out.update(balls.result(prdc.k_dc))
    return out
