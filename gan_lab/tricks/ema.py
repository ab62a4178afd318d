"""Exponential moving average of the generator's weights, used for samples and metrics."""

from __future__ import annotations

import copy

import torch
from torch import nn

from gan_lab.tricks.base import Trick


class EMA(nn.Module, Trick):
    name, paper = "ema", "Yazici 2019 (The unusual effectiveness of averaging in GAN training); Karras 2018"
    resources = frozenset({"sampling_generator"})

    def __init__(self, decay: float = 0.999, start: int = 0):
        nn.Module.__init__(self)
        self.decay = self.check("decay", decay, 0.0, 1.0)
        self.start = int(self.check("start", start, 0))
        self.ema = None

    def setup(self, task):
        self.ema = copy.deepcopy(task.generator).requires_grad_(False)

    @torch.no_grad()
    def after_g_step(self, task, step):
        decay = 0.0 if step < self.start else self.decay
        for e, p in zip(self.ema.parameters(), task.generator.parameters()):
            e.lerp_(p, 1.0 - decay)
        for e, b in zip(self.ema.buffers(), task.generator.buffers()):
            e.copy_(b)

    def sampling_generator(self, g):
        return self.ema

    def forward(self, *a, **k):  # pragma: no cover - a container, not a layer
        raise RuntimeError("EMA is not called directly")
