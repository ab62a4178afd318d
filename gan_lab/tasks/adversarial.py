"""The one adversarial training loop (manual optimization) that every adversarial task reuses.

A task says only what is real, what is fake and what is extra:
  `unpack(batch) -> (real, cond)`, `generate(cond, n) -> fake`, `discriminator_input(x, cond)` (what D sees),
  `extra_g_loss(fake, real, cond) -> (loss or None, logs)`.
Tricks plug into the named hooks of `gan_lab.tricks.base` and never into task code.

Step counting: `global_step` counts batches (generator iterations), not optimizer steps: only the
last G update of a batch goes through Lightning's step counter, so `trainer.max_steps`, checkpoint
names and logger x-axes are in iterations whatever the D/G schedule.

Per-batch cost: for small models (the 2-D MLP GAN steps in ~10 ms) Lightning's hook dispatch around each
backward and optimizer step (every callback's hook, most of them no-ops, each in a profiler context) is a
visible share of the step. On one device in fp32 or bf16-mixed precision (no loss scaling) the loop calls
`loss.backward()` and `optimizer.step()` itself, and calls only the callbacks that override
`on_before_backward` / `on_after_backward` / `on_before_optimizer_step` (e.g. the training monitor's gradient
norms), in Lightning's order and with its arguments: the same operations as Lightning's path, minus the
no-op hooks. DDP, 16-mixed (scaled losses), or a task that overrides those hooks go through Lightning.
The Lightning internals this needs are in `gan_lab._lightning_compat` (version-gated, public fallback).

Random streams live in `gan_lab.rng`, GPU options (`model.channels_last`, `model.compile`) in
`gan_lab.gpu_options`, the logging window in `gan_lab.tasks.loss_window`.
"""

from __future__ import annotations

import contextlib

import pytorch_lightning as pl
import torch

from gan_lab import _lightning_compat as compat
from gan_lab._lightning_compat import direct_paths
from gan_lab.build import adam, build
from gan_lab.errors import check_range
from gan_lab.gpu_options import apply_gpu_options, gpu_options_check, to_channels_last
from gan_lab.losses import get_loss
from gan_lab.rng import own_rng, rng_state, set_rng_state
from gan_lab.tasks.interface import TaskDefaults
from gan_lab.tasks.loss_window import GANDiverged, LossWindow
from gan_lab.tricks.base import build_tricks

__all__ = ["AdversarialTask", "GANDiverged", "direct_paths", "to_channels_last"]


def _noop():
    return None


class AdversarialTask(TaskDefaults, pl.LightningModule):
    """The loop; subclasses implement the task interface (`gan_lab.tasks.interface`)."""

    def __init__(
        self,
        generator: dict,
        discriminator: dict,
        loss: str = "non_saturating",
        g_optimizer: dict | None = None,
        d_optimizer: dict | None = None,
        tricks: dict | None = None,
        grad_clip: float | None = None,
        data_shape: tuple | list | None = None,
        name: str = "",
        condition_shape: tuple | list | None = None,
        adv_weight: float = 1.0,
        channels_last: bool = False,
        compile: bool = False,
        lr_decay_from: float | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.channels_last, self.compile_nets = gpu_options_check(
            name or type(self).__name__, channels_last, compile, data_shape
        )
        self.data_shape = tuple(data_shape) if data_shape is not None else None
        self.condition_shape = tuple(condition_shape) if condition_shape is not None else None
        self.adv_loss = get_loss(loss)
        self.tricks = build_tricks(tricks, self.adv_loss)
        self.generator = build(generator, "model.generator", **self.generator_extra())
        dkw = self.tricks.discriminator_kwargs({**discriminator, **self.discriminator_extra()})
        self.discriminator = self.tricks.wrap_discriminator(build(dkw, "model.discriminator"))
        self.g_opt_kw = self.tricks.optimizer_kwargs("g", dict(g_optimizer or {"lr": 2e-4, "betas": (0.5, 0.999)}))
        self.d_opt_kw = self.tricks.optimizer_kwargs("d", dict(d_optimizer or {"lr": 2e-4, "betas": (0.5, 0.999)}))
        self.grad_clip = grad_clip
        self.adv_weight = check_range("model", "adv_weight", adv_weight, 0.0)  # 0: no adversary (e.g. SRResNet)
        if lr_decay_from is not None:  # linear LR decay (Zhu 2017 / Isola 2017): constant, then linear to 0
            check_range("model", "lr_decay_from", lr_decay_from, 0.0, 1.0, high_open=True)
        self.lr_decay_from = lr_decay_from
        self._schedulers: list = []
        self.tricks.setup(self)
        self.last_logged: dict[str, float] = {}
        self.window = LossWindow(self.last_logged)
        self._direct_for = None  # the trainer `_direct_backward` / `_direct_step` were decided for
        self._direct_backward = self._direct_step = None  # None: Lightning's path; a list: callbacks to call

    def __setattr__(self, name, value):
        # Lightning sets `_current_fx_name` around every hook call (20+ times a batch); a plain attribute,
        # so nn.Module's parameter/buffer/module bookkeeping is skipped for it
        if name == compat.FX_NAME:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # ---- what a task supplies --------------------------------------------------------------------
    @property
    def data_kind(self) -> str:
        return "points" if self.data_shape is not None and len(self.data_shape) == 1 else "image"

    def generator_extra(self) -> dict:
        return {"shape": self.data_shape}

    def discriminator_extra(self) -> dict:
        return {"shape": self.data_shape}

    def unpack(self, batch):
        """(real, cond) from a data batch."""
        raise NotImplementedError

    def generate(self, cond, n: int, generator=None):
        raise NotImplementedError

    def discriminator_input(self, x, cond):
        """The tensor D judges (conditional tasks concatenate the condition)."""
        return x

    def d_labels(self, cond):
        """Class labels D is conditioned on (class-conditional GANs: D(x, y)); None: D(x)."""
        return None

    def aux_loss(self, aux, cond):
        """The loss term of D's auxiliary output (AC-GAN's class cross-entropy), for D and for G."""
        raise NotImplementedError

    def composite(self, out, cond):
        """The fake sample D judges, from the generator's output (inpainting pastes it into the hole)."""
        return out

    def extra_g_loss(self, fake, real, cond):
        """(loss or None, logs) added to G's loss; `fake` is the generator's output before `composite`."""
        return None, {}

    def fakes_for_d(self, fake, step: int):
        """The fakes D judges in a D step (default: the batch just generated; CycleGAN: a history buffer)."""
        return fake

    # ---- the loop --------------------------------------------------------------------------------
    def configure_model(self):
        """GPU options on G, D and the trick modules (EMA copy); before the optimizers are built."""
        apply_gpu_options([self.generator, self.discriminator, self.tricks], self.channels_last, False)
        apply_gpu_options([self.generator, self.discriminator], False, self.compile_nets)

    def configure_optimizers(self):
        # model.compile=step: Adam's fused kernel (one per step) rather than a compiled optimizer step, which was
        # slower than the eager one on the CPU (docs/performance.md)
        fused = {"fused": True} if self.compile_nets == "step" else {}
        opt_g = adam(self.generator.parameters(), {**self.g_opt_kw, **fused})
        opt_d = adam(self.discriminator.parameters(), {**self.d_opt_kw, **fused})
        if self.lr_decay_from is None:
            return opt_g, opt_d
        return [opt_g, opt_d], [torch.optim.lr_scheduler.LambdaLR(o, self._lr_factor()) for o in (opt_g, opt_d)]

    def _lr_factor(self):
        """LR multiplier per batch: 1 for the first `lr_decay_from` of the run's steps, then linear to 0 at
        its end (`1 - (s - s0) / (T - s0 + 1)`, Zhu 2017's epoch rule in batches); the training step steps
        the schedulers once per batch, Lightning saves and restores them with the checkpoint."""
        total = self.trainer.max_steps if self.trainer.max_steps > 0 else self.trainer.estimated_stepping_batches
        if not 0 < total < float("inf"):
            from gan_lab.errors import ConfigError

            raise ConfigError("model.lr_decay_from needs a finite run: set trainer.max_steps or trainer.max_epochs")
        start = int(self.lr_decay_from * total)
        return lambda s: 1.0 - max(0, s - start) / float(total - start + 1)

    def d_outputs(self, x, cond, step: int):
        """(D's logits, its auxiliary output or None). Tricks change the input (`d_input`) and, where they
        regroup samples (PacGAN), the labels the same way (`d_labels`), so (x, y) pairs stay aligned."""
        out = self.discriminator(*self._d_args(x, cond, step))
        return out if isinstance(out, tuple) else (out, None)

    def _d_args(self, x, cond, step: int) -> tuple:
        x = self.tricks.d_input(self.discriminator_input(x, cond), step)
        y = self.d_labels(cond)
        return (x,) if y is None else (x, self.tricks.d_labels(y, step))

    def d_forward(self, x, cond, step: int):
        return self.d_outputs(x, cond, step)[0]

    def g_d_outputs(self, fake, real, cond, step: int):
        """(logits, auxiliary output, term): D's outputs that G's loss is taken against, the current D's or a
        trick's (trick=unrolled: D unrolled k optimizer steps ahead, differentiable through those steps), and
        the term that trick adds to G's loss (None: nothing)."""
        out = self.tricks.g_critic(self, fake, real, cond, step) if self.tricks.has("g_critic") else None
        return (*self.d_outputs(fake, cond, step), None) if out is None else out

    def d_features(self, x, cond, step: int):
        return self.discriminator.features(*self._d_args(x, cond, step))

    def _call_hooks(self, callbacks, hook: str, *args):
        compat.call_hooks(self.trainer, self, callbacks, hook, *args)

    def _freeze_d(self) -> list:
        """On the direct path, D's trainable parameters stop requiring gradients for a G step (returned, to be
        switched back after its backward): that backward then skips D's weight gradients, which nothing reads
        (the next D step starts from zero_grad). Same results, fewer operations; DDP (its reducer expects
        every trainable parameter's gradient) keeps them."""
        if self._direct_backward is None:
            return []
        params = [p for p in self.discriminator.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        return params

    def _backward(self, loss):
        listeners = self._direct_backward
        if listeners is None:
            self.manual_backward(loss)
            return
        if listeners:
            self._call_hooks(listeners, "on_before_backward", loss)
        loss.backward()
        if listeners:
            self._call_hooks(listeners, "on_after_backward")

    def _step(self, opt, counted: bool):
        if self.grad_clip:
            self.clip_gradients(opt, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
        listeners = self._direct_step
        if listeners is not None:  # what LightningOptimizer.step does, calling only the listening callbacks
            if counted:
                compat.before_counted_step(opt)  # the manual loop's step counter (global_step) and profiler
            if listeners:
                self._call_hooks(listeners, "on_before_optimizer_step", opt.optimizer)
            opt.optimizer.step()
            if counted:
                compat.after_counted_step(opt)
        elif counted:
            opt.step()
        else:  # same precision/strategy path as LightningOptimizer.step, without advancing global_step
            self.trainer.strategy.optimizer_step(opt.optimizer, _noop)

    def training_step(self, batch, batch_idx):
        trainer = compat.attached_trainer(self)
        if self._direct_for is not trainer:  # once per fit: the callbacks and plugins are known by now
            self._direct_backward, self._direct_step = direct_paths(trainer, self)
            self._direct_for = trainer
        opt_g, opt_d = self.optimizers()
        step = self.global_step
        real, cond = self.unpack(to_channels_last(batch) if self.channels_last else batch)
        n = real.shape[0]
        loss_d = penalty = None
        for _ in range(self.tricks.d_steps(step, 1) if self.adv_weight else 0):
            with torch.no_grad():
                fake = self.fakes_for_d(self.composite(self.generate(cond, n), cond), step)
            out_real, aux_real = self.d_outputs(real, cond, step)
            out_fake, aux_fake = self.d_outputs(fake, cond, step)
            real_t, fake_t = self.tricks.targets(torch.ones_like(out_real), torch.zeros_like(out_fake), step)
            loss_d = self.adv_loss.d(out_real, out_fake, real_t, fake_t)
            penalty = self.tricks.d_penalty(self, real, fake, cond, step)
            total_d = loss_d if penalty is None else loss_d + penalty
            if aux_real is not None:  # AC-GAN: D also classifies the real and the fake samples
                aux_d = self.aux_loss(aux_real, cond) + self.aux_loss(aux_fake, cond)
                total_d = total_d + aux_d
            opt_d.zero_grad(set_to_none=True)
            self._backward(total_d)
            self._step(opt_d, counted=False)
        k = self.tricks.g_steps(step, 1)
        for i in range(k):
            d_params = self._freeze_d()
            out = self.generate(cond, n)
            fake = self.composite(out, cond)
            extra, extra_logs = self.extra_g_loss(out, real, cond)
            terms = [extra]
            if self.adv_weight:
                out_g, aux_g, critic_term = self.g_d_outputs(fake, real, cond, step)
                loss_g = self.adv_loss.g(out_g)
                terms += [critic_term, self.tricks.g_loss(self, fake, real, cond, step)]
                if aux_g is not None:
                    extra_logs = {**extra_logs, "g_aux": self.aux_loss(aux_g, cond)}
                    terms.append(extra_logs["g_aux"])
                total_g = loss_g * self.adv_weight if self.adv_weight != 1.0 else loss_g
            else:
                loss_g = total_g = torch.zeros((), device=real.device)
            for term in terms:
                if term is not None:
                    total_g = total_g + term
            opt_g.zero_grad(set_to_none=True)
            self._backward(total_g)
            for p in d_params:
                p.requires_grad_(True)
            self._step(opt_g, counted=i == k - 1)
            self.tricks.after_g_step(self, step)
        if self.lr_decay_from is not None:
            if not self._schedulers:
                s = self.lr_schedulers()
                self._schedulers = s if isinstance(s, list) else [s]
            for s in self._schedulers:
                s.step()
        logs = {"g_loss": loss_g, "g_total": total_g, **extra_logs}
        if self.tricks.has("logs"):
            logs.update(self.tricks.logs())
        if loss_d is not None:
            logs["d_loss"] = loss_d
            with torch.no_grad():  # D's accuracy on the last D step; read by the monitor
                logs["d_acc_real"], logs["d_acc_fake"] = self._d_accuracy(out_real, out_fake)
            if penalty is not None:
                logs["d_penalty"] = penalty
            if aux_real is not None:
                logs["d_aux"] = aux_d
        self._accumulate(logs)

    def _d_accuracy(self, out_real, out_fake) -> tuple[torch.Tensor, torch.Tensor]:
        """D's accuracy on real and on fake samples (logit > 0 = "real")."""
        return torch.mean(out_real > 0, dtype=torch.float32), torch.mean(out_fake <= 0, dtype=torch.float32)

    # ---- cheap logging: sums on device, one host sync per `trainer.log_every_n_steps` -------------
    def _log_due(self) -> bool:
        """Whether this batch closes a logging window (every `trainer.log_every_n_steps`; every batch of a
        fast_dev_run or outside a trainer)."""
        trainer = compat.attached_trainer(self)
        every = max(1, trainer.log_every_n_steps) if trainer is not None else 1
        # global_step already counts this batch
        return self.global_step % every == 0 or (trainer is not None and bool(trainer.fast_dev_run))

    def _accumulate(self, logs: dict):
        self.window.add(logs)
        if self._log_due():
            step = self.global_step
            out = self.window.flush(step)
            if out:  # host tensors: Lightning re-reads progress-bar values every batch (.item(): no GPU sync)
                out = {k: torch.tensor(v, dtype=torch.float32) for k, v in out.items()}
                self.log_dict(out, on_step=True, on_epoch=False, prog_bar=True, batch_size=1)

    def on_train_end(self):
        self._flush_to_loggers()

    def _flush_to_loggers(self):
        """Flush the partial window where `self.log` is not allowed (epoch/train end)."""
        out = self.window.flush(self.global_step)
        if out:
            for lg in self.loggers:
                lg.log_metrics(out, step=self.global_step)

    def on_save_checkpoint(self, checkpoint):
        """Never write a checkpoint of a diverged state: the last good one stays."""
        if not self.window.finite():
            raise GANDiverged(f"non-finite loss before step {self.global_step}")
        for name, p in self.named_parameters():
            if not torch.isfinite(p).all():
                raise GANDiverged(f"parameter {name} is not finite at step {self.global_step}")
        checkpoint["trick_state"] = self.tricks.trick_state()
        checkpoint["rng_state"] = rng_state()

    def on_load_checkpoint(self, checkpoint):
        self.tricks.load_trick_state(checkpoint.get("trick_state", {}))
        self._pending_rng = checkpoint.get("rng_state")

    def on_train_start(self):
        """Restore the random streams of a resumed run last, so that resuming is bit-identical (CPU)."""
        if getattr(self, "_pending_rng", None) is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None

    # ---- sampling for pictures and metrics ------------------------------------------------------
    def sampling_generator(self):
        return self.tricks.sampling_generator(self.generator)

    @contextlib.contextmanager
    def eval_generator(self):
        """The sampling generator (EMA when on) in eval mode under no_grad; its mode is restored after."""
        g = self.sampling_generator()
        was_training = g.training
        g.eval()
        try:
            with torch.no_grad():
                yield g
        finally:
            g.train(was_training)

    def generate_samples(
        self, n: int, batch_size: int = 500, labels=None, seed: int = 12345, datamodule=None, cond=None
    ) -> torch.Tensor:
        """n samples in data space on CPU, from the sampling generator in eval mode. Drawn from their own
        random stream, so evaluating never changes the training trajectory. `cond`: the generator's condition
        (per sample, sliced with the batches); an unconditional task takes no `labels`."""
        if cond is None:
            self.refuse_labels(labels)
        with self.eval_generator() as g, own_rng(seed, self.device):
            out = []
            for i in range(0, n, batch_size):
                c = None if cond is None else cond[i : i + batch_size].to(self.device)
                out.append(self.generate(c, min(batch_size, n - i), generator=g).float().cpu())
        return torch.cat(out)
