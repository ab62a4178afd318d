"""Fault injection for reliability tests, e.g. `+callbacks.kill._target_=gan_lab.callbacks.faults.KillAtStep
+callbacks.kill.step=170` sends SIGKILL to the training process after that many batches."""

from __future__ import annotations

import os
import signal

import pytorch_lightning as pl


class KillAtStep(pl.Callback):
    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class InterruptAtStep(pl.Callback):
    """Ctrl+C after `step` batches (KeyboardInterrupt: Lightning shuts down and exits with status 1)."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


class NaNAtStep(pl.Callback):
    """Sets every generator weight to NaN after `step` batches (a divergence, for the divergence tests)."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            import torch

            with torch.no_grad():
                for p in pl_module.generator.parameters():
                    p.fill_(float("nan"))


class SignalAtStep(pl.Callback):
    """Sends `signal` (a name: SIGTERM, SIGINT, SIGUSR1) to the training process after `step` batches, as a
    scheduler would before pre-emption; `at_train_end=true`: in the end-of-run work after the last batch
    instead (with step = trainer.max_steps)."""

    def __init__(self, step: int, signal: str = "SIGTERM", at_train_end: bool = False):
        self.step, self.signal, self.at_train_end = int(step), str(signal), bool(at_train_end)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step and not self.at_train_end:
            os.kill(os.getpid(), getattr(signal, self.signal))

    def on_train_end(self, trainer, pl_module):
        if trainer.global_step == self.step and self.at_train_end:
            os.kill(os.getpid(), getattr(signal, self.signal))
