"""MNIST from the official IDX files (`<split>-images-idx3-ubyte[.gz]`, `<split>-labels-idx1-ubyte[.gz]`)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from gan_lab.data.base import InMemoryDataModule, resize_images, split_train_val
from gan_lab.errors import ConfigError, check_range

_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dim, images: 3 dims


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a uint8 array; clear errors for bad files."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ConfigError(f"cannot read IDX file {path}: {e}") from None
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
    if magic not in _MAGIC:
        raise ConfigError(
            f"{path} is not an MNIST IDX file: magic number {magic}; allowed 2049 (labels), 2051 (images)"
        )
    ndim = _MAGIC[magic]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise ConfigError(f"{path} is truncated or corrupt: {len(data) - offset} bytes of data, header says {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for p in (root / f"{stem}.gz", root / stem):
        if p.exists():
            return p
    raise ConfigError(
        f"MNIST file not found: expected {root / (stem + '.gz')} (set data.root to the folder holding it)"
    )


def load_mnist(root: str | Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(N x 1 x 28 x 28 float in [0, 1], N int64 labels) for split 'train' or 't10k'."""
    if split not in ("train", "t10k"):
        raise ConfigError(f"data.split={split!r} is not an MNIST split; allowed train, t10k")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConfigError(
            f"data.root={str(root)!r} is not a directory; expected the folder holding {split}-images-idx3-ubyte.gz"
        )
    other = {"train": "t10k", "t10k": "train"}[split]
    stem, alt = f"{split}-images-idx3-ubyte", f"{other}-images-idx3-ubyte"
    present = {n for n in (stem, alt) if (root / f"{n}.gz").exists() or (root / n).exists()}
    if present == {alt}:
        raise ConfigError(
            f"data.root={str(root)!r} holds MNIST's {other} split only ({alt}.gz, no {stem}.gz); allowed "
            f"data.split={other} with this folder, or a data.root holding {stem}.gz"
        )
    images = read_idx(_find(root, stem))
    labels = read_idx(_find(root, f"{split}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ConfigError(f"MNIST files in {root} do not match: images {images.shape}, labels {labels.shape}")
    x = torch.from_numpy(images.copy()).float().unsqueeze(1) / 255.0
    return x, torch.from_numpy(labels.astype(np.int64))


class MNISTDataModule(InMemoryDataModule):
    """Batches are (images in [-1, 1], labels). `limit` keeps the first N images (0 = all)."""

    num_classes = 10  # labels of the batches (class-conditional models)

    def __init__(
        self, root: str = "data/mnist", split: str = "train", size: int = 32, channels: int = 1, limit: int = 0, **kw
    ):
        super().__init__(name="mnist", **kw)
        check_range("data.mnist", "size", size, 8, 256)
        check_range("data.mnist", "channels", channels, 1, 1)
        check_range("data.mnist", "limit", limit, 0)
        self.root, self.split, self.size, self.limit = root, split, int(size), int(limit)
        self.shape = (1, self.size, self.size)

    def load(self):
        x, y = load_mnist(self.root, self.split)
        if self.limit:
            x, y = x[: self.limit], y[: self.limit]
        x = resize_images(x, self.size).clamp(0, 1) * 2 - 1
        return split_train_val((x.contiguous(), y), self.val_fraction, self.split_seed)
