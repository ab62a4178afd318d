"""Random streams of data-parallel runs (`trainer=ddp`): one per rank, saved per rank in checkpoints.

Lightning starts every DDP process from the run's seed. With identical streams every rank would draw
the same latent codes, dropout masks and instance noise: the fakes, and so the generator's gradient,
would be the same on every rank, and more processes would not enlarge the generator's batch. At setup
each rank re-seeds from (seed, rank). A checkpoint keeps the streams of all ranks and the world size;
a run resumed with the same number of processes gives each rank its own streams back (just before the
first batch, after the task restored rank 0's), so it continues as the uninterrupted run would have.
"""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch

from gan_lab.errors import ConfigError


def seed_rank(seed: int, rank: int) -> int:
    """Seed the python, numpy and torch (all devices) streams of one rank from (seed, rank)."""
    s = int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0])
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return s


class RankRandomStreams(pl.Callback):
    def __init__(self):
        self._pending = None

    def setup(self, trainer, pl_module, stage):
        if stage == "fit" and trainer.world_size > 1:  # after Lightning seeded every process with the run's seed
            seed_rank(torch.initial_seed(), trainer.global_rank)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):  # runs on every rank (Trainer.save_checkpoint)
        checkpoint["world_size"] = trainer.world_size
        if trainer.world_size > 1:
            from gan_lab.rng import rng_state

            states = [None] * trainer.world_size
            torch.distributed.all_gather_object(states, rng_state())
            checkpoint["rng_state_per_rank"] = states

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        states = checkpoint.get("rng_state_per_rank")
        self._pending = states[trainer.global_rank] if states and len(states) == trainer.world_size else None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._pending is not None:
            from gan_lab.rng import set_rng_state

            set_rng_state(self._pending)
            self._pending = None


def check_single_run(world_size: int) -> None:
    """Lightning starts ranks 1.. by re-running the command line with the run's `hydra.run.dir`: inside a
    `-m` sweep each of them would run the whole sweep again."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if world_size > 1 and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            f"trainer=ddp with {world_size} processes cannot run as a job of a -m sweep (Lightning restarts "
            "the command line once per process); allowed: one process per job (trainer.devices=1), or "
            "run each configuration as its own command"
        )


def check_resume_world_size(ckpt_path: str | None, world_size: int) -> None:
    """A checkpoint resumes only with the number of processes that wrote it: the position in the epoch
    and each rank's shard of the data depend on it."""
    if not ckpt_path:
        return
    from gan_lab.checkpoints import load

    saved = load(ckpt_path, mmap=True).get("world_size", 1)
    if saved != world_size:
        raise ConfigError(
            f"ckpt_path={ckpt_path!r} was written by {saved} process(es) and this run has {world_size} "
            f"(trainer.devices x trainer.num_nodes); allowed: resume with {saved} process(es)"
        )
