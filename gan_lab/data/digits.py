"""The scikit-learn digits (1797 8x8 greyscale images, 10 classes), upscaled and scaled to [-1, 1]."""

from __future__ import annotations

import torch

from gan_lab.data.base import InMemoryDataModule, resize_images, split_train_val
from gan_lab.errors import check_range


def load_digits_images(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (N x 1 x size x size float in [-1, 1], N int64 labels)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = resize_images(x, size).clamp(0, 1) * 2 - 1
    return x.contiguous(), torch.tensor(d.target, dtype=torch.int64)


class DigitsDataModule(InMemoryDataModule):
    """Batches are (images, labels); the generator only sees images."""

    num_classes = 10  # labels of the batches (class-conditional models)

    def __init__(self, size: int = 32, channels: int = 1, **kw):
        super().__init__(name="digits", **kw)
        check_range("data.digits", "size", size, 8, 256)
        check_range("data.digits", "channels", channels, 1, 1)
        self.size = int(size)
        self.shape = (1, self.size, self.size)

    def load(self):
        x, y = load_digits_images(self.size)
        return split_train_val((x, y), self.val_fraction, self.split_seed)
