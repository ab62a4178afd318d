"""All metrics of one set of generated samples, with the protocol that produced them; the built-in metrics.

    metrics, protocol = compute_metrics(generated, datamodule)             # against the data's train split
    metrics, protocol = score(generated, Reference.of_images(imgs, "folder:ref"), feature_net="inception")
    metrics, protocol = score(generated, Reference.of_stats_file("cifar10.npz"), feature_net="inception")

What is computed is chosen by name through the registry (`gan_lab.metrics.registry`, `metrics.names`;
null: every default metric that applies) and by what the data module declares:
- `metric_kind` ("points", "images" or "stacked"); without it: `is_image=False` means 2-D points,
  `stacked_*` names stacked digits / MNIST, other images are "images";
- `feature_net`: the data's own feature net; without it the shipped net of the same name (digits, mnist;
  stacked digits / MNIST use the 1-channel net per channel), else `metrics.fid.features` must name one.

Built-in metrics (registered below): `mixture` (2-D points: modes_captured, hq_fraction, reverse_kl,
mean_mode_dist), `fid`, `kid` (+ kid_std), `is` (Inception Score, inception only), `class_modes`
(class_modes, class_kl: digits / mnist nets), `stacked_modes` (stacked_modes of 1000, stacked_kl),
`prdc` (precision, recall with k=3; density, coverage with k=5), `ndb` (ndb, ndb_fraction), `diversity`.
All image metrics come from ONE forward pass of each generated image through the feature net (features
and logits together); the reference features are computed once and cached (`fid.real_stats`, in-process
and under `$GAN_LAB_CACHE/real_stats`; `protocol["reference_cache"]` says where they came from).

Images are scored as 8-bit images (quantised like saved PNGs), so the numbers of a checkpoint and of the
images `gan-lab sample` writes from it are the same. The reference is the first `n_real` images of the
data's train split (default up to 10,000; the split is already shuffled): the data module's `real_images`,
i.e. the targets of paired data (pix2pix, colourisation, SR), never their conditions; an image folder or a
pytorch-fid statistics file (FID only).

FID, KID and IS are also returned under protocol-carrying keys, `<metric>/<feature net>/<n generated>`
(e.g. `fid/inception/50000`), so numbers of different protocols never mix in a logger or a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gan_lab.errors import ConfigError
from gan_lab.metrics import registry
from gan_lab.metrics.features import embed, load_feature_net
from gan_lab.metrics.fid import RealStats, fid, frechet_distance, gaussian, load_stats, real_stats
from gan_lab.metrics.inception_score import inception_score
from gan_lab.metrics.mode_collapse import (
    class_kl,
    class_modes,
    diversity,
    mixture_metrics,
    ndb,
    ndb_bins,
    stacked_modes,
    top_class,
)
from gan_lab.metrics.pairwise import KidSpec, PrdcSpec, kid_prdc, kid_summary
from gan_lab.metrics.registry import MetricContext, register_metric

DEFAULT_NET = {"digits": "digits", "mnist": "mnist", "stacked_digits": "digits", "stacked_mnist": "mnist"}
DEFAULT_N_REAL = 10_000
PARAMS = {"kid_subsets": 100, "kid_subset_size": 1000, "ndb_k": 50, "pr_k": 3, "dc_k": 5, "is_splits": 10}


def check_options(names=None, resize: str = "legacy_tf", verify_weights: bool = True) -> tuple[str, ...] | None:
    """One ConfigError line for a bad `metrics.names`, `metrics.fid.resize` or `metrics.fid.verify_weights`
    (whatever the feature net); returns the names as a tuple (None: the default set)."""
    from gan_lab.metrics.inception import RESIZES

    if resize not in RESIZES:
        raise ConfigError(f"metrics.fid.resize={resize!r} is not known; allowed {', '.join(RESIZES)}")
    if not isinstance(verify_weights, bool):
        raise ConfigError(f"metrics.fid.verify_weights={verify_weights!r} must be a boolean; allowed true, false")
    return registry.check_names(names)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] rounded to their 8-bit values (what a PNG of them holds), back in [-1, 1]."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


@dataclass
class Reference:
    """What the generated samples are compared with: images, or a statistics file (mu, sigma)."""

    name: str  # the data set, "folder:<name>" or "stats:<file name>"
    split: str
    images: torch.Tensor | None = None  # N x C x H x W in [-1, 1]
    stats_file: Path | None = None

    @classmethod
    def of_images(cls, images: torch.Tensor, name: str, split: str = "all") -> Reference:
        return cls(name, split, quantize(images))

    @classmethod
    def of_stats_file(cls, path: str | Path) -> Reference:
        path = Path(path)
        load_stats(path)  # a bad file: one line, before any work
        return cls(f"stats:{path.name}", "stats file", stats_file=path)


def data_kind(datamodule) -> str:
    """ "points", "images" or "stacked", as the data module declares (see the module doc)."""
    kind = getattr(datamodule, "metric_kind", None)
    if kind is not None:
        return kind
    if not getattr(datamodule, "is_image", False):
        return "points"
    return "stacked" if str(getattr(datamodule, "name", "")).startswith("stacked_") else "images"


def protocol_keys(metrics: dict[str, float], features: str, n_generated: int) -> dict[str, float]:
    """`fid/<features>/<n>`, `kid/<features>/<n>` and `is/<features>/<n>` copies of the plain values."""
    return {f"{k}/{features}/{n_generated}": metrics[k] for k in ("fid", "kid", "is") if k in metrics}


def compute_metrics(
    samples: torch.Tensor,
    datamodule,
    n_real: int | None = None,
    feature_net: str | None = None,
    split: str = "train",
    reference: Reference | None = None,
    **kw,
) -> tuple[dict[str, float], dict]:
    """(metrics, protocol) of `samples` (N x ..., data space, any device) against `datamodule`'s `split`
    (its first `n_real` samples) or `reference`; `kw`: the options of `score`."""
    samples = samples.detach().cpu().float()
    if datamodule is None:
        return {}, {"skipped": "no data module to compare with", "n_generated": len(samples)}
    kind = data_kind(datamodule)
    name = str(getattr(datamodule, "name", ""))
    if kind == "points":
        return score(samples, Reference(name, split), kind="points", datamodule=datamodule, **kw)
    if samples.dim() != 4:
        return {}, {"skipped": f"data {name!r} is neither images nor a 2-D mixture"}
    net_name = feature_net or getattr(datamodule, "feature_net", None) or DEFAULT_NET.get(name)
    if net_name is None:
        return {}, {
            "skipped": f"no feature net for data {name!r} (known: {', '.join(DEFAULT_NET)}); "
            "set metrics.fid.features=inception (or a TorchScript file) for other images"
        }
    if kind == "stacked" and net_name not in DEFAULT_NET.values():
        kind = "images"  # stacked digits through a 3-channel net are plain images
    if reference is None:
        real = datamodule.real_images(split)  # the target of paired data, never its condition
        reference = Reference.of_images(real[: min(len(real), n_real or DEFAULT_N_REAL)], name, split)
    return score(samples, reference, feature_net=net_name, kind=kind, datamodule=datamodule, **kw)


def score(
    samples: torch.Tensor,
    reference: Reference,
    feature_net: str | None = None,
    kind: str = "images",
    names=None,
    resize: str = "legacy_tf",
    verify_weights: bool = True,
    labels: torch.Tensor | None = None,
    datamodule=None,
    **params,
) -> tuple[dict[str, float], dict]:
    """(metrics, protocol) of generated `samples` against `reference` with the metrics `names` (None: the
    defaults); `params` override PARAMS (kid_subsets, kid_subset_size, ndb_k, pr_k, dc_k, is_splits)."""
    import gan_lab

    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise TypeError(f"score() got unknown parameter {unknown[0]!r}; allowed {', '.join(PARAMS)}")
    names = registry.check_names(names)
    samples = samples.detach().cpu().float()
    n = len(samples)
    if n < 2:
        raise ValueError(f"compute_metrics needs at least 2 samples, got {n}")
    if not torch.isfinite(samples).all():
        bad = (~torch.isfinite(samples)).float().mean().item()
        return {}, {"skipped": f"non-finite generated samples ({bad:.2%} of values)", "n_generated": n}
    ctx = MetricContext(kind, samples, datamodule=datamodule, labels=labels, params={**PARAMS, **params})
    ctx.protocol.update(metric_set="toy2d" if kind == "points" else kind, dataset=reference.name, n_generated=n)
    if kind != "points":
        if feature_net is None:
            raise ValueError("score() of images needs a feature_net")
        ctx.samples = samples = quantize(samples)
        net = ctx.net = load_feature_net(feature_net, resize=resize, verify_weights=verify_weights)
        want_c = 3 if kind == "stacked" else None
        ok_c = (want_c,) if want_c else ((1,) if getattr(net, "per_channel", False) else (1, 3))
        if samples.shape[1] not in ok_c:
            return {}, {"skipped": f"{samples.shape[1]}-channel samples of {reference.name!r} do not fit "
                                   f"feature net {feature_net!r}"}  # fmt: skip
        _embed_generated(ctx, net)
        _reference(ctx, net, reference)
        ctx.protocol["gan_lab_version"] = gan_lab.__version__
    metrics = registry.run(names, ctx)
    if kind != "points":
        metrics.update(protocol_keys(metrics, net.name, n))
    return metrics, ctx.protocol


def _embed_generated(ctx: MetricContext, net) -> None:
    """Features and (when the net has a class head) logits of the generated images: one forward pass."""
    has_head = hasattr(net, "features_and_logits")
    out = embed(net, ctx.samples, logits=has_head)
    ctx.fake_features, ctx.fake_logits = out if has_head else (out, None)
    ctx.protocol.update(net.describe())


def _reference(ctx: MetricContext, net, ref: Reference) -> None:
    if ref.stats_file is not None:
        from gan_lab.metrics.inception import sha256_file

        mu, sigma = load_stats(ref.stats_file)
        if len(mu) != ctx.fake_features.shape[1]:
            raise ConfigError(
                f"reference_stats={str(ref.stats_file)!r} has {len(mu)}-d statistics but feature net {net.name!r} "
                f"gives {ctx.fake_features.shape[1]}-d features; allowed statistics of the same feature net"
            )
        ctx.real = RealStats(None, mu, sigma, (ref.name,), source="statistics file")
        ctx.protocol.update(
            n_reference="unknown (statistics file)", reference_split=ref.split, reference_file=ref.stats_file.name,
            reference_fingerprint=sha256_file(ref.stats_file)[:12], reference_cache="statistics file",
            reference_note="pytorch-fid statistics (mu, sigma) only: FID is computed, feature-based metrics are not",
        )  # fmt: skip
        return
    ctx.real = real_stats(net, ref.name, ref.split, ref.images)
    ctx.protocol.update(
        n_reference=len(ref.images), reference_split=ref.split, reference_fingerprint=ctx.real.key[-1],
        reference_cache=ctx.real.source,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# the built-in metrics


@register_metric("mixture", kinds=("points",))
def _mixture(ctx: MetricContext) -> dict[str, float]:
    dm = ctx.datamodule
    ctx.protocol.update(n_modes=len(dm.centers), sigma=float(dm.sigma), hq_radius="3 sigma")
    return mixture_metrics(ctx.samples.reshape(ctx.n, -1), dm.centers, dm.sigma)


@register_metric("fid", kinds=("images", "stacked"), needs=("real_stats",))
def _fid(ctx: MetricContext) -> dict[str, float]:
    if ctx.kind == "stacked":
        ctx.protocol["fid_features"] = (
            f"per-channel {ctx.net.name} features concatenated ({ctx.fake_features.shape[1]}-d)"
        )
    if ctx.real.features is not None:
        return {"fid": fid(ctx.real.features, ctx.fake_features)}
    return {"fid": frechet_distance(ctx.real.mu, ctx.real.sigma, *gaussian(ctx.fake_features))}


def _pairwise(ctx: MetricContext) -> dict:
    """KID's per-subset values and precision/recall/density/coverage from one set of Gram passes
    (`gan_lab.metrics.pairwise`), computed once for whichever of `kid` and `prdc` this run selected; the
    reference's k-NN distances and KID sums are kept with its features for the next evaluation."""
    if "pairwise" not in ctx.shared:
        f_real, p = ctx.real.features, ctx.params
        kid_spec = prdc_spec = None
        if "kid" in ctx.selected:
            kid_spec = KidSpec(p["kid_subsets"], min(p["kid_subset_size"], len(f_real), ctx.n))
        enough = ctx.n > p["pr_k"] and len(f_real) > max(p["pr_k"], p["dc_k"])
        if "prdc" in ctx.selected and ctx.kind == "images" and enough:
            prdc_spec = PrdcSpec(p["pr_k"], p["dc_k"])
        ctx.shared["pairwise"] = kid_prdc(f_real, ctx.fake_features, kid_spec, prdc_spec, cache=ctx.real.memo)
    return ctx.shared["pairwise"]


@register_metric("kid", kinds=("images", "stacked"), needs=("real_features",))
def _kid(ctx: MetricContext) -> dict[str, float]:
    f_real, p = ctx.real.features, ctx.params
    size = min(p["kid_subset_size"], len(f_real), ctx.n)
    if size < 2:
        raise ValueError("FID/KID need at least 2 real and 2 fake feature vectors")
    mean, std = kid_summary(_pairwise(ctx)["kid"], size, len(f_real), ctx.n)
    ctx.protocol.update(kid_subsets=p["kid_subsets"], kid_subset_size=size)
    if size < p["kid_subset_size"]:
        ctx.protocol["kid_subset_size_capped"] = f"{p['kid_subset_size']} requested, capped to the smaller set"
    if std is None:
        ctx.protocol["kid_std"] = "undefined: every subset is the whole of both sets"
        return {"kid": mean}
    return {"kid": mean, "kid_std": std}


@register_metric("is", kinds=("images",), needs=("logits",), nets=("inception",))
def _is(ctx: MetricContext) -> dict[str, float]:
    splits = ctx.params["is_splits"]
    if ctx.n < splits:
        ctx.protocol["is_skipped"] = f"needs at least {splits} generated samples"
        return {}
    mean, std = inception_score(ctx.fake_logits, splits)
    ctx.protocol["is_splits"] = splits
    return {"is": mean, "is_std": std}


@register_metric("class_modes", kinds=("images",), needs=("logits",), nets=("digits", "mnist"))
def _class_modes(ctx: MetricContext) -> dict[str, float]:
    ctx.protocol["n_classes"] = ctx.fake_logits.shape[-1]
    return {"class_modes": float(class_modes(ctx.fake_logits)), "class_kl": class_kl(ctx.fake_logits)}


@register_metric("stacked_modes", kinds=("stacked",), needs=("logits",))
def _stacked_modes(ctx: MetricContext) -> dict[str, float]:
    modes, kl = stacked_modes(ctx.fake_logits)
    ctx.protocol["n_stacked_modes"] = ctx.fake_logits.shape[-1] ** ctx.samples.shape[1]
    digit, share, confidence = top_class(ctx.fake_logits)
    ctx.protocol["stacked_top_digit"] = {"digit": digit, "share": round(share, 4), "confidence": round(confidence, 4)}
    return {"stacked_modes": float(modes), "stacked_kl": kl}


@register_metric("prdc", kinds=("images",), needs=("real_features",))
def _prdc(ctx: MetricContext) -> dict[str, float]:
    f_real, pr_k, dc_k = ctx.real.features, ctx.params["pr_k"], ctx.params["dc_k"]
    kmax = max(pr_k, dc_k)
    ctx.protocol.update(pr_k=pr_k, dc_k=dc_k, prdc_rule="inside a ball at distance <= radius (float64)")
    if ctx.n <= pr_k or len(f_real) <= kmax:
        ctx.protocol["prdc_skipped"] = f"needs more than {pr_k} generated and {kmax} reference samples"
        return {}
    out = _pairwise(ctx)
    return {k: out[k] for k in ("precision", "recall", "density", "coverage")}


@register_metric("ndb", kinds=("images",), needs=("real_features",))
def _ndb(ctx: MetricContext) -> dict[str, float]:
    f_real = ctx.real.features
    k = max(2, min(ctx.params["ndb_k"], len(f_real) // 10))
    bins = ctx.real.derived(("ndb_bins", k), lambda: ndb_bins(f_real, k))
    n_diff, frac = ndb(f_real, ctx.fake_features, centroids=bins)
    ctx.protocol.update(ndb_k=k, ndb_alpha=0.05)
    return {"ndb": float(n_diff), "ndb_fraction": frac}


@register_metric("diversity", kinds=("images",), needs=("real_features",))
def _diversity(ctx: MetricContext) -> dict[str, float]:
    ctx.protocol["diversity"] = "mean pairwise feature distance, fake / real (<= 2000 each)"
    return {"diversity": diversity(ctx.real.features, ctx.fake_features)}
