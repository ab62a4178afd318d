"""Every private Lightning/torch name gan_lab uses, in one place, gated on the tested versions.

gan_lab relies on a few Lightning internals for speed and correctness; each use is a function here, and the
rest of the package calls these functions only. At import the installed pytorch-lightning is checked against
`TESTED_LIGHTNING` (the range pyproject.toml allows and CI installs, see constraints.txt). Inside it the
internals are used; outside it every function takes the public path instead (slower, same results) or fails
with one line where no public path exists.

The internals, and why:
- `LightningOptimizer._on_before_step/_on_after_step`: the manual loop's step counter (`global_step`, which
  `trainer.max_steps` stops on) and profiler around an optimizer step the loop runs itself (the direct path
  of `gan_lab.tasks.adversarial`); the public path is `LightningOptimizer.step()`.
- `LightningModule._current_fx_name`: set around callback hooks the loop calls itself, as Lightning does, so
  that `self.log` inside those hooks is attributed to the right hook; kept out of nn.Module's `__setattr__`.
- `LightningModule._trainer`: the attached trainer or None (the public `.trainer` raises when detached).
- `Strategy._layer_sync`: torch's SyncBatchNorm is GPU-only; dropped on CPU processes of `trainer=ddp`.
- `_ExperimentWriter.metrics_keys` (CSV logger): the header of a resumed run's kept metrics.csv.
- `lightning_fabric...precision._PRECISION_INPUT_*`: the precision names Lightning accepts (config check).
- `RichProgressBar._get_train_description`: the bar's title; Lightning's reads "Epoch 0/-2" when a run is
  bounded by `max_steps` only (`max_epochs=-1`).
- `torch._dynamo.is_dynamo_supported`: whether `torch.compile` can run on this Python/torch.
- `WandbLogger._wandb_init`: Lightning passes `anonymous=None` to `wandb.init`, and W&B (0.2x and later) then
  warns at every run that the setting has no effect; the unset key is dropped.
"""

from __future__ import annotations

import pytorch_lightning as pl
from packaging.specifiers import SpecifierSet
from packaging.version import Version

TESTED_LIGHTNING = ">=2.6,<2.7"
LIGHTNING_VERSION = Version(pl.__version__)
PRIVATE_API = LIGHTNING_VERSION in SpecifierSet(TESTED_LIGHTNING, prereleases=True)
FX_NAME = "_current_fx_name"  # a plain attribute of the task (see `gan_lab.tasks.adversarial.__setattr__`)


def attached_trainer(module: pl.LightningModule):
    """The trainer `module` is attached to, or None (evaluation and sampling outside `fit`)."""
    if PRIVATE_API:
        return module._trainer
    try:
        return module.trainer
    except RuntimeError:
        return None


def _listeners(trainer, module, hooks) -> list | None:
    """The callbacks overriding any of `hooks`, in the trainer's order; None when the task itself overrides
    one (then Lightning's own dispatch runs). Lightning's default hooks do nothing."""
    if any(getattr(type(module), h) is not getattr(pl.LightningModule, h) for h in hooks):
        return None
    return [cb for cb in trainer.callbacks if any(getattr(type(cb), h) is not getattr(pl.Callback, h) for h in hooks)]


def direct_paths(trainer, module) -> tuple[list | None, list | None]:
    """(backward listeners, optimizer-step listeners): None where the step must go through Lightning
    (outside the tested Lightning range, DDP, scaled 16-bit losses, a task overriding the hooks), else the
    callbacks the loop calls itself around `loss.backward()` / `optimizer.step()`."""
    from pytorch_lightning.plugins.precision import MixedPrecision, Precision
    from pytorch_lightning.strategies import SingleDeviceStrategy

    pp = trainer.precision_plugin
    plain = type(trainer.strategy) is SingleDeviceStrategy and (
        type(pp) is Precision or (type(pp) is MixedPrecision and pp.scaler is None)
    )
    if not (plain and PRIVATE_API):
        return None, None
    backward = _listeners(trainer, module, ("on_before_backward", "on_after_backward"))
    if type(module).backward is not pl.LightningModule.backward:
        backward = None
    return backward, _listeners(trainer, module, ("on_before_optimizer_step",))


def before_counted_step(opt) -> None:
    """What `LightningOptimizer.step` does before the step: the manual loop's step counter (`global_step`)
    and profiler. Only on the direct path (`direct_paths`), i.e. inside the tested range."""
    opt._on_before_step()


def after_counted_step(opt) -> None:
    opt._on_after_step()


def call_hooks(trainer, module, callbacks, hook: str, *args) -> None:
    """Callback hooks as Lightning calls them: same order and arguments, with `_current_fx_name` set."""
    prev = getattr(module, FX_NAME, None)
    setattr(module, FX_NAME, hook)
    for cb in callbacks:
        getattr(cb, hook)(trainer, module, *args)
    setattr(module, FX_NAME, prev)


def layer_sync(strategy):
    """The strategy's SyncBatchNorm plugin, or None (also outside the tested range: Lightning decides)."""
    return getattr(strategy, "_layer_sync", None) if PRIVATE_API else None


def drop_unset_wandb_anonymous(logger) -> None:
    """Leave W&B's `anonymous` setting unset when the WandbLogger was not given one (no warning at each run)."""
    init = getattr(logger, "_wandb_init", None) if PRIVATE_API else None
    if isinstance(init, dict) and init.get("anonymous", "") is None:
        del init["anonymous"]


def drop_layer_sync(strategy) -> None:
    strategy._layer_sync = None


def restore_csv_columns(writer, columns: list[str]) -> None:
    """Tell Lightning's CSV writer the columns of the metrics.csv it appends to (a resumed run's history)."""
    if not hasattr(writer, "metrics_keys"):
        raise RuntimeError(
            f"pytorch-lightning {LIGHTNING_VERSION}: the CSV logger has no metrics_keys; resuming with a kept "
            f"metrics.csv is tested with pytorch-lightning{TESTED_LIGHTNING}"
        )
    writer.metrics_keys = sorted(columns)


def precision_names() -> list[str]:
    """The `trainer.precision` values Lightning accepts; [] when unknown (Lightning then checks itself)."""
    if not PRIVATE_API:
        return []
    try:
        from typing import get_args

        from lightning_fabric.plugins.precision import precision as p

        names = get_args(p._PRECISION_INPUT_STR) + get_args(p._PRECISION_INPUT_STR_ALIAS)
        return list(dict.fromkeys(str(n) for n in names + get_args(p._PRECISION_INPUT_INT)))
    except (ImportError, AttributeError):
        return []


def dynamo_supported() -> bool:
    import torch._dynamo

    return torch._dynamo.is_dynamo_supported()


def epoch_only_train_description(bar_cls) -> None:
    """Make `bar_cls` (a RichProgressBar) title the bar "Epoch N" when the run has no epoch bound
    (`max_epochs=-1`, runs bounded by `max_steps`), Lightning's title otherwise. Outside the tested range:
    Lightning's title unchanged."""
    if not PRIVATE_API or not hasattr(bar_cls, "_get_train_description"):
        return
    lightning_title = bar_cls._get_train_description

    def title(self, current_epoch: int) -> str:
        if self.trainer.max_epochs is not None and self.trainer.max_epochs < 0:
            return f"Epoch {current_epoch}"
        return lightning_title(self, current_epoch)

    bar_cls._get_train_description = title
