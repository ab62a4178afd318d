"""2-D Gaussian mixtures of the PacGAN/VEEGAN benchmarks: ring of 8 and grid of 25."""

from __future__ import annotations

import math

import torch

from gan_lab.data.base import InMemoryDataModule, split_train_val
from gan_lab.errors import ConfigError, check_range


def ring_centers(n_modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    a = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return torch.stack([radius * torch.cos(a), radius * torch.sin(a)], 1).float()


def grid_centers(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], 1)


def sample_mixture(centers: torch.Tensor, sigma: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mode = torch.randint(len(centers), (n,), generator=g)
    x = centers[mode] + sigma * torch.randn(n, 2, generator=g)
    return x, mode


class Toy2DDataModule(InMemoryDataModule):
    """A fixed sample of `n_samples` points from the mixture; batches are (points, mode index)."""

    is_image = False

    def __init__(
        self,
        kind: str = "ring",
        sigma: float = 0.01,
        n_samples: int = 100_000,
        radius: float = 1.0,
        n_modes: int = 8,
        side: int = 5,
        spacing: float = 2.0,
        **kw,
    ):
        super().__init__(name=f"toy2d_{kind}", **kw)
        if kind not in ("ring", "grid"):
            raise ConfigError(f"data.kind={kind!r} is not a 2-D mixture; allowed ring, grid")
        check_range(f"data.toy2d_{kind}", "sigma", sigma, 0.0, low_open=True)
        check_range(f"data.toy2d_{kind}", "n_samples", n_samples, 1)
        self.kind, self.sigma, self.n_samples = kind, float(sigma), int(n_samples)
        self.centers = ring_centers(n_modes, radius) if kind == "ring" else grid_centers(side, spacing)
        self.shape = (2,)
        self.num_classes = len(self.centers)  # the mode index is the label (class-conditional models)

    def load(self):
        x, mode = sample_mixture(self.centers, self.sigma, self.n_samples, seed=1234 + self.split_seed)
        return split_train_val((x, mode), self.val_fraction, self.split_seed)
