"""`trick=label_smoothing`: One-sided label smoothing: real targets 0.9, fake targets 0 (Salimans 2016)."""

from __future__ import annotations

import torch

from gan_lab.tricks.base import Trick


class LabelSmoothing(Trick):
    """One-sided: real targets become `real` (0.9), fake targets stay 0 (Salimans 2016)."""

    name, paper = "label_smoothing", "Salimans 2016 (one-sided label smoothing)"
    resources = frozenset({"label_values"})
    needs_targets = True

    def __init__(self, real: float = 0.9):
        self.real = self.check("real", real, 0.0, 1.0)

    def targets(self, real_t, fake_t, step):
        return torch.full_like(real_t, self.real), fake_t
