"""`trick=instance_noise`: Gaussian noise on D inputs, std annealed linearly to 0 over anneal_steps batches."""

from __future__ import annotations

import torch

from gan_lab.tricks.base import Trick


class InstanceNoise(Trick):
    """Gaussian noise on every D input, std annealed linearly from `std` to 0 over `anneal_steps`."""

    name, paper = "instance_noise", "Sonderby 2017; Arjovsky & Bottou 2017"
    resources = frozenset({"instance_noise"})
    order = 50

    def __init__(self, std: float = 0.1, anneal_steps: int = 2000):
        self.std = self.check("std", std, 0.0)
        self.anneal_steps = int(self.check("anneal_steps", anneal_steps, 0))

    def std_at(self, step: int) -> float:
        if self.anneal_steps == 0:
            return self.std
        return self.std * max(0.0, 1.0 - step / self.anneal_steps)

    def d_input(self, x, step):
        s = self.std_at(step)
        return x + s * torch.randn_like(x) if s > 0 else x
