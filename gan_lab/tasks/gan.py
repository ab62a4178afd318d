"""Unconditional GAN (Goodfellow 2014); with convolutional nets it is DCGAN (Radford 2015)."""

from __future__ import annotations

import torch

from gan_lab.tasks.adversarial import AdversarialTask


class GANTask(AdversarialTask):
    def __init__(self, *args, n_grid: int = 64, **kwargs):
        super().__init__(*args, **kwargs)
        self.z_dim = self.generator.z_dim
        self.register_buffer(
            "fixed_z", torch.randn(n_grid, self.z_dim, generator=torch.Generator().manual_seed(0)), persistent=True
        )

    def unpack(self, batch):
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        return real, None

    def generate(self, cond, n: int, generator=None, z=None):
        g = generator or self.generator
        if z is None:
            z = torch.randn(n, self.z_dim, device=self.device)
        return g(z)

    def sample_panels(self) -> dict[str, torch.Tensor]:
        """Fixed-z samples for the sample pictures (callbacks.samples renders them)."""
        with self.eval_generator() as g:
            return {"samples": self.generate(None, len(self.fixed_z), generator=g, z=self.fixed_z).float().cpu()}
