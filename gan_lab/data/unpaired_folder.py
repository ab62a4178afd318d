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
by `crop`, resized with the named `resize` filter and converted to `channels`, once, at load. Random jitter
as in the official CycleGAN code (`--preprocess resize_and_crop`, `--load_size 286 --crop_size 256`, flips
unless `--no_flip`): the training images are stored as uint8 at `load_size` x `load_size` and every training
batch takes a random `size` x `size` crop of each image and mirrors it left-right with probability 1/2
(`flip`). The offsets and flips are drawn with the batch order from (seed, epoch, domain), so a resumed run
sees the jitter the uninterrupted run would have seen. The metrics' reference images, the held-out split and
the sample panels are resized straight to `size` (as the official test phase: load_size = crop_size, no
flip). testA/ and testB/ are the held-out split; without them `val_fraction` of each training folder is held
out.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from gan_lab.data.base import InMemoryDataModule, ResumesAtPosition, batch_loader, split_train_val
from gan_lab.errors import ConfigError, check_range


class UnpairedBatches(ResumesAtPosition):
    """Training batches of two domains: each epoch draws an independent permutation of A and of B from
    (seed, epoch, domain), the shorter domain continuing with further permutations, so an epoch covers the
    larger domain once. Like `EpochBatches`, the order is a pure function of the seed and the position (a
    resumed run continues with the batches the uninterrupted run would have seen) and with DDP each rank
    takes its own slice of each block of `world_size` batches.

    Jitter (`crop` < the images' size, or `flip`): every image of a batch is cut to a random `crop` x `crop`
    window and mirrored left-right with probability 1/2; the offsets and flips come from the same generator
    as the order, after it, so they too are a pure function of the seed and the position. uint8 images are
    converted to [-1, 1] floats per batch."""

    def __init__(
        self, a, b, batch_size: int, seed: int, position=None, rank: int = 0, world_size: int = 1,
        crop: int | None = None, flip: bool = False,
    ):  # fmt: skip
        self.a, self.b, self.batch_size, self.seed = a, b, batch_size, seed
        self.position, self.rank, self.world_size = position, rank, world_size
        self.crop, self.flip = crop, flip  # crop None: the images' own size

    def __len__(self) -> int:
        return max(len(self.a), len(self.b)) // (self.batch_size * self.world_size)

    def _draw(self, x: torch.Tensor, epoch: int, domain: int, length: int):
        """The epoch's order of one domain and, with jitter, each position's (top, left) offset and flip."""
        gen = torch.Generator().manual_seed(self.seed + 7919 * epoch + 104729 * domain)
        perms = [torch.randperm(len(x), generator=gen) for _ in range(-(-length // len(x)))]
        order = torch.cat(perms)[:length].to(x.device)
        if (self.crop or x.shape[-1]) == x.shape[-1] and not self.flip:
            return order, None, None
        offsets = torch.randint(0, x.shape[-1] - (self.crop or x.shape[-1]) + 1, (length, 2), generator=gen)
        flips = torch.rand(length, generator=gen) < 0.5 if self.flip else torch.zeros(length, dtype=torch.bool)
        return order, offsets.to(x.device), flips.to(x.device)

    def _batch(self, x: torch.Tensor, order, offsets, flips, lo: int) -> torch.Tensor:
        sl = slice(lo, lo + self.batch_size)
        out = x[order[sl]]
        if offsets is not None:  # one gather: rows top.., columns left.. (right to left when flipped)
            crop = self.crop or x.shape[-1]
            step = torch.arange(crop, device=x.device)
            rows = offsets[sl, :1] + step
            cols = offsets[sl, 1:] + torch.where(flips[sl, None], crop - 1 - step, step)
            n = torch.arange(len(rows), device=x.device)[:, None, None]
            out = out.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
        return out.float() / 127.5 - 1 if out.dtype == torch.uint8 else out

    def __iter__(self):
        epoch, start = self.position() if self.position else (0, 0)
        block = self.batch_size * self.world_size
        length = len(self) * block
        draw_a = self._draw(self.a, epoch, 0, length)
        draw_b = self._draw(self.b, epoch, 1, length)
        for k in range(start, len(self)):
            lo = k * block + self.rank * self.batch_size
            yield self._batch(self.a, *draw_a, lo), self._batch(self.b, *draw_b, lo)


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
        self.flip = False  # jitter: subclasses that store `jitter_source` set these
        self.jitter_source: tuple[torch.Tensor, torch.Tensor] | None = None  # (A, B) training images to crop from

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
        crop = None
        if self.jitter_source is not None:  # crops of the larger stored images, on the batches' device
            crop = a.shape[-1]
            device = a.device
            if self.jitter_source[0].device != device:  # one copy, kept for the whole run (on_device)
                self.jitter_source = tuple(t.to(device) for t in self.jitter_source)
            a, b = self.jitter_source
        if max(len(a), len(b)) < self.batch_size * world:
            raise ConfigError(
                f"data.batch_size={self.batch_size} x {world} processes is larger than both domains' training "
                f"splits ({len(a)}, {len(b)} images)"
            )
        batches = UnpairedBatches(
            a, b, self.batch_size, self._order_seed, rank=rank, world_size=world, crop=crop, flip=self.flip
        )
        if trainer is not None:  # resume mid-epoch where the checkpoint left off (global_step counts batches)
            batches.position = lambda: (
                trainer.current_epoch,
                max(0, trainer.global_step - trainer.current_epoch * len(batches)),
            )
        return batches

    def val_dataloader(self):  # the domains differ in length: domain B's held-out images
        self.setup()
        return batch_loader(self._tensors("val")[:1], self.batch_size, shuffle=False, drop_last=False)


def _load_domain(folder: Path, owner: str, opts: dict, on_corrupt: str, sizes: tuple[int, ...]) -> list:
    """N x C x s x s uint8 of every image under `folder` for each s in `sizes`: each image decoded once by
    `gan_lab.data.images`, made square, then resized to each size."""
    from gan_lab.data import images

    files = images.list_images(folder, f"{owner}: folder")
    out = [[] for _ in sizes]
    for path in files:
        try:
            resized = images.load_image_sizes(path, sizes, **opts)
        except images.ImageError as e:
            if on_corrupt == "error":
                raise ConfigError(f"{owner}: cannot read image ({e}); set on_corrupt=skip to skip it") from None
            warnings.warn(f"{owner}: cannot read image ({e}); skipped", stacklevel=2)
            continue
        for a, acc in zip(resized, out):
            acc.append(a)
    if not out[0]:
        raise ConfigError(f"{owner}: none of the {len(files)} images in {str(folder)!r} could be read")
    return [torch.from_numpy(np.stack(x)).permute(0, 3, 1, 2).contiguous() for x in out]


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 127.5 - 1).contiguous()


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
        load_size: int | None = None,
        flip: bool = True,
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
        if load_size is None:  # the official 286 for 256, in proportion for other sizes
            load_size = round(size * 286 / 256)
        if isinstance(load_size, bool) or not isinstance(load_size, int) or not size <= load_size <= 4096:
            raise ConfigError(
                f"{owner}: load_size={load_size!r} is not allowed with size={size}; allowed an integer in "
                f"[{size}, 4096] (size: no random crop) or null (size x 286/256)"
            )
        if not isinstance(flip, bool):
            raise ConfigError(f"{owner}: flip={flip!r} must be a boolean; allowed true, false")
        self.size, self.channels, self.on_corrupt = int(size), int(channels), on_corrupt
        self.load_size, self.flip = load_size, flip
        self.opts = {"channels": self.channels, "crop": crop, "resize_filter": resize, "background": background}
        self.protocol = {"size": self.size, "channels": self.channels, "crop": crop, "resize": resize}
        self.shape = self.condition_shape = (self.channels, self.size, self.size)

    def load_domains(self):
        owner = "data.unpaired_folder"
        jitter = self.load_size > self.size or self.flip
        sizes = (self.size, self.load_size) if jitter else (self.size,)
        train = [_load_domain(self.root / f"train{d}", owner, self.opts, self.on_corrupt, sizes) for d in "AB"]
        has_test = [(self.root / f"test{d}").is_dir() for d in "AB"]
        if all(has_test):
            test = [_load_domain(self.root / f"test{d}", owner, self.opts, self.on_corrupt, sizes[:1]) for d in "AB"]
            val = tuple(_to_float(x[0]) for x in test)
        elif any(has_test):
            raise ConfigError(
                f"{owner}: root={str(self.root)!r} has test{'AB'[has_test.index(True)]}/ but no "
                f"test{'AB'[has_test.index(False)]}/; give both held-out folders or neither"
            )
        else:  # the held-out part of each domain, the same images at both sizes
            parts = [split_train_val(x, self.val_fraction, self.split_seed + i) for i, x in enumerate(train)]
            train, val = [p[0] for p in parts], tuple(_to_float(p[1][0]) for p in parts)
        self.jitter_source = (train[0][1], train[1][1]) if jitter else None
        return (_to_float(train[0][0]), _to_float(train[1][0])), val
