"""Build objects from `{_target_: dotted.path, **kwargs}` specs with one-line errors.

Hydra's `instantiate` wraps constructor errors in multi-line exceptions; for user-facing validation we
want the ConfigError a constructor raises, and a typo in a parameter name reported with the allowed names.
"""

from __future__ import annotations

import inspect

import torch
from hydra.utils import get_class

from gan_lab.errors import ConfigError


def container(node) -> dict | list:
    """A config node as plain, resolved containers ({} for None)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def build_data_and_task(cfg):
    """The seeded data module (set up) and the task of a composed config, the task told the data's shapes
    (and class counts for a class-conditional model); no trainer. Training adds callbacks, loggers and the
    trainer (`gan_lab.train.build_objects`); evaluation and sampling use these two alone."""
    import pytorch_lightning as pl

    if cfg.get("seeds") is not None:  # seed-parallel: the members built one by one, then stacked
        from gan_lab.ensemble import build_seed_parallel

        return build_seed_parallel(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build(container(cfg.data), "data")
    dm.setup("fit")
    model_extra = {"data_shape": list(dm.shape)}
    condition_shape = getattr(dm, "condition_shape", None)
    if condition_shape is None and getattr(dm, "scale", None):  # super-resolution: LR condition of the HR target
        condition_shape = (dm.shape[0], dm.shape[1] // dm.scale, dm.shape[2] // dm.scale)
    if condition_shape is not None:
        model_extra["condition_shape"] = list(condition_shape)
    model_extra["tricks"] = container(cfg.get("trick")) or None
    if cfg.model.get("conditional"):  # class-conditional GAN: the data's class counts
        from gan_lab.tasks.gan import conditional_extra

        model_extra.update(conditional_extra(container(cfg.model), dm))
    task = build(container(cfg.model), "model", **model_extra)
    return dm, task


def build(spec: dict, owner: str, **extra):
    spec = dict(spec)
    target = spec.pop("_target_", None)
    if target is None:
        raise ConfigError(f"{owner} has no _target_")
    spec.pop("_partial_", None)
    spec.pop("_convert_", None)
    try:
        cls = get_class(target)
    except Exception:
        raise ConfigError(f"{owner}._target_={target!r} cannot be imported") from None
    kwargs = {**spec, **extra}
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            allowed = ", ".join(p for p in params if p not in extra) or "none"
            raise ConfigError(f"{owner}: unknown parameter {unknown[0]!r}; allowed {allowed}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except Exception as e:  # a library's own validation (e.g. Lightning's MisconfigurationException)
        if type(e).__name__ in ("MisconfigurationException", "ValueError") and str(e).strip():
            raise ConfigError(f"{owner}: {str(e).strip().splitlines()[0]}") from None
        raise


def adam(params, kw: dict) -> torch.optim.Adam:
    """The nets' optimizer from `model.g_optimizer` / `model.d_optimizer` (`name: adam` and Adam's kwargs)."""
    kw = dict(kw)
    name = kw.pop("name", "adam")
    if name != "adam":
        raise ConfigError(f"optimizer name={name!r} is not known; allowed adam")
    kw["betas"] = tuple(kw.get("betas", (0.9, 0.999)))
    return torch.optim.Adam(params, **kw)
