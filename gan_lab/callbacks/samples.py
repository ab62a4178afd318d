"""Sample pictures: an image grid (or a 2-D scatter over the true modes) every N steps and at the end,
saved to `samples/<name>_<step>.png` and sent to the image-capable loggers (W&B, TensorBoard)."""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image

from gan_lab.atomic_io import atomic_write_bytes

log = logging.getLogger("gan_lab")


def image_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """N x C x H x W in [-1, 1] -> H' x W' x 3 uint8 grid (nrow images per row)."""
    n, c, h, w = x.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    img = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if c == 1:
        img = img.repeat(1, 3, 1, 1)
    img = img[:, :3]
    grid = torch.zeros(3, ncol * (h + pad) + pad, nrow * (w + pad) + pad, dtype=torch.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = img[i]
    return grid.permute(1, 2, 0).numpy()


def scatter_image(
    points: torch.Tensor, centers: torch.Tensor | None = None, title: str = "", labels: torch.Tensor | None = None
) -> np.ndarray:
    """2-D generated points (blue; coloured by the class they were generated for when `labels` are given)
    over the true mode centres (red crosses) as an RGB array."""
    # a Figure on its own Agg canvas, not pyplot (whose global state is not thread-safe): pictures are drawn
    # on the callback's worker thread
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    p = points.numpy()
    if labels is None:
        ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.4, c="tab:blue")
    else:
        ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.5, c=labels.numpy() % 20, cmap="tab20", vmin=0, vmax=19)
    if centers is not None:
        c = centers.numpy()
        ax.scatter(c[:, 0], c[:, 1], s=60, marker="x", c="tab:red")
        lim = float(np.abs(c).max()) * 1.5 + 0.2
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def render_panel(x, datamodule=None, title: str = "") -> np.ndarray:
    """A tensor of samples, (images, images per row) for panels such as input | output | target, or
    (2-D points, their class labels) for a class-conditional model's scatter."""
    if isinstance(x, tuple) and isinstance(x[1], torch.Tensor):
        return scatter_image(x[0], getattr(datamodule, "centers", None), title, labels=x[1])
    x, nrow = x if isinstance(x, tuple) else (x, None)
    if x.dim() == 2 and x.shape[1] == 2:
        return scatter_image(x, getattr(datamodule, "centers", None), title)
    return image_grid(x, nrow)


def log_images(trainer: pl.Trainer, images: dict[str, np.ndarray], step: int) -> None:
    for lg in trainer.loggers:
        name = type(lg).__name__
        if name == "WandbLogger":
            for k, v in images.items():
                lg.log_image(key=f"samples/{k}", images=[v], step=step)
        elif name == "TensorBoardLogger":
            for k, v in images.items():
                lg.experiment.add_image(f"samples/{k}", v, step, dataformats="HWC")


def draw_and_save(panels: dict, datamodule, step: int, out: Path, tag: str) -> tuple[dict[str, np.ndarray], list[Path]]:
    """Render the panels and write `out/<name>_<tag>.png` through the atomic writer (a reader never sees half a
    picture; a full disk is one StorageError line). Runs on the callback's worker thread: nothing here touches
    the model."""
    images = {k: render_panel(v, datamodule, f"{k} step {step}") for k, v in panels.items()}
    paths = []
    for k, v in images.items():
        path = out / f"{k}_{tag}.png"
        png = io.BytesIO()
        Image.fromarray(v).save(png, format="png")
        atomic_write_bytes(path, png.getvalue(), "sample picture")
        paths.append(path)
    return images, paths


class SampleCallback(pl.Callback):
    """Calls `pl_module.sample_panels()` (name -> tensor of samples or image panels) on the training thread;
    drawing and writing the pictures runs on one worker thread (`background=true`, the default) while
    training goes on. The finished pictures go to the loggers from the training thread (at their step), and
    every picture is written before training ends."""

    def __init__(self, every_n_steps: int = 500, n_points: int = 2000, out_dir: str = "samples",
                 background: bool = True):  # fmt: skip
        super().__init__()
        from gan_lab.errors import check_range

        check_range("callbacks.samples", "every_n_steps", every_n_steps, 0)
        check_range("callbacks.samples", "n_points", n_points, 1)
        self.every_n_steps, self.n_points, self.out_dir = every_n_steps, n_points, out_dir
        self.background = bool(background)
        self.saved: list[Path] = []
        self._pending: list = []  # (step, future) of pictures being drawn
        self._pool = None

    def _render(self, trainer, pl_module, tag: str):
        if not trainer.is_global_zero:
            return
        panels = pl_module.sample_panels(trainer.datamodule)
        if pl_module.data_kind == "points":  # a scatter of n_points samples (class-conditional: coloured)
            labels = pl_module.sample_labels(self.n_points)
            points = pl_module.generate_samples(self.n_points, labels=labels)
            panels = {"samples": points if labels is None else (points, labels)}
        step = trainer.global_step
        job = (draw_and_save, panels, trainer.datamodule, step, Path(trainer.default_root_dir) / self.out_dir, tag)
        if not self.background:
            self._publish(trainer, step, job[0](*job[1:]))
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gan_lab-samples")
        self._pending.append((step, self._pool.submit(*job)))

    def _publish(self, trainer, step: int, result) -> None:
        images, paths = result
        self.saved.extend(paths)
        log_images(trainer, images, step)

    def _collect(self, trainer, wait: bool) -> None:
        """Pictures finished on the worker (all of them with `wait`): recorded and sent to the loggers, in order."""
        while self._pending and (wait or self._pending[0][1].done()):
            step, future = self._pending.pop(0)
            self._publish(trainer, step, future.result())

    def _close(self, trainer, wait: bool = True) -> None:
        try:
            self._collect(trainer, wait=wait)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._render(trainer, pl_module, f"{trainer.global_step:06d}")
        if self._pending:
            self._collect(trainer, wait=False)

    def on_train_end(self, trainer, pl_module):
        self._render(trainer, pl_module, "final")
        self._close(trainer)

    def on_exception(self, trainer, pl_module, exception):
        """A failed or interrupted run finishes the picture being drawn (none is left half written) and drops
        the queued ones; an error of the worker does not hide the run's own."""
        self._pending = [(s, f) for s, f in self._pending if not f.cancel()]
        try:
            self._close(trainer)
        except Exception as e:  # noqa: BLE001 - the run's exception is the one to report
            log.warning("sample pictures: %s", e)

    def teardown(self, trainer, pl_module, stage):
        if self._pool is not None:
            self._close(trainer)
