"""All metrics of one set of generated samples against a data module, with the protocol that produced them.

    metrics, protocol = compute_metrics(generated, datamodule)   # generated: N x (datamodule.shape)

Dispatch on the data module:
- 2-D mixtures (`datamodule.centers`, `.sigma`): modes_captured, hq_fraction, reverse_kl, mean_mode_dist.
- 1-channel images of `digits` / `mnist` (feature net of the same name): fid, kid, kid_std, class_modes,
  class_kl, precision, recall (k=3), density, coverage (k=5), ndb, ndb_fraction, diversity.
- stacked digits / MNIST (3 channels, one digit each): each channel is classified and embedded by the
  1-channel net; stacked_modes (of 1000) and stacked_kl from the per-channel digits, and fid / kid on the
  per-channel features concatenated (3 x 128 = 384-d), which compares the joint distribution of the
  three digits' appearances, not only their marginals.
- any other image data: only with an explicit `feature_net="inception"` (fid, kid, prdc, ndb, diversity);
  otherwise nothing is computed and the protocol says why ({"skipped": reason}).

The reference is the first `n_real` images of the data module's train split (default: up to 10,000;
the split is already shuffled), embedded once and cached in-process and on disk (`fid.real_stats`:
`$GAN_LAB_CACHE/real_stats`, default ~/.cache/gan_lab/real_stats); `protocol["reference_cache"]` says
where this call got it: "computed", "disk" or "memory".

FID and KID are also returned under protocol-carrying keys, `fid/<feature net>/<n generated>` and
`kid/<feature net>/<n generated>` (e.g. `fid/digits/2000`), so numbers of different protocols never mix
in a logger or a table.
"""

from __future__ import annotations

import torch

from gan_lab.metrics.features import embed, load_feature_net
from gan_lab.metrics.fid import fid, kid, real_stats
from gan_lab.metrics.mode_collapse import (
    class_kl,
    class_modes,
    diversity,
    mixture_metrics,
    ndb,
    ndb_bins,
    stacked_modes,
)
from gan_lab.metrics.prdc import knn_sq, prdc

DEFAULT_NET = {"digits": "digits", "mnist": "mnist", "stacked_digits": "digits", "stacked_mnist": "mnist"}
DEFAULT_N_REAL = 10_000


def protocol_keys(metrics: dict[str, float], features: str, n_generated: int) -> dict[str, float]:
    """`fid/<features>/<n>` and `kid/<features>/<n>` copies of the plain fid / kid values."""
    return {f"{k}/{features}/{n_generated}": metrics[k] for k in ("fid", "kid") if k in metrics}


def compute_metrics(
    samples: torch.Tensor,
    datamodule,
    n_real: int | None = None,
    feature_net: str | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    ndb_k: int = 50,
    pr_k: int = 3,
    dc_k: int = 5,
    split: str = "train",
) -> tuple[dict[str, float], dict]:
    """(metrics, protocol) of `samples` (N x ..., data space, any device) for `datamodule`; see module doc."""
    samples = samples.detach().cpu().float()
    n = len(samples)
    if n < 2:
        raise ValueError(f"compute_metrics needs at least 2 samples, got {n}")
    if not torch.isfinite(samples).all():
        bad = (~torch.isfinite(samples)).float().mean().item()
        return {}, {"skipped": f"non-finite generated samples ({bad:.2%} of values)", "n_generated": n}

    if datamodule is None:
        return {}, {"skipped": "no data module to compare with", "n_generated": n}
    if hasattr(datamodule, "centers"):
        metrics = mixture_metrics(samples.reshape(n, -1), datamodule.centers, datamodule.sigma)
        return metrics, {
            "metric_set": "toy2d",
            "dataset": datamodule.name,
            "n_generated": n,
            "n_modes": len(datamodule.centers),
            "sigma": float(datamodule.sigma),
            "hq_radius": "3 sigma",
        }

    name = getattr(datamodule, "name", "")
    net_name = feature_net or DEFAULT_NET.get(name)
    if not getattr(datamodule, "is_image", False) or samples.dim() != 4:
        return {}, {"skipped": f"data {name!r} is neither images nor a 2-D mixture"}
    if net_name is None:
        return {}, {
            "skipped": f"no feature net for data {name!r} (known: {', '.join(DEFAULT_NET)}); "
            "set metrics.fid.features=inception for other images"
        }
    stacked = net_name != "inception" and name.startswith("stacked_")
    want_c = 3 if stacked else (samples.shape[1] if net_name == "inception" else 1)
    if samples.shape[1] != want_c or samples.shape[1] not in (1, 3):
        return {}, {"skipped": f"{samples.shape[1]}-channel samples of {name!r} do not fit feature net {net_name!r}"}

    net = load_feature_net(net_name)
    real = datamodule.split_tensors(split)[0]
    real = real[: min(len(real), n_real or DEFAULT_N_REAL)]
    stats = real_stats(net, name, split, real)
    f_real = stats.features
    has_classes = net_name != "inception"
    out = embed(net, samples, logits=has_classes)
    f_fake, logits = out if has_classes else (out, None)

    kid_size = min(kid_subset_size, len(f_real), n)
    kid_mean, kid_std = kid(f_real, f_fake, kid_subsets, kid_size)
    metrics = {"fid": fid(f_real, f_fake), "kid": kid_mean, "kid_std": kid_std}
    metrics.update(protocol_keys(metrics, net_name, n))
    protocol = {
        "metric_set": "stacked" if stacked else "image",
        "dataset": name,
        "feature_net": net_name,
        "feature_net_version": net.version,
        "n_generated": n,
        "n_reference": len(real),
        "reference_split": split,
        "reference_cache": stats.source,
        "kid_subsets": kid_subsets,
        "kid_subset_size": kid_size,
    }
    if stacked:
        modes, kl = stacked_modes(logits)
        metrics.update(stacked_modes=float(modes), stacked_kl=kl)
        protocol.update(
            fid_features=f"per-channel {net_name} features concatenated ({f_fake.shape[1]}-d)",
            n_stacked_modes=logits.shape[-1] ** samples.shape[1],
        )
        return metrics, protocol
    if has_classes:
        metrics.update(class_modes=float(class_modes(logits)), class_kl=class_kl(logits))
        protocol["n_classes"] = logits.shape[-1]
    kmax = max(pr_k, dc_k)
    if n > pr_k and len(f_real) > kmax:
        real_knn = stats.derived(("knn_sq", kmax), lambda: knn_sq(f_real, kmax))
        metrics.update(prdc(f_real, f_fake, k_pr=pr_k, k_dc=dc_k, real_knn=real_knn))
    else:
        protocol["prdc_skipped"] = f"needs more than {pr_k} generated and {kmax} reference samples"
    k = max(2, min(ndb_k, len(real) // 10))
    n_diff, frac = ndb(f_real, f_fake, centroids=stats.derived(("ndb_bins", k), lambda: ndb_bins(f_real, k)))
    metrics.update(ndb=float(n_diff), ndb_fraction=frac, diversity=diversity(f_real, f_fake))
    protocol.update(
        pr_k=pr_k,
        dc_k=dc_k,
        ndb_k=k,
        ndb_alpha=0.05,
        diversity="mean pairwise feature distance, fake / real (<= 2000 each)",
    )
    return metrics, protocol
