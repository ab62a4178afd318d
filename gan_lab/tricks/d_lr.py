"""`trick=d_lr`: D learning rate = factor x the base D learning rate."""

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
