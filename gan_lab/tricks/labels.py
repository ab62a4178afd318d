"""Tricks that rewrite the discriminator's real/fake targets (target-based losses only)."""

from __future__ import annotations

import torch

from gan_lab.errors import ConfigError
from gan_lab.tricks.base import Trick


class LabelSmoothing(Trick):
    """One-sided: real targets become `real` (0.9), fake targets stay 0 (Salimans 2016)."""

    name, paper = "label_smoothing", "Salimans 2016 (one-sided label smoothing)"
    resources = frozenset({"label_values"})
    needs_targets = True

    def __init__(self, real: float = 0.9):
        self.real = self.check("real", real, 0.0, 1.0)

    def targets(self, real_t, fake_t, step):
        return torch.full_like(real_t, self.real), fake_t


class LabelNoise(Trick):
    """Real and fake targets drawn uniformly from bands, e.g. [0.7, 1.2] and [0.0, 0.3] (Chintala's ganhacks)."""

    name, paper = "label_noise", "Salimans 2016; Chintala et al. 'How to train a GAN' (ganhacks)"
    resources = frozenset({"label_values"})
    needs_targets = True

    def __init__(self, real: tuple = (0.7, 1.2), fake: tuple = (0.0, 0.3)):
        for key, band in (("real", real), ("fake", fake)):
            if len(band) != 2 or not band[0] <= band[1]:
                raise ConfigError(f"trick.label_noise: {key}={list(band)} must be [low, high] with low <= high")
            for v in band:
                self.check(key, v, -1.0, 2.0)
        self.real, self.fake = tuple(map(float, real)), tuple(map(float, fake))

    def targets(self, real_t, fake_t, step):
        (a, b), (c, d) = self.real, self.fake
        return (torch.rand_like(real_t) * (b - a) + a, torch.rand_like(fake_t) * (d - c) + c)


class LabelFlip(Trick):
    """Each D target is swapped with the other class's target with probability p (after smoothing/noise)."""

    name, paper = "label_flip", "Chintala et al. 'How to train a GAN' (ganhacks #6)"
    resources = frozenset({"label_flip"})
    needs_targets = True
    order = 10

    def __init__(self, p: float = 0.05):
        self.p = self.check("p", p, 0.0, 1.0)

    def targets(self, real_t, fake_t, step):
        if real_t.shape != fake_t.shape:  # conditional Ds can give differently shaped maps; flip by broadcast value
            return real_t, fake_t
        flip_r = torch.rand_like(real_t) < self.p
        flip_f = torch.rand_like(fake_t) < self.p
        return torch.where(flip_r, fake_t, real_t), torch.where(flip_f, real_t, fake_t)
