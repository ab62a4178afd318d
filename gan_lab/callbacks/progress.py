"""The training progress bar: Lightning's rich bar, updated on wall time instead of at every batch.

Lightning's `RichProgressBar` reads the progress-bar metrics, updates its task and asks rich to refresh at
the end of every training batch (a visible share of a 2-D MLP step of a few milliseconds), and rich redraws
`refresh_rate` times a second from its own thread. This bar does that work at most once every
`update_every_s` seconds of wall time, and at the last step of the run (so the bar ends at the full count);
what it shows is otherwise the same.
"""

from __future__ import annotations

import time

from pytorch_lightning.callbacks import RichProgressBar

from gan_lab import _lightning_compat as compat
from gan_lab.errors import check_range


class WallClockProgressBar(RichProgressBar):
    """`refresh_rate`: redraws a second (rich's refresh thread); `update_every_s`: at most one update of the
    step count and the metrics per this many seconds of wall time; other arguments as `RichProgressBar`'s."""

    def __init__(self, refresh_rate: int = 4, update_every_s: float = 0.5, **kwargs):
        check_range("callbacks.progress", "refresh_rate", refresh_rate, 0)
        check_range("callbacks.progress", "update_every_s", update_every_s, 0.0)
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self.update_every_s = float(update_every_s)
        self._next_update = 0.0
        self.updates = 0  # how many batch ends updated the bar (tests, and a check that it throttles)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        last = (
            0 < trainer.max_steps <= trainer.global_step
            or batch_idx + 1 >= trainer.num_training_batches  # the end of an epoch
            or trainer.should_stop
        )
        if now < self._next_update and not last:
            return
        self._next_update = now + self.update_every_s
        self.updates += 1
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


compat.epoch_only_train_description(WallClockProgressBar)  # not "Epoch 0/-2" in runs bounded by max_steps
