"""Mode-collapse metrics: 2-D mixtures, class modes, stacked digits, NDB and sample diversity.

2-D mixtures (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): a sample is *high quality*
when it lies within 3 sigma of its nearest mode centre; a mode is *captured* when it is the nearest
mode of at least one high-quality sample; the *reverse KL* is KL(p_gen || uniform) of the histogram
of high-quality samples over their nearest modes.

Every KL here is KL(p || uniform) = sum_k p_k log(K p_k) of a histogram p over K bins, computed as
sum_k p_k log(K max(p_k, eps)) with eps = 1e-10 so that empty bins contribute 0 (the limit of p log p)
instead of NaN; non-empty bins are exact. It is 0 for a uniform histogram and log K when everything
falls in one bin; with no sample at all (no high-quality sample) it is defined as log K, the worst value.
"""

from __future__ import annotations

import math

import torch

EPS = 1e-10


def histogram_kl(labels: torch.Tensor, n_bins: int, eps: float = EPS) -> float:
    """KL(p || uniform) of the histogram of integer `labels` over `n_bins` bins (see module doc)."""
    if len(labels) == 0:
        return math.log(n_bins)
    p = torch.bincount(labels.long().flatten(), minlength=n_bins).double()
    p = p / p.sum()
    return float((p * torch.log(n_bins * p.clamp_min(eps))).sum().clamp_min(0.0))


# ---------------------------------------------------------------------------------------------------
# 2-D mixtures


def _nearest(samples: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d = torch.cdist(samples.detach().double().cpu(), centers.double().cpu())
    return d.min(1)  # (distance, index) of the nearest centre


def modes_captured(samples: torch.Tensor, centers: torch.Tensor, sigma: float) -> int:
    """Number of modes that are the nearest mode of at least one sample within 3 sigma of it."""
    dist, idx = _nearest(samples, centers)
    return int(torch.unique(idx[dist <= 3 * sigma]).numel())


def hq_fraction(samples: torch.Tensor, centers: torch.Tensor, sigma: float) -> float:
    """Share of samples within 3 sigma of their nearest mode."""
    dist, _ = _nearest(samples, centers)
    return float((dist <= 3 * sigma).double().mean())


def reverse_kl(samples: torch.Tensor, centers: torch.Tensor, sigma: float, eps: float = EPS) -> float:
    """KL(p_gen || uniform) of the high-quality samples' nearest-mode histogram (log K if none)."""
    dist, idx = _nearest(samples, centers)
    return histogram_kl(idx[dist <= 3 * sigma], len(centers), eps)


def mean_nearest_mode_distance(samples: torch.Tensor, centers: torch.Tensor) -> float:
    """Mean Euclidean distance from each sample to its nearest mode centre (data units)."""
    dist, _ = _nearest(samples, centers)
    return float(dist.mean())


def mixture_metrics(samples: torch.Tensor, centers: torch.Tensor, sigma: float) -> dict[str, float]:
    """All 2-D mixture metrics from one distance computation."""
    dist, idx = _nearest(samples, centers)
    hq = dist <= 3 * sigma
    return {
        "modes_captured": float(torch.unique(idx[hq]).numel()),
        "hq_fraction": float(hq.double().mean()),
        "reverse_kl": histogram_kl(idx[hq], len(centers)),
        "mean_mode_dist": float(dist.mean()),
    }


# ---------------------------------------------------------------------------------------------------
# class modes through a feature classifier


def class_modes(logits: torch.Tensor) -> int:
    """Number of classes predicted (argmax) for at least one sample; logits N x K."""
    return int(torch.unique(logits.argmax(-1)).numel())


def class_kl(logits: torch.Tensor) -> float:
    """KL(predicted class histogram || uniform over the K = logits.shape[-1] classes)."""
    return histogram_kl(logits.argmax(-1), logits.shape[-1])


def stacked_labels(per_channel_logits: torch.Tensor) -> torch.Tensor:
    """N x C x 10 per-channel digit logits -> mode index sum_c d_c 10^(C-1-c) (100 d0 + 10 d1 + d2)."""
    digits = per_channel_logits.argmax(-1)
    k = per_channel_logits.shape[-1]
    weights = k ** torch.arange(digits.shape[1] - 1, -1, -1)
    return (digits * weights).sum(1)


def stacked_modes(per_channel_logits: torch.Tensor) -> tuple[int, float]:
    """(modes covered out of 10^C, KL of the mode histogram to uniform over 10^C) for N x C x 10 logits."""
    n_modes = per_channel_logits.shape[-1] ** per_channel_logits.shape[1]
    labels = stacked_labels(per_channel_logits)
    return int(torch.unique(labels).numel()), histogram_kl(labels, n_modes)


def top_class(per_channel_logits: torch.Tensor) -> tuple[int, float, float]:
    """(the class, its share of all classified channels, the classifier's mean top probability on them) of the
    most frequent predicted class of N x C x K logits. A share near 1 with full confidence is what a collapse
    to one digit looks like, and also what samples the classifier cannot read look like (it may put every
    channel of not-yet-digits in one class): the mode count alone cannot tell the two apart."""
    flat = per_channel_logits.reshape(-1, per_channel_logits.shape[-1]).float()
    probs = flat.softmax(-1)
    pred = probs.argmax(-1)
    counts = torch.bincount(pred, minlength=flat.shape[-1])
    k = int(counts.argmax())
    chosen = pred == k
    return k, float(counts[k]) / len(pred), float(probs[chosen, k].mean())


# ---------------------------------------------------------------------------------------------------
# feature-space metrics


def ndb_bins(real_feats: torch.Tensor, k: int = 50, seed: int = 0, max_fit: int = 5000) -> torch.Tensor:
    """k x D k-means centroids of the real features (fitted on a seeded subsample of at most `max_fit`)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    if not 2 <= k <= len(real_feats):
        raise ValueError(f"ndb: k={k} must be in [2, {len(real_feats)}] (the number of real features)")
    real = real_feats.detach().float().cpu()
    if len(real) > max_fit:
        real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:max_fit]]
    with threadpool_limits(1):  # OpenMP k-means threads are up to 10x slower on a busy 2-core machine
        km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(real.numpy())
    return torch.from_numpy(km.cluster_centers_).float()


def ndb(
    real_feats: torch.Tensor,
    fake_feats: torch.Tensor,
    k: int = 50,
    alpha: float = 0.05,
    seed: int = 0,
    centroids: torch.Tensor | None = None,
) -> tuple[int, float]:
    """Number of statistically different bins (Richardson & Weiss 2018) and its fraction NDB/k.

    Bins: k-means on the real features (`ndb_bins`, or precomputed `centroids`); every real and fake
    vector goes to its nearest centroid; per bin a two-proportion z-test (pooled standard error) of the
    real vs fake shares, significant at two-sided p < alpha. Bins where both shares are 0 or 1 (zero
    standard error) count as not different.
    """
    from scipy.stats import norm

    if centroids is None:
        centroids = ndb_bins(real_feats, k, seed)
    k = len(centroids)
    real, fake = real_feats.detach().float().cpu(), fake_feats.detach().float().cpu()
    n1, n2 = len(real), len(fake)
    p1 = torch.bincount(torch.cdist(real, centroids).argmin(1), minlength=k).double() / n1
    p2 = torch.bincount(torch.cdist(fake, centroids).argmin(1), minlength=k).double() / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = torch.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = torch.where(se > 0, (p1 - p2).abs() / se.clamp_min(1e-300), torch.zeros_like(se))
    count = int((2 * norm.sf(z.numpy()) < alpha).sum())
    return count, count / k


def _mean_pairwise(x: torch.Tensor) -> float:
    n = len(x)
    return float(torch.cdist(x, x).double().sum() / (n * (n - 1)))


def diversity(real_feats: torch.Tensor, fake_feats: torch.Tensor, n: int = 2000, seed: int = 0) -> float:
    """Sample diversity: mean pairwise feature distance of fakes divided by that of reals.

    Each set is subsampled (seeded) to at most n vectors. About 1 when the fakes are as spread out as the
    data, towards 0 under mode collapse, above 1 for fakes more spread out than the data (noise).
    """
    g = torch.Generator().manual_seed(seed)

    def sub(x):
        x = x.detach().float().cpu()
        return x[torch.randperm(len(x), generator=g)[:n]] if len(x) > n else x

    return _mean_pairwise(sub(fake_feats)) / max(_mean_pairwise(sub(real_feats)), 1e-12)
