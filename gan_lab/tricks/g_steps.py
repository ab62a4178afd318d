"""`trick=g_steps`: k generator updates per batch."""

from __future__ import annotations

from gan_lab.tricks.base import Trick


class GSteps(Trick):
    """k generator updates per batch (a generator that outpaces D: the mode-collapse scenario)."""

    name, paper = "g_steps", "Goodfellow 2014 (k steps of D per G step, here reversed); Metz 2017"
    resources = frozenset({"g_steps"})

    def __init__(self, k: int = 5):
        self.k = int(self.check("k", k, 1, 100))

    def g_steps(self, step, n):
        return n * self.k
