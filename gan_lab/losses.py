"""Adversarial losses on raw discriminator outputs (logits / critic values).

`d(real_out, fake_out, real_target, fake_target)` and `g(fake_out)`. Targets are tensors shaped like
the outputs (label tricks rewrite them) and only the target-based losses use them. Every D loss is a sum of a
term on the real outputs and one on the fake outputs; `d_real(real_out, real_target)` is the first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_lab.errors import ConfigError


class AdversarialLoss:
    name = ""
    uses_targets = True  # label smoothing/noise/flips only make sense for losses with targets

    def d(self, real, fake, real_t, fake_t):
        raise NotImplementedError

    def d_real(self, real, real_t):
        """The real samples' part of `d` (`d` = d_real + a term of the fake outputs alone)."""
        raise NotImplementedError

    def g(self, fake):
        raise NotImplementedError


class Minimax(AdversarialLoss):
    """Goodfellow 2014: D maximises log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z)))."""

    name = "minimax"

    def d(self, real, fake, real_t, fake_t):
        return F.binary_cross_entropy_with_logits(real, real_t) + F.binary_cross_entropy_with_logits(fake, fake_t)

    def d_real(self, real, real_t):
        return F.binary_cross_entropy_with_logits(real, real_t)

    def g(self, fake):
        return -F.softplus(fake).mean()  # log(1 - sigmoid(l)) = -softplus(l)


class NonSaturating(Minimax):
    """Goodfellow 2014's practical variant: G maximises log D(G(z))."""

    name = "non_saturating"

    def g(self, fake):
        return F.softplus(-fake).mean()


class LeastSquares(AdversarialLoss):
    """Mao 2017 (LSGAN, a=0, b=c=1)."""

    name = "least_squares"

    def d(self, real, fake, real_t, fake_t):
        return 0.5 * (F.mse_loss(real, real_t) + F.mse_loss(fake, fake_t))

    def d_real(self, real, real_t):
        return 0.5 * F.mse_loss(real, real_t)

    def g(self, fake):
        return 0.5 * ((fake - 1) ** 2).mean()


class Hinge(AdversarialLoss):
    """Lim 2017 / Miyato 2018."""

    name = "hinge"
    uses_targets = False

    def d(self, real, fake, real_t, fake_t):
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def d_real(self, real, real_t):
        return F.relu(1 - real).mean()

    def g(self, fake):
        return -fake.mean()


class Wasserstein(AdversarialLoss):
    """Arjovsky 2017 critic loss (pair with gradient_penalty or weight clipping)."""

    name = "wasserstein"
    uses_targets = False

    def d(self, real, fake, real_t, fake_t):
        return fake.mean() - real.mean()

    def d_real(self, real, real_t):
        return -real.mean()

    def g(self, fake):
        return -fake.mean()


LOSSES = {cls.name: cls for cls in (Minimax, NonSaturating, LeastSquares, Hinge, Wasserstein)}


def get_loss(name: str) -> AdversarialLoss:
    if name not in LOSSES:
        raise ConfigError(f"model.loss={name!r} is not known; allowed {', '.join(LOSSES)}")
    return LOSSES[name]()


def bce_targets(out: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full_like(out, value)
