"""`trick=minibatch_std`: Minibatch standard deviation feature in D (Karras 2018)."""

from __future__ import annotations

from gan_lab.tricks.base import Trick


class MinibatchStdDev(Trick):
    name, paper = "minibatch_std", "Karras 2018 (ProGAN), after Salimans 2016 minibatch discrimination"
    resources = frozenset({"minibatch_std"})

    def discriminator_kwargs(self, kw):
        return {**kw, "minibatch_std": True}
