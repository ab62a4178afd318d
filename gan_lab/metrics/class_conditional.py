"""Metrics of class-conditional generation, computed when the samples come with the labels they were
generated with (`MetricContext.labels`; a class-conditional task's evaluation passes them):

- `class_consistency`: the share of G(z, y) the shipped classifier (digits / MNIST feature net) assigns to
  class y; stacked digits / MNIST: all three channels' digits must match (label 100 d0 + 10 d1 + d2).
- `intra_fid`: the mean over classes of the FID between the generated and the reference images of that class
  (Miyato & Koyama 2018), in the feature net's space; classes with fewer than `MIN_PER_CLASS` generated or
  reference samples are left out and counted in the protocol. Needs the reference's labels (the data
  module's split); not for stacked data (1000 classes: too few samples per class).
"""

from __future__ import annotations

import torch

from gan_lab.metrics.fid import fid
from gan_lab.metrics.mode_collapse import stacked_labels
from gan_lab.metrics.registry import MetricContext, register_metric

MIN_PER_CLASS = 10  # below this a class's covariance says little; such classes are left out of intra-FID


def predicted_classes(logits: torch.Tensor) -> torch.Tensor:
    """Class predictions of the feature net: N x K logits, or N x C x 10 per-channel logits (stacked)."""
    return stacked_labels(logits) if logits.dim() == 3 else logits.argmax(-1)


def class_consistency(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (predicted_classes(logits) == labels.reshape(-1).to(logits.device)).float().mean().item()


def intra_fid(
    real_feats: torch.Tensor, real_labels: torch.Tensor, fake_feats: torch.Tensor, fake_labels: torch.Tensor
) -> tuple[float | None, int, int]:
    """(mean per-class FID or None, classes used, classes left out for too few samples)."""
    values, left_out = [], 0
    for c in torch.unique(torch.cat([real_labels, fake_labels])).tolist():
        r, f = real_feats[real_labels == c], fake_feats[fake_labels == c]
        if min(len(r), len(f)) < MIN_PER_CLASS:
            left_out += 1
            continue
        values.append(fid(r, f))
    return (sum(values) / len(values) if values else None), len(values), left_out


def _label_histogram(ctx: MetricContext) -> None:
    k = int(ctx.labels.max()) + 1
    counts = torch.bincount(ctx.labels.reshape(-1).long(), minlength=k)
    if k <= 100:
        ctx.protocol["label_counts"] = counts.tolist()
    ctx.protocol["n_labels_used"] = int((counts > 0).sum())


@register_metric("class_consistency", kinds=("images", "stacked"), needs=("logits", "labels"), nets=("digits", "mnist"))
def _class_consistency(ctx: MetricContext) -> dict[str, float]:
    _label_histogram(ctx)
    ctx.protocol["class_consistency"] = f"share of G(z, y) the {ctx.net.name} classifier assigns to y"
    return {"class_consistency": class_consistency(ctx.fake_logits, ctx.labels)}


@register_metric("intra_fid", kinds=("images",), needs=("real_features", "labels"), nets=("digits", "mnist"))
def _intra_fid(ctx: MetricContext) -> dict[str, float]:
    dm = ctx.datamodule
    split = ctx.protocol.get("reference_split", "train")
    tensors = dm.split_tensors(split) if dm is not None and hasattr(dm, "split_tensors") else ()
    if len(tensors) < 2 or tensors[1].is_floating_point():  # no labels: e.g. (condition, target) image pairs
        ctx.protocol["intra_fid_skipped"] = "the reference has no class labels"
        return {}
    real_labels = tensors[1][: len(ctx.real.features)].reshape(-1).long()
    value, used, left_out = intra_fid(ctx.real.features, real_labels, ctx.fake_features, ctx.labels.reshape(-1).long())
    ctx.protocol.update(intra_fid_classes=used, intra_fid_min_per_class=MIN_PER_CLASS)
    if left_out:
        ctx.protocol["intra_fid_left_out"] = left_out
    if value is None:
        ctx.protocol["intra_fid_skipped"] = f"no class has {MIN_PER_CLASS} generated and reference samples"
        return {}
    return {"intra_fid": value}
