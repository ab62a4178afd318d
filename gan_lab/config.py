"""Validation of the composed config, before anything is built or trained.

Constructors validate their own parameters (gan_lab.build reports unknown ones); this module checks
what crosses objects or is plain data in the config: top-level keys, optimizer settings, logger modes.
Every failure is a ConfigError with one line naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

from omegaconf import DictConfig

from gan_lab.errors import ConfigError, check_range


def validate(cfg: DictConfig) -> None:
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} must be an integer")
    model = cfg.get("model") or {}
    for key in ("g_optimizer", "d_optimizer", "optimizer"):
        opt = model.get(key)
        if opt is None:
            continue
        check_range(f"model.{key}", "lr", opt.get("lr"), 0.0, 1.0, low_open=True)
        betas = opt.get("betas")
        if betas is not None:
            if len(betas) != 2:
                raise ConfigError(f"model.{key}.betas={list(betas)} must be two numbers in [0, 1)")
            for b in betas:
                check_range(f"model.{key}", "betas", b, 0.0, 1.0, high_open=True)
