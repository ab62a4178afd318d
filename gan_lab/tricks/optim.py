"""Tricks that change the optimizers."""

from __future__ import annotations

from gan_lab.tricks.base import Trick


class DLR(Trick):
    """D learning rate = factor x the model's base D learning rate (a slower D when it wins too easily)."""

    name, paper = "d_lr", "Goodfellow 2016 NIPS tutorial (balancing G and D)"
    resources = frozenset({"d_learning_rate"})

    def __init__(self, factor: float = 0.25):
        self.factor = self.check("factor", factor, 0.0, 100.0, low_open=True)

    def optimizer_kwargs(self, which, kw):
        return {**kw, "lr": kw["lr"] * self.factor} if which == "d" else kw


class TTUR(Trick):
    """Two time-scale update rule: separate G and D learning rates (Heusel 2017: G 1e-4, D 4e-4)."""

    name, paper = "ttur", "Heusel 2017 (TTUR)"
    resources = frozenset({"d_learning_rate", "g_learning_rate"})

    def __init__(self, g_lr: float = 1e-4, d_lr: float = 4e-4):
        self.g_lr = self.check("g_lr", g_lr, 0.0, 1.0, low_open=True)
        self.d_lr = self.check("d_lr", d_lr, 0.0, 1.0, low_open=True)

    def optimizer_kwargs(self, which, kw):
        return {**kw, "lr": self.d_lr if which == "d" else self.g_lr}
