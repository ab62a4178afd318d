"""`trick=d_width`: Scale the number of D filters / hidden units by `factor` (parameters scale ~factor^2)."""

from __future__ import annotations

from gan_lab.tricks.base import Trick


class DWidth(Trick):
    """Scale D's filter (or hidden unit) counts; the parameter count scales by about factor^2."""

    name, paper = "d_width", "Radford 2015 (capacity balance); Goodfellow 2016 tutorial"
    resources = frozenset({"d_width"})

    def __init__(self, factor: float = 0.5):
        self.factor = self.check("factor", factor, 0.0, 16.0, low_open=True)

    def discriminator_kwargs(self, kw):
        return {**kw, "width": kw.get("width", 1.0) * self.factor}
