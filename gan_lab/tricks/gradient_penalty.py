"""`trick=gradient_penalty`: WGAN-GP (Gulrajani 2017): use with model.loss=wasserstein."""

from __future__ import annotations

import torch

from gan_lab.tricks.base import Trick, grad_norm_sq


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
        norm = (grad_norm_sq(task.d_forward(x, cond, step), x) + 1e-12).sqrt()
        return self.weight * ((norm - 1) ** 2).mean()

    def d_steps(self, step, n):
        return n * self.n_critic
