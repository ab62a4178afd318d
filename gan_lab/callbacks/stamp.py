"""Stamp every checkpoint with the gan_lab version and checkpoint format that wrote it."""

from __future__ import annotations

import pytorch_lightning as pl

import gan_lab


class CheckpointStamp(pl.Callback):
    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["gan_lab_version"] = gan_lab.__version__
        checkpoint["gan_lab_format"] = gan_lab.CHECKPOINT_FORMAT
