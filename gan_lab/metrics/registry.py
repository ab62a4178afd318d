"""Metrics by name: `@register_metric` and the lookup `metrics.names=[fid,kid]` goes through.

A metric is a function of one `MetricContext` returning `{name: float}`; it records what defines its numbers
(k, subset sizes, ...) in `ctx.protocol`. Registering it makes it selectable by name and part of the
default set of the kinds of data it applies to:

    from gan_lab.metrics.registry import MetricContext, register_metric

    @register_metric("my_metric", kinds=("images",), needs=("real_features",))
    def my_metric(ctx: MetricContext) -> dict[str, float]:
        ctx.protocol["my_metric_k"] = 3
        return {"my_metric": float((ctx.fake_features.mean(0) - ctx.real.features.mean(0)).norm())}

`kinds`: the data the metric applies to, as `gan_lab.metrics.evaluate` classifies a data module:
"points" (2-D mixtures), "images" (images embedded by one feature net), "stacked" (stacked digits / MNIST,
each channel embedded by the 1-channel net). `needs`, the inputs the metric reads from the context:
"real_features" (reference features; a pytorch-fid statistics file has only their mean and covariance),
"real_stats" (mean and covariance suffice), "logits" (the feature net's class logits, one forward pass with
the features), "labels" (the class labels the samples were generated with). `default=False` keeps a
metric out of the default set (then only `metrics.names` selects it); `nets` limits it to feature nets.

Selection: `metrics.names: null` (the default) runs every default metric that applies to the data;
a list runs those, in order. An unknown name is a ConfigError listing the registered names. A selected
metric that does not apply (wrong kind, feature net or missing input) is recorded in
`protocol["not_computed"]` with the reason, never silently dropped; so is a default metric that applies
but lacks the reference features (a statistics file holds only their mean and covariance).

Metrics of other modules register on import: `registered()` imports the built-ins
(`gan_lab.metrics.evaluate`) and `gan_lab.metrics.class_conditional` when it exists.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gan_lab.errors import ConfigError

KINDS = ("points", "images", "stacked")
NEEDS = ("real_features", "real_stats", "logits", "labels")
PLUGIN_MODULES = ("gan_lab.metrics.evaluate", "gan_lab.metrics.class_conditional")


@dataclass
class MetricContext:
    """Everything a metric may read. Tensors are on the CPU; features N x D float32."""

    kind: str  # "points", "images" or "stacked"
    samples: torch.Tensor  # the generated samples in data space (images in [-1, 1], 8-bit quantised)
    datamodule: Any = None  # the data module compared with (None for a reference folder or statistics file)
    net: Any = None  # the feature net (images, stacked)
    fake_features: torch.Tensor | None = None
    fake_logits: torch.Tensor | None = None  # N x classes (stacked: N x C x classes); None without a head
    real: Any = None  # gan_lab.metrics.fid.RealStats of the reference (features None for a statistics file)
    labels: torch.Tensor | None = None  # class labels of the samples (class-conditional generation)
    params: dict = field(default_factory=dict)  # kid_subsets, kid_subset_size, pr_k, dc_k, ndb_k, ...
    protocol: dict = field(default_factory=dict)  # metrics add the settings that define their numbers
    selected: tuple[str, ...] = ()  # the metrics this run computes (set by `run`): work they share is done once
    shared: dict = field(default_factory=dict)  # results computed once for several metrics (KID + PRDC)

    @property
    def n(self) -> int:
        return len(self.samples)

    def has(self, need: str) -> bool:
        if need == "real_features":
            return self.real is not None and self.real.features is not None
        if need == "real_stats":
            return self.real is not None
        if need == "logits":
            return self.fake_logits is not None
        return self.labels is not None


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[MetricContext], dict[str, float]]
    kinds: tuple[str, ...]
    needs: tuple[str, ...] = ()
    nets: tuple[str, ...] | None = None  # feature nets it applies to (None: any)
    default: bool = True

    def why_not(self, ctx: MetricContext) -> str | None:
        """None when the metric applies to `ctx`, else the reason it does not."""
        if ctx.kind not in self.kinds:
            return f"applies to {', '.join(self.kinds)} data, not {ctx.kind}"
        net = getattr(ctx.net, "name", None)
        if self.nets is not None and net not in self.nets:
            return f"needs feature net {', '.join(self.nets)}, not {net}"
        missing = [need for need in self.needs if not ctx.has(need)]
        if missing:
            return f"needs {', '.join(missing)}"
        return None


_REGISTRY: dict[str, Metric] = {}
_loaded = False


def register_metric(
    name: str,
    kinds: Sequence[str] = ("images",),
    needs: Sequence[str] = (),
    nets: Sequence[str] | None = None,
    default: bool = True,
):
    """Decorator: register `fn(ctx) -> {name: float}` as the metric `name` (see the module doc)."""
    bad = [k for k in kinds if k not in KINDS] + [n for n in needs if n not in NEEDS]
    if bad:
        raise ValueError(f"register_metric({name!r}): unknown kind or need {bad[0]!r}; allowed {KINDS} / {NEEDS}")

    def wrap(fn):
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"metric {name!r} is registered twice ({_REGISTRY[name].fn.__module__}, {fn.__module__})")
        _REGISTRY[name] = Metric(name, fn, tuple(kinds), tuple(needs), None if nets is None else tuple(nets), default)
        return fn

    return wrap


def registered() -> dict[str, Metric]:
    """All registered metrics by name (importing the modules that register them first)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in PLUGIN_MODULES:
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as e:
                if e.name != mod:
                    raise
    return _REGISTRY


def check_names(names) -> tuple[str, ...] | None:
    """`metrics.names` as a tuple (None: the default set); unknown names: one line listing the registered."""
    if names is None:
        return None
    if isinstance(names, str | bytes | dict) or not hasattr(names, "__iter__") or hasattr(names, "keys"):
        raise ConfigError(f"metrics.names={names!r} must be a list like [fid,kid] or null; allowed null or a list")
    names = tuple(str(n) for n in names)
    known = registered()
    for n in names:
        if n not in known:
            raise ConfigError(f"metrics.names: unknown metric {n!r}; registered: {', '.join(sorted(known))}")
    return names


def select(names: Sequence[str] | None, ctx: MetricContext) -> list[Metric]:
    """The metrics to run for `ctx`: the named ones that apply (the rest go to protocol["not_computed"]),
    or with names=None every default metric that applies."""
    known = registered()
    chosen, skipped = [], {}
    for n in check_names(names) if names is not None else [n for n, m in known.items() if m.default]:
        reason = known[n].why_not(ctx)
        if reason is None:
            chosen.append(known[n])
        elif names is not None or _reference_missing(known[n], ctx):
            skipped[n] = reason
    if skipped:
        ctx.protocol["not_computed"] = skipped
    return chosen


def _reference_missing(metric: Metric, ctx: MetricContext) -> bool:
    """A default metric that applies to the data and the net but lacks reference features (a statistics
    file): worth saying in the protocol."""
    applies = ctx.kind in metric.kinds and (metric.nets is None or getattr(ctx.net, "name", None) in metric.nets)
    return applies and any(not ctx.has(need) for need in metric.needs if need.startswith("real_"))


def run(names: Sequence[str] | None, ctx: MetricContext) -> dict[str, float]:
    """Run the selected metrics on `ctx`; returns their numbers, fills ctx.protocol (incl. "metrics")."""
    out: dict[str, float] = {}
    chosen = select(names, ctx)
    ctx.selected = tuple(m.name for m in chosen)
    for metric in chosen:
        out.update(metric.fn(ctx))
    ctx.protocol["metrics"] = [m.name for m in chosen]
    return out
