"""`trick=label_flip`: Each D target swapped with the other class with probability p."""

from __future__ import annotations

import torch

from gan_lab.tricks.base import Trick


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
