"""`trick=ttur`: Two time-scale update rule: separate G and D learning rates (Heusel 2017)."""

from __future__ import annotations

from gan_lab.tricks.base import Trick


class TTUR(Trick):
    """Two time-scale update rule: separate G and D learning rates (Heusel 2017: G 1e-4, D 4e-4)."""

    name, paper = "ttur", "Heusel 2017 (TTUR)"
    resources = frozenset({"d_learning_rate", "g_learning_rate"})

    def __init__(self, g_lr: float = 1e-4, d_lr: float = 4e-4):
        self.g_lr = self.check("g_lr", g_lr, 0.0, 1.0, low_open=True)
        self.d_lr = self.check("d_lr", d_lr, 0.0, 1.0, low_open=True)

    def optimizer_kwargs(self, which, kw):
        return {**kw, "lr": self.d_lr if which == "d" else self.g_lr}
