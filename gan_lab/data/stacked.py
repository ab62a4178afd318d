"""Stacked digits / Stacked MNIST (VEEGAN, PacGAN): 3 channels, each an independent random digit image.

The label is 100 * d0 + 10 * d1 + d2, so the data has 1000 equally likely modes. Compositions are
drawn with a generator seeded by `1234 + split_seed`, so a given config always yields the same data.
"""

from __future__ import annotations

import torch

from gan_lab.data.base import InMemoryDataModule, resize_images, split_train_val
from gan_lab.errors import check_range


def stack_channels(x: torch.Tensor, y: torch.Tensor, n_samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n_samples 3-channel images, channel c a random image of the 1-channel pool x (labels y)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(x), (n_samples, 3), generator=g)
    images = x[idx].squeeze(2)  # n x 3 x H x W
    d = y[idx]
    return images.contiguous(), 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]


class StackedDigitsDataModule(InMemoryDataModule):
    """Batches are (images N x 3 x size x size in [-1, 1], labels in [0, 1000))."""

    num_classes = 1000  # labels of the batches (class-conditional models)

    def __init__(self, size: int = 32, n_samples: int = 10_000, **kw):
        super().__init__(name="stacked_digits", **kw)
        check_range("data.stacked_digits", "size", size, 8, 256)
        check_range("data.stacked_digits", "n_samples", n_samples, 2)
        self.size, self.n_samples = int(size), int(n_samples)
        self.shape = (3, self.size, self.size)

    def load(self):
        from gan_lab.data.digits import load_digits_images

        x, y = load_digits_images(self.size)
        data = stack_channels(x, y, self.n_samples, seed=1234 + self.split_seed)
        return split_train_val(data, self.val_fraction, self.split_seed)


class StackedMNISTDataModule(InMemoryDataModule):
    """Stacked MNIST from the IDX files of `root`/`split` (channels drawn from that split's images)."""

    num_classes = 1000  # labels of the batches (class-conditional models)

    def __init__(self, root: str = "data/mnist", split: str = "train", size: int = 32, n_samples: int = 25_000, **kw):
        super().__init__(name="stacked_mnist", **kw)
        check_range("data.stacked_mnist", "size", size, 8, 256)
        check_range("data.stacked_mnist", "n_samples", n_samples, 2)
        self.root, self.split, self.size, self.n_samples = root, split, int(size), int(n_samples)
        self.shape = (3, self.size, self.size)

    def load(self):
        from gan_lab.data.mnist import load_mnist

        x, y = load_mnist(self.root, self.split)
        x = resize_images(x, self.size).clamp(0, 1) * 2 - 1
        data = stack_channels(x, y, self.n_samples, seed=1234 + self.split_seed)
        return split_train_val(data, self.val_fraction, self.split_seed)
