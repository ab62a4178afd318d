"""`trick=label_noise`: Real/fake targets drawn uniformly from bands."""

from __future__ import annotations

import torch

from gan_lab.errors import ConfigError
from gan_lab.tricks.base import Trick


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
