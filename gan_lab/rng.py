"""Random streams: save/restore every stream a run uses (bit-identical resume) and private seeded streams
for sampling and evaluation (so evaluating never changes the training trajectory)."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    """Every random stream a run uses, as plain containers (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class own_rng:  # noqa: N801 - used as a context manager like torch.random.fork_rng
    """Run a block on a private, seeded random stream and leave the global streams untouched."""

    def __init__(self, seed: int, device=None):
        devices = [device] if device is not None and torch.device(device).type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)
        self.seed = seed

    def __enter__(self):
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)
