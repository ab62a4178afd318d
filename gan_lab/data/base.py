"""In-memory data modules: whole batches are sliced from tensors, no per-item collate.

For datasets that fit in memory (all the embedded ones) this removes the DataLoader's per-sample
overhead, which dominates the step time of small models. With `on_device=true` the splits are copied
once to the trainer's device and batches are sliced there (no host-to-device copy per batch).
"""

from __future__ import annotations

import copy

import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from gan_lab.errors import ConfigError, check_range


class TensorBatches(Dataset):
    """Dataset indexed by a list of indices (from a BatchSampler), returning whole batches."""

    def __init__(self, *tensors: torch.Tensor):
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError("all tensors must have the same length")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx)
        out = tuple(t[idx] for t in self.tensors)
        return out if len(out) > 1 else out[0]


def batch_loader(tensors, batch_size: int, shuffle: bool, drop_last: bool, seed: int | None = None):
    ds = TensorBatches(*tensors)
    gen = None
    if shuffle:
        gen = torch.Generator()
        gen.manual_seed(0 if seed is None else seed)
    sampler = RandomSampler(ds, generator=gen) if shuffle else SequentialSampler(ds)
    return DataLoader(ds, sampler=BatchSampler(sampler, batch_size, drop_last=drop_last), batch_size=None)


class ResumesAtPosition:
    """Lightning's interface of a resumable training loader (`state_dict` / `load_state_dict`). A loader of this
    kind reads its position from the trainer's own restored counters (`position()` -> epoch, batches done in
    it), so a run resumed mid-epoch continues with the batches the uninterrupted run would have seen; the
    state it saves is that position, for the record, and loading has nothing else to restore. Without the
    interface Lightning warns at every mid-epoch resume that the results may be unreliable."""

    position = None  # callable -> (epoch, batches already done in that epoch); None: from the start

    def state_dict(self) -> dict:
        epoch, done = self.position() if self.position else (0, 0)
        return {"epoch": int(epoch), "batches_done": int(done)}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore: the position is the trainer's, restored from the same checkpoint."""


class EpochBatches(ResumesAtPosition):
    """Training batches: epoch e is a permutation drawn from (seed, e), cut into whole batches.

    The order is a pure function of the seed and the position, and the position is the trainer's
    (batches done, epoch), so a run resumed from a mid-epoch checkpoint continues with exactly the
    batches the uninterrupted run would have seen. With several processes (DDP) every rank draws the
    same permutation and takes its own `batch_size` slice of each block of `world_size` batches: the
    ranks see disjoint data, the same number of batches each (the remainder of an epoch is dropped),
    and together one epoch of the data. Tensors on an accelerator are indexed there (the permutation
    is drawn on the CPU, so the order does not depend on the device, and moved once per epoch).
    """

    def __init__(self, tensors, batch_size: int, seed: int, position=None, rank: int = 0, world_size: int = 1):
        self.tensors, self.batch_size, self.seed = tensors, batch_size, seed
        self.position = position  # callable -> (epoch, batches already done in that epoch)
        self.rank, self.world_size = rank, world_size
        self.n = len(tensors[0])

    def __len__(self) -> int:
        return self.n // (self.batch_size * self.world_size)

    def reseeded(self, seed: int) -> EpochBatches:
        """The same batches' kind, data and position with another seed's order (a seed-parallel member's)."""
        other = copy.copy(self)
        other.seed = seed
        return other

    def __iter__(self):
        epoch, start = self.position() if self.position else (0, 0)
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + 7919 * epoch))
        perm = perm.to(self.tensors[0].device)
        block = self.batch_size * self.world_size
        for b in range(start, len(self)):
            idx = perm[b * block + self.rank * self.batch_size : b * block + (self.rank + 1) * self.batch_size]
            out = tuple(t[idx] for t in self.tensors)
            yield out if len(out) > 1 else out[0]


class InMemoryDataModule(pl.LightningDataModule):
    """Base class: subclasses implement `load()` returning (train_tensors, val_tensors) tuples.

    A batch is a tensor (unconditional data) or a tuple of tensors (x, y) / (condition, target).
    `shape` is the shape of one sample of the data a generator produces; `is_image` says whether it
    is an image in [-1, 1]. `on_device`: keep a copy of both splits on the trainer's device (made once,
    at the first loader) and slice batches there; `split_tensors` still returns the host tensors.
    """

    is_image = True
    # Which tensor of a batch holds the data a generator produces, what metrics call "the real images": 0 for
    # x and (x, y) batches; modules whose batches are (condition, target) set the target's index.
    real_index = 0

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        name: str = "",
        on_device: bool = False,
    ):
        super().__init__()
        owner = f"data.{name or type(self).__name__}"
        check_range(owner, "batch_size", batch_size, 1)
        check_range(owner, "val_fraction", val_fraction, 0.0, 1.0, high_open=True)
        if not isinstance(on_device, bool):
            raise ConfigError(f"{owner}: on_device={on_device!r} must be a boolean; allowed true, false")
        self.batch_size = int(batch_size)
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.name = name
        self.on_device = on_device
        self._train = None
        self._val = None
        self._order_seed = None  # seed of the training order: the global seed when the data was first set up
        self._resident: dict[str, tuple[torch.Tensor, ...]] = {}  # split (or key) -> tensors on the trainer's device

    # subclasses -----------------------------------------------------------------------------------
    def load(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        raise NotImplementedError

    # lightning ------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._train is None:
            # Captured here (gan_lab.train seeds, then sets up the data) rather than when the loader is made:
            # under DDP each rank re-seeds its own random streams before that, and all must share one order.
            self._order_seed = torch.initial_seed() % (2**31)
            self._train, self._val = self.load()
            if len(self._train[0]) < self.batch_size:
                raise ConfigError(
                    f"data.batch_size={self.batch_size} is larger than the training split "
                    f"({len(self._train[0])} samples); allowed [1, {len(self._train[0])}]"
                )

    def _tensors(self, split: str) -> tuple[torch.Tensor, ...]:
        """A split's tensors where batches are sliced: on the trainer's device with `on_device`, else host."""
        return self._where_sliced(split, self.split_tensors(split))

    def _where_sliced(self, key: str, host: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """`host` tensors on the trainer's device with `on_device` (one copy per key, kept for the whole run),
        else `host` itself."""
        device = self.trainer.strategy.root_device if self.on_device and self.trainer is not None else None
        if device is None or device.type == "cpu":
            return host
        resident = self._resident.get(key)
        if resident is None or resident[0].device != device:
            resident = self._resident[key] = tuple(t.to(device) for t in host)
        return resident

    def train_dataloader(self):
        self.setup()
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        if len(self._train[0]) < self.batch_size * world:
            raise ConfigError(
                f"data.batch_size={self.batch_size} x {world} processes is larger than the training split "
                f"({len(self._train[0])} samples); allowed batch_size in [1, {len(self._train[0]) // world}]"
            )
        batches = self.train_batches(rank, world)
        if trainer is not None:  # resume mid-epoch where the checkpoint left off (global_step counts batches)
            batches.position = lambda: (
                trainer.current_epoch,
                max(0, trainer.global_step - trainer.current_epoch * len(batches)),
            )
        return batches

    def train_batches(self, rank: int, world: int) -> EpochBatches:
        """The training batches of one process (subclasses may draw them otherwise, keeping EpochBatches' order
        contract: a pure function of the seed and the position)."""
        return EpochBatches(self._tensors("train"), self.batch_size, self._order_seed, rank=rank, world_size=world)

    def val_dataloader(self):
        self.setup()
        return batch_loader(self._tensors("val"), self.batch_size, shuffle=False, drop_last=False)

    # helpers for metrics and samples -------------------------------------------------------------
    def split_tensors(self, split: str = "train") -> tuple[torch.Tensor, ...]:
        self.setup()
        if split not in ("train", "val"):
            raise ConfigError(f"split={split!r} is not known; allowed train, val")
        return self._train if split == "train" else self._val

    def real_images(self, split: str = "train") -> torch.Tensor:
        """The data of `split` a generator's samples are compared with: tensor `real_index` of the split (the
        target of paired data, never its condition)."""
        return self.split_tensors(split)[self.real_index]


def split_train_val(tensors, val_fraction: float, seed: int):
    """Deterministic shuffled split of aligned tensors into (train, val) tuples."""
    n = len(tensors[0])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    return tuple(t[train_idx] for t in tensors), tuple(t[val_idx] for t in tensors)


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of N x C x H x W float images to size x size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
