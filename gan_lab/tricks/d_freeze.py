"""`trick=d_freeze`: D not updated for k batches from `start`, repeated every `period` batches (0: once)."""

from __future__ import annotations

from gan_lab.tricks.base import Trick


class DFreeze(Trick):
    """D is not updated for `k` batches starting at `start`, repeated every `period` batches (0: once).
    The generator trained several batches against a fixed D collapses onto D's weak spots."""

    name, paper = "d_freeze", "Goodfellow 2016 NIPS tutorial (mode collapse); Metz 2017"
    resources = frozenset({"d_freeze"})

    def __init__(self, k: int = 100, start: int = 0, period: int = 0):
        self.k = int(self.check("k", k, 0))
        self.start = int(self.check("start", start, 0))
        self.period = int(self.check("period", period, 0))
        if self.period and self.period <= self.k:
            self.check("period", period, self.k + 1)

    def frozen(self, step: int) -> bool:
        if step < self.start:
            return False
        t = step - self.start
        if self.period:
            t %= self.period
        return t < self.k

    def d_steps(self, step, n):
        return 0 if self.frozen(step) else n
