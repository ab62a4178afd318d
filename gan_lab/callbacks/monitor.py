"""Training monitor: gradient norms of G and D, and alarms for a discriminator that wins completely and
for collapsing coverage.

Logged once per `trainer.log_every_n_steps` (window means; the norms are summed on the device, one host
sync per window; straight to the loggers at trainer.global_step, so a value is there only where measured):
  train/grad_norm_g, train/grad_norm_d   L2 norm of all gradients of the generator's / discriminator's
                                         optimizer right before its step (after `model.grad_clip`); the
                                         autoencoders have one optimizer, logged as grad_norm_g
Alarms (one warning line, `alarms/<name>` = 1 in the loggers at that step, and an entry
{name, step, message} in metrics.json under `alarms`); an alarm fires once and re-arms when its
condition has cleared:
  d_wins             for `patience` windows in a row D was updated and classified both real and fake
                     batches right (train/d_acc_real and train/d_acc_fake >= `acc`) while a gradient
                     vanished (window mean <= `vanish` x the largest window mean so far): G's (the
                     minimax loss saturates) or D's own (D is so confident its loss is flat)
  coverage_collapse  after an evaluation of the EvaluationCallback: at once when class_modes /
                     modes_captured / stacked_modes fall by `max_mode_drop` (a fraction) from the best
                     evaluation so far, once that best covered `min_mode_fraction` of the data's modes;
                     and, for `eval_patience` evaluations in a row (an untrained generator covers little
                     too), when they are below `min_mode_fraction` of the data's modes or `diversity`
                     (generated / real mean pairwise feature distance) is below `min_diversity`; on stacked
                     digits the message adds, when 90% or more of the generated channels are read as one
                     digit, which digit and how confidently (a collapse to it, or unreadable samples)
Tasks without a discriminator (autoencoders, adv_weight=0) have no D norms and no d_wins checks.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch

from gan_lab.config import check_int
from gan_lab.errors import check_range

log = logging.getLogger("gan_lab")

DEFAULT_WINDOW = 50  # steps per window when trainer.log_every_n_steps=0 (no logging, alarms still checked)
MODE_METRICS = {"modes_captured": "n_modes", "class_modes": "n_classes", "stacked_modes": "n_stacked_modes"}
ONE_DIGIT_SHARE = 0.9  # a stacked-digits collapse alarm says which digit, when this share of channels reads as one


def grad_norm(optimizer: torch.optim.Optimizer, members: int | None = None) -> torch.Tensor | None:
    """L2 norm of all gradients of an optimizer's parameters, as a tensor on their device (no host sync).
    `members` (seed-parallel nets, every gradient with a leading member dimension): one norm per member."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if members is None:
        norms = [torch.linalg.vector_norm(g) for g in grads]
    else:
        norms = [torch.linalg.vector_norm(g.reshape(members, -1), dim=1) for g in grads]
    if not norms:
        return None
    # one norm per tensor, then the norm of those: `torch.nn.utils.get_total_norm`'s result, without its grouping
    # of the tensors by device and dtype, which cost as much again per call as these kernels (2-D MLP, CPU)
    return torch.linalg.vector_norm(torch.stack(norms), dim=None if members is None else 0)


def optimizer_name(trainer, pl_module, optimizer) -> str | None:
    """The task's name ("g", "d") of the raw torch optimizer at its position in `trainer.optimizers`."""
    return next((name for name, opt in zip(pl_module.optimizer_names, trainer.optimizers) if opt is optimizer), None)


class Alarms:
    """The alarm logic on plain numbers (unit-testable without a trainer): feed it window values and
    evaluations; it returns the alarms that fire and keeps all of them in `fired`."""

    def __init__(
        self,
        acc: float = 0.99,
        vanish: float = 0.1,
        patience: int = 3,
        min_mode_fraction: float = 0.5,
        max_mode_drop: float = 0.5,
        min_diversity: float = 0.3,
        eval_patience: int = 2,
    ):
        self.acc = check_range("callbacks.monitor", "acc", acc, 0.0, 1.0)
        self.vanish = check_range("callbacks.monitor", "vanish", vanish, 0.0, 1.0)
        self.patience = check_int("callbacks.monitor", "patience", patience, 1)
        self.min_mode_fraction = check_range("callbacks.monitor", "min_mode_fraction", min_mode_fraction, 0.0, 1.0)
        self.max_mode_drop = check_range("callbacks.monitor", "max_mode_drop", max_mode_drop, 0.0, 1.0)
        self.min_diversity = check_range("callbacks.monitor", "min_diversity", min_diversity, 0.0)
        self.eval_patience = check_int("callbacks.monitor", "eval_patience", eval_patience, 1)
        self.fired: list[dict] = []
        self.peak: dict[str, float] = {}
        self.best_modes: dict[str, float] = {}
        self._streak = 0
        self._low_evals = 0
        self._active: set[str] = set()

    _STATE = ("fired", "peak", "best_modes", "_streak", "_low_evals", "_active")

    def state(self) -> dict:
        """Plain containers (a checkpoint loadable with weights_only=True)."""
        return {k: sorted(v) if isinstance(v, set) else v for k, v in vars(self).items() if k in self._STATE}

    def load(self, state: dict) -> None:
        for k in self._STATE:
            if k in state:
                setattr(self, k, set(state[k]) if k == "_active" else state[k])

    def _raise(self, name: str, step: int, condition: bool, message: str) -> dict | None:
        """Fire `name` when `condition` starts to hold; re-arm when it stops."""
        if not condition:
            self._active.discard(name)
            return None
        if name in self._active:
            return None
        self._active.add(name)
        alarm = {"name": name, "step": int(step), "message": message}
        self.fired.append(alarm)
        return alarm

    def vanished(self, key: str, norms: dict[str, float]) -> bool:
        v, peak = norms.get(key), self.peak.get(key)
        return v is not None and peak is not None and peak > 0 and v <= self.vanish * peak

    def window(self, step: int, norms: dict[str, float], acc_real: float | None, acc_fake: float | None):
        """One logging window: mean grad norms {"g": ..., "d": ...} (keys absent when that optimizer did not
        step) and D's accuracies. Returns the alarms that fire."""
        for k, v in norms.items():
            self.peak[k] = max(self.peak.get(k, 0.0), v)
        wins = (
            "d" in norms
            and acc_real is not None
            and acc_fake is not None
            and min(acc_real, acc_fake) >= self.acc
            and (self.vanished("g", norms) or self.vanished("d", norms))
        )
        self._streak = self._streak + 1 if wins else 0
        if not wins:
            self._raise("d_wins", step, False, "")  # re-arm
            return []
        gone = [f"{k.upper()}'s gradient vanished ({norms[k]:.3g}, peak {self.peak[k]:.3g})"
                for k in ("g", "d") if self.vanished(k, norms)]  # fmt: skip
        message = (
            f"D wins completely: accuracy real {acc_real:.3f}, fake {acc_fake:.3f} for {self._streak} "
            f"window(s); {', '.join(gone)}"
        )
        alarm = self._raise("d_wins", step, self._streak >= self.patience, message)
        return [alarm] if alarm else []

    def evaluation(self, step: int, metrics: dict[str, float], protocol: dict) -> list[dict]:
        """One evaluation (metrics and protocol of compute_metrics). Returns the alarms that fire."""
        low, drop = [], []
        for key, total_key in MODE_METRICS.items():
            if key not in metrics:
                continue
            value, total = float(metrics[key]), protocol.get(total_key)
            best = self.best_modes.get(key)
            covered = best and (not total or best >= self.min_mode_fraction * total)  # 1 mode -> 0 is no collapse
            if covered and value <= (1 - self.max_mode_drop) * best:
                drop.append(f"{key} {value:g}, down from {best:g} (a drop of {self.max_mode_drop:.0%} or more)")
            elif total and value < self.min_mode_fraction * total:
                low.append(f"{key} {value:g} of {total} (< {self.min_mode_fraction:g} of the data's modes)")
            self.best_modes[key] = max(best or 0.0, value)
        if "diversity" in metrics and metrics["diversity"] < self.min_diversity:
            low.append(f"diversity {metrics['diversity']:.3g} (< {self.min_diversity:g})")
        # an untrained generator covers little too: being low needs `eval_patience` evaluations in a row
        self._low_evals = self._low_evals + 1 if low else 0
        why = drop + (low if self._low_evals >= self.eval_patience else [])
        message = "coverage collapse: " + "; ".join(why)
        top = protocol.get("stacked_top_digit")
        if why and top and top["share"] >= ONE_DIGIT_SHARE:
            message += (
                f" ({top['share']:.0%} of the generated channels read as the digit {top['digit']}, mean confidence "
                f"{top['confidence']:.2f}: a collapse to that digit, or samples the classifier cannot read, e.g. a "
                "background that is not yet black; look at the samples or run scripts/stacked_modes_check.py)"
            )
        alarm = self._raise("coverage_collapse", step, bool(why), message)
        return [alarm] if alarm else []


class MonitorCallback(pl.Callback):
    """See the module doc. Parameters are those of `Alarms`, plus `grad_norms` (false: no norms, and no
    d_wins alarm, which needs them)."""

    def __init__(self, grad_norms: bool = True, **alarm_kw):
        self.grad_norms = bool(grad_norms)
        self.alarms = Alarms(**alarm_kw)
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._last_step = -1
        self._evaluators: list = []
        self._rank_zero = True
        self._evals_seen: dict[int, int] = {}
        self.last_norms: dict[str, float] = {}

    def setup(self, trainer, pl_module, stage: str) -> None:
        from gan_lab.callbacks.evaluation import EvaluationCallback

        self._evaluators = [cb for cb in trainer.callbacks if isinstance(cb, EvaluationCallback)]
        self._rank_zero = trainer.is_global_zero  # DDP: every rank sees the same numbers; one warns

    def state_dict(self) -> dict:  # saved in checkpoints: a resumed run keeps its alarms, peaks and streaks
        # and the open window's norm sums, so that its mean (and the peaks) match an uninterrupted run
        window = {"sums": {k: float(v) for k, v in self._sums.items()}, "counts": dict(self._counts)}
        return {**self.alarms.state(), "window": window}

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        window = state.pop("window", None) or {}
        self.alarms.load(state)
        self._sums = {k: torch.tensor(v, dtype=torch.float32) for k, v in window.get("sums", {}).items()}
        self._counts = {k: int(v) for k, v in window.get("counts", {}).items()}

    # ---- gradient norms: on device, every optimizer step ----------------------------------------
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        """Fires for manual optimization too, through `opt.step()` and `trainer.strategy.optimizer_step`,
        with the raw torch optimizer, named by the task's `optimizer_names` ("g", "d") at its position."""
        if not self.grad_norms or not trainer.optimizers:
            return
        key = optimizer_name(trainer, pl_module, optimizer)
        norm = grad_norm(optimizer) if key else None
        if norm is not None:
            self.add_norm(key, norm)

    def add_norm(self, key: str, norm: torch.Tensor) -> None:
        """One optimizer step's gradient norm ("g" or "d") into the open window (a seed-parallel run gives each
        member's monitor its own member's norm)."""
        self._sums[key] = self._sums[key] + norm if key in self._sums else norm
        self._counts[key] = self._counts.get(key, 0) + 1

    def _flush_norms(self) -> dict[str, float]:
        keys = [k for k in ("g", "d") if self._counts.get(k)]
        means = torch.stack([self._sums[k] / self._counts[k] for k in keys]).tolist() if keys else []  # 1 sync
        self._sums, self._counts = {}, {}
        self.last_norms = dict(zip(keys, means))
        return self.last_norms

    # ---- once per logging window -----------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step != self._last_step and step % (trainer.log_every_n_steps or DEFAULT_WINDOW) == 0:
            self._log(trainer, step, self._window(pl_module, step))
        self._evaluations(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._counts and trainer.global_step != self._last_step:  # the last partial window
            self._log(trainer, trainer.global_step, self._window(pl_module, trainer.global_step))
        self._evaluations(trainer)

    def _window(self, pl_module, step: int) -> dict[str, float]:
        """Close a window: mean norms, D's accuracies from the task's last flush, alarms; what to log."""
        self._last_step = step
        norms = self._flush_norms()
        logged = pl_module.last_logged
        fired = self.alarms.window(step, norms, logged.get("train/d_acc_real"), logged.get("train/d_acc_fake"))
        self._warn(fired)
        return {**{f"train/grad_norm_{k}": v for k, v in norms.items()}, **{f"alarms/{a['name']}": 1.0 for a in fired}}

    def _evaluations(self, trainer) -> None:
        """Check the evaluations the EvaluationCallback made since the last call (trainer None: warn only)."""
        for cb in self._evaluators:
            seen = self._evals_seen.get(id(cb), 0)
            for eval_step, metrics in cb.history[seen:]:
                fired = self.alarms.evaluation(eval_step, metrics, cb.protocol)
                self._warn(fired)
                if trainer is not None:
                    self._log(trainer, eval_step, {f"alarms/{a['name']}": 1.0 for a in fired})
            self._evals_seen[id(cb)] = len(cb.history)

    def _warn(self, fired: list[dict]) -> None:
        for a in fired if self._rank_zero else []:
            log.warning("alarm %s at step %d: %s", a["name"], a["step"], a["message"])

    def _log(self, trainer, step: int, values: dict) -> None:
        """Straight to the loggers: `self.log` would re-send a stale value (grad_norm_d while D is frozen,
        an alarm's 1) at every later logging step of the epoch."""
        if values and trainer.is_global_zero:
            for lg in trainer.loggers:
                lg.log_metrics(values, step=step)

    def final(self) -> dict:
        """For metrics.json: the alarms (name, step, message) and the last window's gradient norms. An
        evaluation made after this callback's on_train_end (callback order) is checked here."""
        self._evaluations(None)
        return {"alarms": list(self.alarms.fired), **{f"grad_norm_{k}": v for k, v in self.last_norms.items()}}
