"""`trick=pacgan`: PacGAN: D judges m samples packed together (Lin 2018)."""

from __future__ import annotations

from gan_lab.errors import ConfigError
from gan_lab.tricks.base import Trick


class PacGAN(Trick):
    """D judges `m` samples packed along the channel (feature) axis: N x C x ... -> N/m x mC x ..."""

    name, paper = "pacgan", "Lin 2018 (PacGAN)"
    resources = frozenset({"packing"})
    order = 100  # packing is the last thing done to D's input

    def __init__(self, m: int = 2):
        self.m = int(self.check("m", m, 1, 16))

    def discriminator_kwargs(self, kw):
        if kw.get("num_classes"):  # class-conditional D: one label slot per packed sample
            kw = {**kw, "label_slots": self.m}
        if kw.get("in_channels"):
            return {**kw, "in_channels": kw["in_channels"] * self.m}
        shape = list(kw["shape"])
        return {**kw, "shape": [shape[0] * self.m, *shape[1:]]}

    def d_input(self, x, step):
        n = x.shape[0]
        if n % self.m:
            raise ConfigError(
                f"trick.pacgan: batch of {n} is not divisible by m={self.m}; choose data.batch_size "
                f"as a multiple of {self.m}"
            )
        return x.reshape(n // self.m, self.m * x.shape[1], *x.shape[2:])

    def d_labels(self, y, step):
        """The labels of the packed samples, in their order: N -> N/m x m."""
        return y.reshape(len(y) // self.m, self.m)
