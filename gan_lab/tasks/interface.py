"""The task interface: everything callbacks, evaluation, sampling and the CLIs may ask of a task.

A task is a LightningModule (the adversarial loop in `tasks/adversarial.py`, or the autoencoder) that also
provides the members below. Nothing outside a task probes it with `hasattr` or reaches into its trainer:
the data module is passed in explicitly, so a task can be used without a Trainer (`gan-lab evaluate`,
`gan-lab sample`). A new task (class-conditional GAN, CycleGAN, seed-parallel members) implements this
and every callback works with it.

`data_kind` says what the samples are:
- "points": N x 2 samples of a 2-D mixture (pictures are scatter plots over the modes);
- "image": N x C x H x W images in [-1, 1] (grids; image metrics);
- "paired": image-conditioned outputs (pix2pix, SR, inpainting, CycleGAN): pictures are input | output |
  target panels, held-out metrics are paired (PSNR/SSIM/...).

`num_classes` is the number of classes of a class-conditional task (0: unconditional); such a task takes
`labels` (a LongTensor of class indices) in `generate_samples`.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import torch

DataKind = Literal["points", "image", "paired"]
Panel = torch.Tensor | tuple[torch.Tensor, int]  # samples, or (images, images per row) for panels


@runtime_checkable
class Task(Protocol):
    data_kind: DataKind
    num_classes: int
    last_logged: dict[str, float]  # the last logged training values ("train/g_loss", "val/psnr", ...)
    optimizer_names: tuple[str, ...]  # names of `configure_optimizers()`'s optimizers, in order: ("g", "d")

    def generate_samples(
        self, n: int, batch_size: int = 500, labels: torch.Tensor | None = None, seed: int = 12345
    ) -> torch.Tensor:
        """n samples in data space on the CPU, from the sampling generator (EMA when on) in eval mode under
        no_grad, drawn from their own random stream (evaluating never changes the training trajectory)."""
        ...

    def sample_panels(self, datamodule=None) -> dict[str, Panel]:
        """Named pictures for the sample callback: tensors of samples or (images, per row) panels."""
        ...

    def held_out_metrics(self, datamodule) -> dict[str, float]:
        """Metrics on the held-out split that need the task itself (reconstruction, paired PSNR/SSIM);
        {} when the task has none. Logged as `val/<name>`."""
        ...
