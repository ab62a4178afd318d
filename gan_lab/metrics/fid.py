"""FID and KID on precomputed feature vectors (torchmetrics), and cached features of the real data.

    f_real = real_stats(net, "digits", "train", real_images).features
    fid(f_real, net.features(fake_images)); kid(f_real, f_fake, subsets=100, subset_size=1000)

FID is the Frechet distance of the Gaussians fitted to the two feature sets (float64 mean and covariance
with ddof 1, as pytorch-fid, the covariance from its upper tiles; tr sqrt(S1 S2) from symmetric
eigendecompositions, see `frechet_distance`), computed from statistics so that a pytorch-fid statistics
file (`.npz` with `mu`, `sigma`: `save_stats` /
`load_stats`) can stand in for the reference. KID is torchmetrics' polynomial-kernel MMD
estimator (degree 3, gamma 1/D, coef 1; `poly_mmd`) on random subsets drawn with a seeded generator, so
the value is reproducible; the kernel values come from the Gram tiles of `gan_lab.metrics.pairwise`
(float32 kernels, float64 sums; tests check it against `poly_mmd`), shared with precision/recall when both
are computed.

Real features are memoised in-process and on disk under `$GAN_LAB_CACHE` (default ~/.cache/gan_lab),
keyed by (feature net version, dataset, split, n) plus a fingerprint of the images, so a change in
image size or split seed never reuses stale features.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gan_lab.atomic_io import atomic_write_bytes
from gan_lab.checkpoints import load
from gan_lab.errors import ConfigError, StorageError
from gan_lab.metrics.features import embed
from gan_lab.metrics.pairwise import KidSpec, kid_prdc, kid_summary, torch_threads

_MEMO: OrderedDict[tuple, RealStats] = OrderedDict()
_MEMO_SIZE = 8


def _check(feat_real: torch.Tensor, feat_fake: torch.Tensor) -> None:
    if feat_real.dim() != 2 or feat_fake.dim() != 2 or feat_real.shape[1] != feat_fake.shape[1]:
        raise ValueError(
            f"features must be N x D with the same D, got {tuple(feat_real.shape)} and {tuple(feat_fake.shape)}"
        )
    if len(feat_real) < 2 or len(feat_fake) < 2:
        raise ValueError("FID/KID need at least 2 real and 2 fake feature vectors")


def gaussian(features: torch.Tensor, block: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, covariance with ddof 1) of N x D features, float64. The covariance is symmetric: only its
    `block` x `block` tiles on and above the diagonal are multiplied (10 of 16 for D = 2048), the others are
    their transposes."""
    x = features.double()
    mu = x.mean(0)
    x = x - mu
    d = x.shape[1]
    cov = torch.empty(d, d, dtype=torch.float64)
    for i in range(0, d, block):
        for j in range(i, d, block):
            tile = x[:, i : i + block].T @ x[:, j : j + block]
            if i == j:  # exactly symmetric: the upper triangle mirrored
                tile = tile.triu() + tile.triu(1).T
            cov[i : i + block, j : j + block] = tile
            cov[j : j + block, i : i + block] = tile.T
    return mu, cov.div_(len(x) - 1)


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) in float64.

    tr (S1 S2)^(1/2) is the sum of the square roots of the eigenvalues of S1 S2, which are those of the
    symmetric PSD matrix L^T S1 L with S2 = L L^T (Cholesky), so only eigenvalues of a symmetric matrix are
    needed (eigvalsh), not a general eigendecomposition of S1 S2: the same value, several times faster for
    2048-d Inception features. A singular S2 (fewer samples than dimensions) uses S1^(1/2) S2 S1^(1/2)."""
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    with torch_threads(1):  # the D x D decompositions: multi-threaded LAPACK is up to 20x slower here
        chol, info = torch.linalg.cholesky_ex(sigma2)
        if int(info) == 0:
            m = chol.T @ sigma1 @ chol
        else:
            w, v = torch.linalg.eigh(sigma1)
            root1 = (v * w.clamp_min(0).sqrt()) @ v.T
            m = root1 @ sigma2 @ root1
        tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * tr_sqrt)


def fid(feat_real: torch.Tensor, feat_fake: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two N x D feature sets (float64 statistics)."""
    _check(feat_real, feat_fake)
    return frechet_distance(*gaussian(feat_real), *gaussian(feat_fake))


def kid(
    feat_real: torch.Tensor,
    feat_fake: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    batch: int = 10,
) -> tuple[float, float | None]:
    """(mean, std) of the unbiased polynomial-kernel MMD^2 over `subsets` random subsets of both sets.

    `subset_size` is capped at the smaller set size (the caller's protocol should record the cap). When
    the capped size is the whole of both sets every subset is the same, and the std is undefined: None.
    """
    _check(feat_real, feat_fake)
    size = min(subset_size, len(feat_real), len(feat_fake))
    values = kid_prdc(feat_real, feat_fake, kid=KidSpec(subsets, size, seed, batch))["kid"]
    return kid_summary(values, size, len(feat_real), len(feat_fake))


# ---------------------------------------------------------------------------------------------------
# cached real features


def cache_dir() -> Path:
    return Path(os.environ.get("GAN_LAB_CACHE", "~/.cache/gan_lab")).expanduser()


def fingerprint(images: torch.Tensor) -> str:
    """Cheap content hash: shape, float64 sum and a strided sample of at most 2^20 values."""
    flat = images.detach().cpu().float().reshape(-1)
    stride = max(1, len(flat) >> 20)
    h = hashlib.blake2b(digest_size=6)
    h.update(repr((tuple(images.shape), round(float(flat.double().sum()), 4))).encode())
    h.update(flat[::stride].contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class RealStats:
    """Features of the reference images (N x D float32; None for a statistics file) and their mean /
    covariance (float64)."""

    features: torch.Tensor | None
    mu: torch.Tensor
    sigma: torch.Tensor
    key: tuple
    source: str = "computed"  # where this call got the features: "computed", "disk" or "memory" (in-process)
    memo: dict = field(default_factory=dict, repr=False)  # in-process quantities derived from the features

    def derived(self, name: Any, compute):
        """In-process memo of quantities derived from the features (k-NN radii, NDB bins, KID's real sums)."""
        if name not in self.memo:
            self.memo[name] = compute()
        return self.memo[name]


def real_stats(feature_net: nn.Module, datamodule_name: str, split: str, images: torch.Tensor) -> RealStats:
    """Features and Gaussian statistics of real images, cached in-process and on disk (see module doc).

    Multi-channel images with a 1-channel net are embedded per channel (see `features.embed`).
    """
    key = (feature_net.version, datamodule_name, split, len(images), fingerprint(images))
    if key in _MEMO:
        _MEMO.move_to_end(key)
        _MEMO[key].source = "memory"
        return _MEMO[key]
    version, _, _, n, fp = key
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{datamodule_name}_{split}")
    path = cache_dir() / "real_stats" / f"{safe}_n{n}_{feature_net.name}-{version}_{fp}.pt"
    data, source = None, "disk"
    if path.exists():
        try:
            data = load(path)  # gan_lab.checkpoints: weights only
        except Exception:  # a corrupt or foreign cache file is recomputed and overwritten
            data = None
    if data is None:
        source = "computed"
        f = embed(feature_net, images).float()
        mu, sigma = gaussian(f)
        data = {"features": f, "mu": mu, "sigma": sigma}
        buf = io.BytesIO()
        torch.save(data, buf)
        try:
            atomic_write_bytes(path, buf.getbuffer(), "FID real-statistics cache")
        except StorageError:  # read-only or full cache: keep the in-process copy only
            pass
    stats = RealStats(data["features"], data["mu"], data["sigma"], key, source)
    _MEMO[key] = stats
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return stats


# ---------------------------------------------------------------------------------------------------
# pytorch-fid statistics files


def save_stats(path: Path, mu: torch.Tensor, sigma: torch.Tensor) -> None:
    """Write `mu` (D) and `sigma` (D x D) as pytorch-fid's `.npz` (float64), through a temporary file."""
    buf = io.BytesIO()
    np.savez(buf, mu=mu.double().numpy(), sigma=sigma.double().numpy())
    atomic_write_bytes(path, buf.getbuffer(), "FID statistics file")


def load_stats(path: Path, key: str = "reference_stats") -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, sigma) of a pytorch-fid `.npz` statistics file (no pickles); a bad file is one ConfigError line."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            if "mu" not in f.files or "sigma" not in f.files:
                raise ValueError(f"it holds {', '.join(f.files) or 'no arrays'}, not mu and sigma")
            mu, sigma = torch.from_numpy(f["mu"].astype(np.float64)), torch.from_numpy(f["sigma"].astype(np.float64))
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ConfigError(
            f"{key}={str(path)!r} is not a pytorch-fid statistics file ({first}); allowed an .npz with mu, sigma"
        ) from None
    if mu.dim() != 1 or sigma.shape != (len(mu), len(mu)) or not (mu.isfinite().all() and sigma.isfinite().all()):
        raise ConfigError(
            f"{key}={str(path)!r} has mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)}; "
            "allowed finite mu (D) and sigma (D x D)"
        )
    return mu, sigma
