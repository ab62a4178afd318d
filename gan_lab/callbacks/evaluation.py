"""Periodic evaluation: every N steps (and at the end) generate samples and log `metrics/<name>`; and the
task's held-out metrics (`val/<name>`).

Both talk to the task through the task interface (`gan_lab.tasks.interface`): `sample_labels`,
`generate_samples` (data space, CPU, eval mode, no grad), `label_protocol`, `held_out_metrics`, with the
trainer's data module passed in. The values go straight to `trainer.loggers` (at `trainer.global_step`,
which counts batches here) and are kept for the run's metrics.json: `callback.final()` is the last
metrics plus their "protocol"; the held-out values go to the task's `last_logged`.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from gan_lab.errors import check_range
from gan_lab.metrics.evaluate import compute_metrics


class EvaluationCallback(pl.Callback):
    def __init__(
        self,
        every_n_steps: int,
        n_samples: int,
        at_end: bool = True,
        n_real: int | None = None,
        feature_net: str | None = None,
        names=None,
        resize: str = "legacy_tf",
        verify_weights: bool = True,
        **metric_kw,
    ):
        check_range("metrics", "every_n_steps", every_n_steps, 0)  # 0: only at the end
        check_range("metrics", "n_samples", n_samples, 2)
        if n_real is not None:
            check_range("metrics", "n_real", n_real, 2)
        self.every_n_steps, self.n_samples, self.at_end = int(every_n_steps), int(n_samples), bool(at_end)
        from gan_lab.metrics.evaluate import check_options

        names = check_options(names, resize, verify_weights)  # e.g. unknown names: one line, before training
        if feature_net is not None:  # fail before training (e.g. inception without its weights file)
            from gan_lab.metrics.features import load_feature_net

            load_feature_net(feature_net, resize=resize, verify_weights=verify_weights)
        metric_kw = {"names": names, "resize": resize, "verify_weights": verify_weights, **metric_kw}
        self.n_real, self.feature_net, self.metric_kw = n_real, feature_net, metric_kw
        self.last_metrics: dict[str, float] = {}
        self.protocol: dict = {}
        self.history: list[tuple[int, dict[str, float]]] = []
        self._last_step = -1

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        step = trainer.global_step
        kw = dict(self.metric_kw)
        dm = trainer.datamodule
        labels = pl_module.sample_labels(self.n_samples)  # class-conditional: the data's class frequencies
        if labels is not None:
            kw["labels"] = labels
        # on a fork of the random streams: an evaluation never moves the training's (the first one of a process
        # builds the feature net, whose random init a resumed run would otherwise draw at another step)
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            samples = pl_module.generate_samples(self.n_samples, labels=labels, datamodule=dm)
            metrics, protocol = compute_metrics(samples, dm, n_real=self.n_real, feature_net=self.feature_net, **kw)
        protocol = {**protocol, **pl_module.label_protocol()}
        self.last_metrics, self.protocol, self._last_step = metrics, {**protocol, "step": step}, step
        self.history.append((step, metrics))
        if metrics:
            for lg in trainer.loggers:
                lg.log_metrics({f"metrics/{k}": v for k, v in metrics.items()}, step=step)
        return metrics

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if (
            self.every_n_steps
            and step > 0
            and step % self.every_n_steps == 0
            and step != self._last_step
            and trainer.is_global_zero
        ):
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.at_end and trainer.is_global_zero and trainer.global_step != self._last_step:
            self.evaluate(trainer, pl_module)

    def final(self) -> dict:
        """The last metrics and, under "protocol", how they were computed (for metrics.json)."""
        return {**self.last_metrics, "protocol": dict(self.protocol)}


class HeldOutCallback(pl.Callback):
    """The task's `held_out_metrics(datamodule)` (reconstruction, paired PSNR/SSIM; {} for most GANs) as
    `val/<name>`: every `every_n_steps` (the periodic evaluation's period; 0: only at the end) and at the end
    of training, once per step, on rank 0. Always on (added by `gan_lab.train.build_objects`)."""

    def __init__(self, every_n_steps: int = 0):
        self.every_n_steps = int(check_range("metrics", "every_n_steps", every_n_steps, 0))
        self._last_step = -1

    def log_held_out(self, trainer: pl.Trainer, pl_module) -> dict[str, float]:
        step = trainer.global_step
        if step == self._last_step or not trainer.is_global_zero:
            return {}
        self._last_step = step
        metrics = {f"val/{k}": float(v) for k, v in pl_module.held_out_metrics(trainer.datamodule).items()}
        if metrics:
            pl_module.last_logged.update(metrics)
            for lg in trainer.loggers:
                lg.log_metrics(metrics, step=step)
        return metrics

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0:
            self.log_held_out(trainer, pl_module)  # not `log`: Lightning sets callback.log

    def on_train_end(self, trainer, pl_module) -> None:
        self.log_held_out(trainer, pl_module)  # not `log`: Lightning sets callback.log
