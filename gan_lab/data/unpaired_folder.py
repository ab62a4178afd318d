"""Unpaired image-to-image data (CycleGAN): two domains A and B with no correspondence between their images.

    data=unpaired_folder data.root=~/horse2zebra        # trainA/ trainB/ [testA/ testB/], any image files

A training batch is (a, b): `batch_size` images of A and `batch_size` images of B drawn independently
(each domain in its own random order; an epoch is max(|A|, |B|) // batch_size batches, the smaller domain
cycling through fresh permutations, as the official loader's max-size epochs). `shape` is a B image,
`condition_shape` an A image; `domains` names the two. `domain_tensors(split)` returns (A, B) and, for
labelled domains, (A, B, labels A, labels B). `split_tensors(split)` holds the target domain first,
(B, A[, labels B, labels A]): generic consumers (the periodic image metrics, `gan-lab evaluate`) compare a
translator's samples, G_AB's, with its first tensor, which must be domain B.

Images are decoded with `gan_lab.data.images` (any size and mode: 16-bit, palette, alpha...), made square
by `crop`, resized to `size` x `size` with the named `resize` filter and converted to `channels`, once, at
load: batches are fixed (no random jitter). testA/ and testB/ are the held-out split; without them
`val_fraction` of each training folder is held out.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from gan_lab.data.base import InMemoryDataModule, batch_loader, split_train_val
from gan_lab.errors import ConfigError, check_range


class UnpairedBatches:
    """Training batches of two domains: each epoch draws an independent permutation of A and of B from
    (seed, epoch, domain), the shorter domain continuing with further permutations, so an epoch covers the
    larger domain once. Like `EpochBatches`, the order is a pure function of the seed and the position (a
    resumed run continues with the batches the uninterrupted run would have seen) and with DDP each rank
    takes its own slice of each block of `world_size` batches."""

    def __init__(self, a, b, batch_size: int, seed: int, position=None, rank: int = 0, world_size: int = 1):
        self.a, self.b, self.batch_size, self.seed = a, b, batch_size, seed
        self.position, self.rank, self.world_size = position, rank, world_size

    def __len__(self) -> int:
        return max(len(self.a), len(self.b)) // (self.batch_size * self.world_size)

    def _order(self, n: int, epoch: int, domain: int, length: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed + 7919 * epoch + 104729 * domain)
        perms = [torch.randperm(n, generator=gen) for _ in range(-(-length // n))]
        return torch.cat(perms)[:length]

    def __iter__(self):
        epoch, start = self.position() if self.position else (0, 0)
        block = self.batch_size * self.world_size
        length = len(self) * block
        order_a = self._order(len(self.a), epoch, 0, length).to(self.a.device)
        order_b = self._order(len(self.b), epoch, 1, length).to(self.b.device)
        for k in range(start, len(self)):
            lo = k * block + self.rank * self.batch_size
            yield self.a[order_a[lo : lo + self.batch_size]], self.b[order_b[lo : lo + self.batch_size]]


def _swap(tensors: tuple) -> tuple:
    """(A, B[, yA, yB]) <-> (B, A[, yB, yA])."""
    return (tensors[1], tensors[0], *tensors[2:][::-1])


class UnpairedDataModule(InMemoryDataModule):
    """Base of the unpaired data modules: `load_domains()` returns ((A, B[, yA, yB]) train, (...) val)."""

    def __init__(self, domains=("A", "B"), **kw):
        super().__init__(**kw)
        owner = f"data.{self.name}"
        if len(domains) != 2 or not all(isinstance(d, str) and d for d in domains):
            raise ConfigError(f"{owner}: domains={list(domains)!r} must name two domains, e.g. [A, B]")
        self.domains = tuple(domains)

    def load_domains(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        raise NotImplementedError

    def load(self):
        return tuple(_swap(t) for t in self.load_domains())

    def domain_tensors(self, split: str = "train") -> tuple[torch.Tensor, ...]:
        """(A, B) or (A, B, labels A, labels B) of a split."""
        return _swap(self.split_tensors(split))

    def setup(self, stage: str | None = None) -> None:
        if self._train is not None:
            return
        super().setup(stage)
        for split, tensors in (("train", self._train), ("val", self._val)):
            for name, x in zip(self.domains, _swap(tensors)[:2]):
                if len(x) == 0:
                    hint = "" if split == "train" else " (raise data.val_fraction or add held-out images)"
                    raise ConfigError(f"data.{self.name}: domain {name} has no {split} images{hint}; both need some")
        n_a = len(self._train[1])  # the base class checked domain B (first)
        if n_a < self.batch_size:
            raise ConfigError(
                f"data.batch_size={self.batch_size} is larger than domain {self.domains[0]}'s training split "
                f"({n_a} images); allowed [1, {min(n_a, len(self._train[0]))}]"
            )

    def train_dataloader(self):
        self.setup()
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        b, a = self._tensors("train")[:2]
        if max(len(a), len(b)) < self.batch_size * world:
            raise ConfigError(
                f"data.batch_size={self.batch_size} x {world} processes is larger than both domains' training "
                f"splits ({len(a)}, {len(b)} images)"
            )
        batches = UnpairedBatches(a, b, self.batch_size, self._order_seed, rank=rank, world_size=world)
        if trainer is not None:  # resume mid-epoch where the checkpoint left off (global_step counts batches)
            batches.position = lambda: (
                trainer.current_epoch,
                max(0, trainer.global_step - trainer.current_epoch * len(batches)),
            )
        return batches

    def val_dataloader(self):  # the domains differ in length: domain B's held-out images
        self.setup()
        return batch_loader(self._tensors("val")[:1], self.batch_size, shuffle=False, drop_last=False)


def _load_domain(folder: Path, owner: str, opts: dict, on_corrupt: str) -> torch.Tensor:
    """N x C x size x size in [-1, 1] of every image under `folder` (decoded by `gan_lab.data.images`)."""
    from gan_lab.data import images

    files = images.list_images(folder, f"{owner}: folder")
    out = []
    for path in files:
        try:
            out.append(images.load_image(path, **opts))
        except images.ImageError as e:
            if on_corrupt == "error":
                raise ConfigError(f"{owner}: cannot read image ({e}); set on_corrupt=skip to skip it") from None
            warnings.warn(f"{owner}: cannot read image ({e}); skipped", stacklevel=2)
    if not out:
        raise ConfigError(f"{owner}: none of the {len(files)} images in {str(folder)!r} could be read")
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()
    return (x / 127.5 - 1).contiguous()


class UnpairedFolderDataModule(UnpairedDataModule):
    """The CycleGAN layout: `root/trainA`, `root/trainB` and optionally `root/testA`, `root/testB`."""

    def __init__(
        self,
        root: str,
        size: int = 256,
        channels: int = 3,
        crop: str = "center",
        resize: str = "bicubic",
        background="white",
        on_corrupt: str = "skip",
        domains=("A", "B"),
        **kw,
    ):
        from gan_lab.data import images

        super().__init__(domains=domains, name="unpaired_folder", **kw)
        owner = "data.unpaired_folder"
        images.check_options(owner, channels, crop, resize, background, size)
        check_range(owner, "size", size, 8, 1024)
        if on_corrupt not in ("skip", "error"):
            raise ConfigError(f"{owner}: on_corrupt={on_corrupt!r} is not known; allowed skip, error")
        self.root = Path(str(root)).expanduser()
        missing = [d for d in ("trainA", "trainB") if not (self.root / d).is_dir()]
        if missing:
            raise ConfigError(
                f"{owner}: root={str(root)!r} has no {' and no '.join(m + '/' for m in missing)} folder; expected "
                "two domains in the CycleGAN layout trainA/ trainB/ (and optionally testA/ testB/)"
            )
        self.size, self.channels, self.on_corrupt = int(size), int(channels), on_corrupt
        self.opts = {"channels": self.channels, "size": self.size, "crop": crop, "resize_filter": resize,
                     "background": background}  # fmt: skip
        self.protocol = {"size": self.size, "channels": self.channels, "crop": crop, "resize": resize}
        self.shape = self.condition_shape = (self.channels, self.size, self.size)

    def load_domains(self):
        owner = "data.unpaired_folder"
        train = tuple(_load_domain(self.root / f"train{d}", owner, self.opts, self.on_corrupt) for d in "AB")
        has_test = [(self.root / f"test{d}").is_dir() for d in "AB"]
        if all(has_test):
            val = tuple(_load_domain(self.root / f"test{d}", owner, self.opts, self.on_corrupt) for d in "AB")
            return train, val
        if any(has_test):
            raise ConfigError(
                f"{owner}: root={str(self.root)!r} has test{'AB'[has_test.index(True)]}/ but no "
                f"test{'AB'[has_test.index(False)]}/; give both held-out folders or neither"
            )
        parts = [split_train_val((x,), self.val_fraction, self.split_seed + i) for i, x in enumerate(train)]
        return (parts[0][0][0], parts[1][0][0]), (parts[0][1][0], parts[1][1][0])
