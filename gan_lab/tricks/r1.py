"""`trick=r1`: R1 gradient penalty on real data (Mescheder 2018)."""

from __future__ import annotations

from gan_lab.tricks.base import Trick, grad_norm_sq


class R1(Trick):
    """gamma/2 * E ||grad_x D(x)||^2 on real data (Mescheder 2018)."""

    name, paper = "r1", "Mescheder 2018 (Which training methods for GANs do actually converge?)"
    resources = frozenset({"d_penalty"})

    def __init__(self, gamma: float = 10.0):
        self.gamma = self.check("gamma", gamma, 0.0)

    def d_penalty(self, task, real, fake, cond, step):
        x = real.detach().requires_grad_(True)
        return 0.5 * self.gamma * grad_norm_sq(task.d_forward(x, cond, step), x).mean()
