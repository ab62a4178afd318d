"""`trick=spectral_norm`: Spectral normalisation of every D weight (Miyato 2018)."""

from __future__ import annotations

from torch import nn

from gan_lab.tricks.base import Trick


class SpectralNorm(Trick):
    name, paper = "spectral_norm", "Miyato 2018"
    resources = frozenset({"spectral_norm"})

    def __init__(self, n_power_iterations: int = 1):
        self.n_power_iterations = int(self.check("n_power_iterations", n_power_iterations, 1, 100))

    def wrap_discriminator(self, d: nn.Module) -> nn.Module:
        from torch.nn.utils.parametrizations import spectral_norm

        for m in list(d.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
                spectral_norm(m, n_power_iterations=self.n_power_iterations)
        return d
