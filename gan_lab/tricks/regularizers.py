"""Tricks that add a term to a loss: D gradient penalties and generator feature matching."""

from __future__ import annotations

import torch

from gan_lab.tricks.base import Trick


def _grad_norm_sq(out, x):
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.flatten(1).pow(2).sum(1)


class R1(Trick):
    """gamma/2 * E ||grad_x D(x)||^2 on real data (Mescheder 2018)."""

    name, paper = "r1", "Mescheder 2018 (Which training methods for GANs do actually converge?)"
    resources = frozenset({"d_penalty"})

    def __init__(self, gamma: float = 10.0):
        self.gamma = self.check("gamma", gamma, 0.0)

    def d_penalty(self, task, real, fake, cond, step):
        x = real.detach().requires_grad_(True)
        return 0.5 * self.gamma * _grad_norm_sq(task.d_forward(x, cond, step), x).mean()


class GradientPenalty(Trick):
    """WGAN-GP: lambda * E (||grad D(x_hat)|| - 1)^2 on real/fake interpolates, with n_critic D steps per
    batch (each on a fresh fake batch and the same real batch) (Gulrajani 2017)."""

    name, paper = "gradient_penalty", "Gulrajani 2017 (WGAN-GP)"
    resources = frozenset({"d_penalty"})

    def __init__(self, weight: float = 10.0, n_critic: int = 5):
        self.weight = self.check("weight", weight, 0.0)
        self.n_critic = int(self.check("n_critic", n_critic, 1, 100))

    def d_penalty(self, task, real, fake, cond, step):
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
        x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        norm = (_grad_norm_sq(task.d_forward(x, cond, step), x) + 1e-12).sqrt()
        return self.weight * ((norm - 1) ** 2).mean()

    def d_steps(self, step, n):
        return n * self.n_critic


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
