"""Cheap loss logging shared by the tasks: per-step losses are summed on the device and synced to the
host once per logging interval (no `.item()` per step); a non-finite window means the run diverged."""

from __future__ import annotations

import math

import torch


class GANDiverged(RuntimeError):
    """A loss or a parameter became NaN/Inf; the run stops without writing a checkpoint of that state."""


class LossWindow:
    """Running sums of named scalar tensors since the last flush; `last` keeps the latest means."""

    def __init__(self, last: dict[str, float]):
        self.keys: tuple[str, ...] | None = None
        self.sums: torch.Tensor | None = None
        self.n = 0
        self.last = last

    def add(self, logs: dict[str, torch.Tensor]) -> None:
        """Two tensor ops per step (one stack, one add): no per-value detach/cast. The sums are float32
        (a window starts from a float32 copy; adding lower-precision values promotes them)."""
        keys = tuple(logs)  # the loop builds its dict in the same order every step
        with torch.no_grad():
            vals = torch.stack(list(logs.values()))
            if self.keys != keys:  # a different set of losses starts a new window
                self.flush()
                self.keys, self.sums, self.n = keys, vals.float(), 1
            else:
                self.sums, self.n = self.sums + vals, self.n + 1

    def finite(self) -> bool:
        return self.sums is None or bool(torch.isfinite(self.sums).all())

    def flush(self, step: int | None = None) -> dict[str, float]:
        """Means of the window as `train/<name>` (one host sync), then an empty window."""
        if self.sums is None or self.n == 0:
            return {}
        means = (self.sums / self.n).tolist()
        out = {f"train/{k}": v for k, v in sorted(zip(self.keys, means))}
        self.keys, self.sums, self.n = None, None, 0
        if not all(math.isfinite(v) for v in means):
            raise GANDiverged(f"non-finite loss at step {step}: {out}")
        self.last.update(out)
        return out
