"""`trick=feature_matching`: Feature matching on D features added to the G loss (Salimans 2016)."""

from __future__ import annotations

import torch

from gan_lab.tricks.base import Trick


class FeatureMatching(Trick):
    """Adds weight * ||mean f(real) - mean f(fake)||^2 of D's last hidden features to G's loss (Salimans 2016)."""

    name, paper = "feature_matching", "Salimans 2016 (Improved techniques for training GANs)"
    resources = frozenset({"feature_matching"})

    def __init__(self, weight: float = 1.0):
        self.weight = self.check("weight", weight, 0.0)

    def g_loss(self, task, fake, real, cond, step):
        with torch.no_grad():
            f_real = task.d_features(real, cond, step).flatten(1).mean(0)
        f_fake = task.d_features(fake, cond, step).flatten(1).mean(0)
        return self.weight * (f_real - f_fake).pow(2).sum()
