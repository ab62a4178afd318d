"""`trick=d_dropout`: Dropout in D after every hidden activation (rate in [0, 1))."""

from __future__ import annotations

from gan_lab.tricks.base import Trick


class DDropout(Trick):
    name, paper = "d_dropout", "Srivastava 2014; Goodfellow 2014 (dropout in D)"
    resources = frozenset({"d_dropout"})

    def __init__(self, rate: float = 0.3):
        self.rate = self.check("rate", rate, 0.0, 1.0, high_open=True)

    def discriminator_kwargs(self, kw):
        return {**kw, "dropout": self.rate}
