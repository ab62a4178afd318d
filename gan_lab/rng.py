"""Random streams: save/restore every stream a run uses (bit-identical resume), private seeded streams for
sampling and evaluation (so evaluating never changes the training trajectory), and replays of earlier draws
(a diagnostic pass that sees the same noise as the training pass it mirrors, and takes none from training)."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def replay_rng(state: dict):
    """Run a block from `state` (an earlier `rng_state()`), then put every stream back as it was before it."""
    saved = rng_state()
    set_rng_state(state)
    try:
        yield
    finally:
        set_rng_state(saved)


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
