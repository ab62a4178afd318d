"""The task interface: everything callbacks, evaluation, sampling and the CLIs may ask of a task.

A task is a LightningModule (the adversarial loop in `tasks/adversarial.py`, or the autoencoder) that also
provides the members of `Task`. Nothing outside a task probes it with `hasattr` or reaches into its
trainer, and a task never reads `self.trainer.datamodule`: the data module is passed in explicitly, so a
task works without a Trainer (`gan-lab evaluate`, `gan-lab sample`). A new task (class-conditional GAN,
CycleGAN, seed-parallel members) implements this, usually by inheriting `TaskDefaults`, and every
callback works with it. `tests/test_interface.py` checks every task class named in the configs.

`data_kind` says what the samples are:
- "points": N x 2 samples of a 2-D mixture (pictures are scatter plots over the modes);
- "image": N x C x H x W images in [-1, 1] (grids; image metrics);
- "paired": image-conditioned outputs (pix2pix, SR, inpainting, CycleGAN): pictures are input | output |
  target panels, held-out metrics are paired (PSNR/SSIM/...); samples are outputs for held-out inputs.

`num_classes` is the number of classes of a class-conditional task (0: unconditional); such a task takes
`labels` (a LongTensor of class indices) in `generate_samples` and draws them with `sample_labels`.

Who calls what: the sample callback calls `sample_panels` (and, for "points", `generate_samples` for a
scatter); the evaluation callback `sample_labels`, `generate_samples`, `label_protocol`; the held-out
callback `held_out_metrics` (logged as `val/<name>` and kept in `last_logged`); `gan-lab evaluate` and
`gan-lab sample` the same methods on a task rebuilt from a checkpoint; the training monitor reads
`last_logged` and matches optimizers to `optimizer_names`.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import torch

DataKind = Literal["points", "image", "paired"]
Panel = torch.Tensor | tuple[torch.Tensor, int] | tuple[torch.Tensor, torch.Tensor]
"""Samples; (images, images per row) for panels; or (2-D points, their class labels) for a scatter."""


@runtime_checkable
class Task(Protocol):
    data_kind: DataKind
    num_classes: int
    last_logged: dict[str, float]  # the last logged training values ("train/g_loss", "val/psnr", ...)
    optimizer_names: tuple[str, ...]  # names of `configure_optimizers()`'s optimizers, in order: ("g", "d")

    def generate_samples(
        self, n: int, batch_size: int = 500, labels: torch.Tensor | None = None, seed: int = 12345, datamodule=None
    ) -> torch.Tensor:
        """n samples in data space on the CPU, from the sampling generator (EMA when on) in eval mode under
        no_grad, drawn from their own random stream (evaluating never changes the training trajectory).
        "paired" tasks transform the first n held-out inputs of `datamodule`."""
        ...

    def sample_labels(self, n: int, seed: int = 12345) -> torch.Tensor | None:
        """n class labels drawn as the metrics draw them (the data's class frequencies); None: no classes."""
        ...

    def label_protocol(self) -> dict:
        """How `sample_labels` draws labels, recorded with the metrics ({}: no classes)."""
        ...

    def sample_panels(self, datamodule=None) -> dict[str, Panel]:
        """Named pictures for the sample callback: tensors of samples or (images, per row) panels."""
        ...

    def held_out_metrics(self, datamodule) -> dict[str, float]:
        """Metrics on the held-out split that need the task itself (reconstruction, paired PSNR/SSIM);
        {} when the task has none. Logged as `val/<name>`."""
        ...


class TaskDefaults:
    """The interface's defaults for a task without classes and without held-out metrics."""

    num_classes: int = 0
    optimizer_names: tuple[str, ...] = ("g", "d")

    def sample_labels(self, n: int, seed: int = 12345) -> torch.Tensor | None:
        return None

    def label_protocol(self) -> dict:
        return {}

    def held_out_metrics(self, datamodule) -> dict[str, float]:
        return {}

    @staticmethod
    def refuse_labels(labels) -> None:
        """`labels=` given to a task without classes: one line."""
        if labels is not None:
            from gan_lab.errors import ConfigError

            raise ConfigError("labels= needs a class-conditional model (model.conditional); this one has no classes")
