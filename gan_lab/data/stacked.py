"""Stacked digits / Stacked MNIST (VEEGAN, PacGAN): 3 channels, each an independent random digit image.

The label is 100 * d0 + 10 * d1 + d2, so the data has 1000 equally likely modes. Compositions are
drawn with a generator seeded by `1234 + split_seed`, so a given config always yields the same data.
With `fresh=true` the training batches are new stacks drawn for each batch from all the digits (as the
PacGAN authors' code for the Unrolled-GAN table does), a pure function of the run's seed and the batch's
position (so resume continues with the same batches); the fixed pool of `n_samples` stacks still gives the
validation split, the metrics' reference images and the length of an epoch.
"""

from __future__ import annotations

import torch

from gan_lab.data.base import EpochBatches, InMemoryDataModule, resize_images, split_train_val
from gan_lab.errors import ConfigError, check_range


def stacks(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stacks of digit indices idx (n x 3) into the 1-channel pool x (labels y): n x 3 x H x W images and
    their labels 100 * d0 + 10 * d1 + d2."""
    d = y[idx]
    return x[idx].squeeze(2), 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]


def stack_channels(x: torch.Tensor, y: torch.Tensor, n_samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n_samples 3-channel images, channel c a random image of the 1-channel pool x (labels y)."""
    g = torch.Generator().manual_seed(seed)
    images, labels = stacks(x, y, torch.randint(len(x), (n_samples, 3), generator=g))
    return images.contiguous(), labels


class FreshStacks(EpochBatches):
    """Training batches of new stacks: batch b of epoch e holds the stacks of rows [b * block + rank * batch_size,
    + batch_size) of a (len x block) x 3 draw of digit indices seeded by (seed, e), block = batch_size x
    world_size, so ranks get disjoint stacks and a resumed run the same batches as an uninterrupted one."""

    def __init__(self, digits, labels, n_pool: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        super().__init__((digits, labels), batch_size, seed, rank=rank, world_size=world_size)
        self.n = n_pool  # an epoch is as long as one over the pool

    def __iter__(self):
        epoch, start = self.position() if self.position else (0, 0)
        digits, labels = self.tensors
        block = self.batch_size * self.world_size
        g = torch.Generator().manual_seed(self.seed + 7919 * epoch)
        draws = torch.randint(len(digits), (len(self) * block, 3), generator=g).to(digits.device)
        for b in range(start, len(self)):
            lo = b * block + self.rank * self.batch_size
            yield stacks(digits, labels, draws[lo : lo + self.batch_size])


class _Stacked(InMemoryDataModule):
    """Batches are (images N x 3 x size x size in [-1, 1], labels in [0, 1000))."""

    num_classes = 1000  # labels of the batches (class-conditional models)

    def __init__(self, name: str, size: int, n_samples: int, fresh: bool = False, **kw):
        super().__init__(name=name, **kw)
        check_range(f"data.{name}", "size", size, 8, 256)
        check_range(f"data.{name}", "n_samples", n_samples, 2)
        if not isinstance(fresh, bool):
            raise ConfigError(f"data.{name}: fresh={fresh!r} must be a boolean; allowed true, false")
        self.size, self.n_samples, self.fresh = int(size), int(n_samples), fresh
        self.shape = (3, self.size, self.size)
        self._digits = None  # with fresh: (N x 1 x size x size in [-1, 1], N labels), what stacks are drawn from

    def digits(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def load(self):
        digits = self.digits()
        self._digits = digits if self.fresh else None  # kept only when the training batches are drawn from them
        data = stack_channels(*digits, self.n_samples, seed=1234 + self.split_seed)
        return split_train_val(data, self.val_fraction, self.split_seed)

    def train_batches(self, rank: int, world: int) -> EpochBatches:
        if not self.fresh:
            return super().train_batches(rank, world)
        digits = self._where_sliced("digits", self._digits)
        n_pool = len(self._train[0])
        return FreshStacks(*digits, n_pool, self.batch_size, self._order_seed, rank=rank, world_size=world)


class StackedDigitsDataModule(_Stacked):
    """Stacked scikit-learn digits: batches are (images N x 3 x size x size in [-1, 1], labels in [0, 1000))."""

    def __init__(self, size: int = 32, n_samples: int = 10_000, **kw):
        super().__init__("stacked_digits", size, n_samples, **kw)

    def digits(self):
        from gan_lab.data.digits import load_digits_images

        return load_digits_images(self.size)


class StackedMNISTDataModule(_Stacked):
    """Stacked MNIST from the IDX files of `root`/`split` (channels drawn from that split's images)."""

    def __init__(self, root: str = "data/mnist", split: str = "train", size: int = 32, n_samples: int = 25_000, **kw):
        super().__init__("stacked_mnist", size, n_samples, **kw)
        self.root, self.split = root, split

    def digits(self):
        from gan_lab.data.mnist import load_mnist

        x, y = load_mnist(self.root, self.split)
        return resize_images(x, self.size).clamp(0, 1) * 2 - 1, y
