"""The one adversarial training loop (manual optimization) that every adversarial task reuses.

A task says only what is real, what is fake and what is extra:
  `unpack(batch) -> (real, cond)`, `generate(cond, n) -> fake`, `d_inputs(x, cond)` (what D sees),
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

GPU options (`model.channels_last`, `model.compile`) are applied to the nets in `configure_model`, before
Lightning moves the task to its device and builds the optimizers (`gpu_options_check`, `apply_gpu_options`);
with channels_last each batch is converted as the training step starts.
"""

from __future__ import annotations

import contextlib

import pytorch_lightning as pl
import torch

from gan_lab.build import build
from gan_lab.errors import check_range
from gan_lab.losses import get_loss
from gan_lab.tasks.loss_window import GANDiverged, LossWindow
from gan_lab.tricks.base import build_tricks


def rng_state() -> dict:
    """Every random stream a run uses, as plain containers (loadable with weights_only=True)."""
    import random

    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class own_rng:  # noqa: N801 - used as a context manager like torch.random.fork_rng
    """Run a block on a private, seeded random stream and leave the global streams untouched."""

    def __init__(self, seed: int, device=None):
        devices = [device] if device is not None and torch.device(device).type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)
        self.seed = seed

    def __enter__(self):
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


def _noop():
    return None


def gpu_options_check(model: str, channels_last, compile, data_shape) -> tuple[bool, bool]:
    """Validate `model.channels_last` / `model.compile` before anything is built (one-line ConfigError)."""
    from gan_lab.errors import ConfigError

    for key, value in (("channels_last", channels_last), ("compile", compile)):
        if not isinstance(value, bool):
            raise ConfigError(f"model.{key}={value!r} must be a boolean; allowed true, false")
    if channels_last and (data_shape is None or len(data_shape) != 3):
        raise ConfigError(
            f"model.channels_last=true needs image data (C x H x W samples); model={model} has samples of shape "
            f"{tuple(data_shape) if data_shape is not None else None}; allowed model.channels_last=false"
        )
    if compile:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            raise ConfigError(
                f"model.compile=true: torch.compile is not supported with this Python/torch ({torch.__version__}); "
                "allowed model.compile=false"
            )
        if not torch.cuda.is_available():  # CPU code generation (inductor) compiles C++
            import os
            import shutil

            cxx = os.environ.get("CXX") or "c++"
            if shutil.which(cxx) is None and shutil.which("g++") is None:
                raise ConfigError(
                    f"model.compile=true needs a C++ compiler for torch.compile (inductor) on the CPU: {cxx!r} and "
                    "'g++' are not found (install one or set CXX); allowed model.compile=false"
                )
    return channels_last, compile


def apply_gpu_options(modules, channels_last: bool, compile: bool) -> None:
    """channels_last: 4-D parameters and buffers in NHWC memory order (other tensors are left alone);
    compile: `torch.compile` of each module's forward (the module and its state-dict keys stay as they are,
    so checkpoints are interchangeable with uncompiled runs; hooks such as spectral norm run eagerly)."""
    for m in modules:
        if channels_last:
            m.to(memory_format=torch.channels_last)
        if compile and not getattr(m, "_gan_lab_compiled", False):
            m.forward = torch.compile(m.forward)
            m._gan_lab_compiled = True


def to_channels_last(batch):
    """4-D tensors of a batch (images, masks) in channels_last memory order; everything else as it is."""
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_channels_last(b) for b in batch)
    return batch


def _listeners(trainer, module, hooks) -> list | None:
    """The callbacks overriding any of `hooks`, in the trainer's order; None when the task itself overrides
    one (then Lightning's own dispatch runs). Lightning's default hooks do nothing."""
    if any(getattr(type(module), h) is not getattr(pl.LightningModule, h) for h in hooks):
        return None
    return [cb for cb in trainer.callbacks if any(getattr(type(cb), h) is not getattr(pl.Callback, h) for h in hooks)]


def direct_paths(trainer, module) -> tuple[list | None, list | None]:
    """(backward listeners, optimizer-step listeners): None where the step must go through Lightning
    (see the module doc), else the callbacks the loop calls itself around `backward()` / `step()`."""
    from pytorch_lightning.plugins.precision import MixedPrecision, Precision
    from pytorch_lightning.strategies import SingleDeviceStrategy

    pp = trainer.precision_plugin
    plain = type(trainer.strategy) is SingleDeviceStrategy and (
        type(pp) is Precision or (type(pp) is MixedPrecision and pp.scaler is None)
    )
    if not plain:
        return None, None
    backward = _listeners(trainer, module, ("on_before_backward", "on_after_backward"))
    if type(module).backward is not pl.LightningModule.backward:
        backward = None
    return backward, _listeners(trainer, module, ("on_before_optimizer_step",))


def _adam(params, kw: dict):
    kw = dict(kw)
    name = kw.pop("name", "adam")
    if name != "adam":
        from gan_lab.errors import ConfigError

        raise ConfigError(f"optimizer name={name!r} is not known; allowed adam")
    kw["betas"] = tuple(kw.get("betas", (0.9, 0.999)))
    return torch.optim.Adam(params, **kw)


class AdversarialTask(pl.LightningModule):
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
        cond_shape: tuple | list | None = None,
        adv_weight: float = 1.0,
        channels_last: bool = False,
        compile: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.channels_last, self.compile_nets = gpu_options_check(
            name or type(self).__name__, channels_last, compile, data_shape
        )
        self.data_shape = tuple(data_shape) if data_shape is not None else None
        self.cond_shape = tuple(cond_shape) if cond_shape is not None else None
        self.adv_loss = get_loss(loss)
        self.tricks = build_tricks(tricks, self.adv_loss)
        self.generator = build(generator, "model.generator", **self.generator_extra())
        dkw = self.tricks.discriminator_kwargs({**discriminator, **self.discriminator_extra()})
        self.discriminator = self.tricks.wrap_discriminator(build(dkw, "model.discriminator"))
        self.g_opt_kw = self.tricks.optimizer_kwargs("g", dict(g_optimizer or {"lr": 2e-4, "betas": (0.5, 0.999)}))
        self.d_opt_kw = self.tricks.optimizer_kwargs("d", dict(d_optimizer or {"lr": 2e-4, "betas": (0.5, 0.999)}))
        self.grad_clip = grad_clip
        self.adv_weight = check_range("model", "adv_weight", adv_weight, 0.0)  # 0: no adversary (e.g. SRResNet)
        self.tricks.setup(self)
        self.last_logged: dict[str, float] = {}
        self.window = LossWindow(self.last_logged)
        self._direct_for = None  # the trainer `_direct_backward` / `_direct_step` were decided for
        self._direct_backward = self._direct_step = None  # None: Lightning's path; a list: callbacks to call

    def __setattr__(self, name, value):
        # Lightning sets `_current_fx_name` around every hook call (20+ times a batch); a plain attribute,
        # so nn.Module's parameter/buffer/module bookkeeping is skipped for it
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # ---- what a task supplies --------------------------------------------------------------------
    def generator_extra(self) -> dict:
        return {"shape": self.data_shape}

    def discriminator_extra(self) -> dict:
        return {"shape": self.data_shape}

    def unpack(self, batch):
        """(real, cond) from a data batch."""
        raise NotImplementedError

    def generate(self, cond, n: int, generator=None):
        raise NotImplementedError

    def d_inputs(self, x, cond):
        """The tensor D judges (conditional tasks concatenate the condition)."""
        return x

    def extra_g_loss(self, fake, real, cond):
        return None, {}

    # ---- the loop --------------------------------------------------------------------------------
    def configure_model(self):
        """GPU options on G, D and the trick modules (EMA copy); before the optimizers are built."""
        apply_gpu_options([self.generator, self.discriminator, self.tricks], self.channels_last, False)
        apply_gpu_options([self.generator, self.discriminator], False, self.compile_nets)

    def configure_optimizers(self):
        return _adam(self.generator.parameters(), self.g_opt_kw), _adam(self.discriminator.parameters(), self.d_opt_kw)

    def d_forward(self, x, cond, step: int):
        return self.discriminator(self.tricks.d_input(self.d_inputs(x, cond), step))

    def d_features(self, x, cond, step: int):
        return self.discriminator.features(self.tricks.d_input(self.d_inputs(x, cond), step))

    def _call_hooks(self, callbacks, hook: str, *args):
        """Callback hooks as Lightning calls them (same order, arguments and `_current_fx_name`)."""
        prev, self._current_fx_name = self._current_fx_name, hook
        for cb in callbacks:
            getattr(cb, hook)(self.trainer, self, *args)
        self._current_fx_name = prev

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
                opt._on_before_step()  # the manual loop's step counter (global_step) and profiler
            if listeners:
                self._call_hooks(listeners, "on_before_optimizer_step", opt.optimizer)
            opt.optimizer.step()
            if counted:
                opt._on_after_step()
        elif counted:
            opt.step()
        else:  # same precision/strategy path as LightningOptimizer.step, without advancing global_step
            self.trainer.strategy.optimizer_step(opt.optimizer, _noop)

    def training_step(self, batch, batch_idx):
        if self._direct_for is not self._trainer:  # once per fit: the callbacks and plugins are known by now
            self._direct_backward, self._direct_step = direct_paths(self.trainer, self)
            self._direct_for = self._trainer
        opt_g, opt_d = self.optimizers()
        step = self.global_step
        real, cond = self.unpack(to_channels_last(batch) if self.channels_last else batch)
        n = real.shape[0]
        loss_d = penalty = None
        for _ in range(self.tricks.d_steps(step, 1) if self.adv_weight else 0):
            with torch.no_grad():
                fake = self.generate(cond, n)
            out_real = self.d_forward(real, cond, step)
            out_fake = self.d_forward(fake, cond, step)
            real_t, fake_t = self.tricks.targets(torch.ones_like(out_real), torch.zeros_like(out_fake), step)
            loss_d = self.adv_loss.d(out_real, out_fake, real_t, fake_t)
            penalty = self.tricks.d_penalty(self, real, fake, cond, step)
            total_d = loss_d if penalty is None else loss_d + penalty
            opt_d.zero_grad(set_to_none=True)
            self._backward(total_d)
            self._step(opt_d, counted=False)
        k = self.tricks.g_steps(step, 1)
        for i in range(k):
            fake = self.generate(cond, n)
            extra, extra_logs = self.extra_g_loss(fake, real, cond)
            terms = [extra]
            if self.adv_weight:
                loss_g = self.adv_loss.g(self.d_forward(fake, cond, step))
                terms.append(self.tricks.g_loss(self, fake, real, cond, step))
                total_g = loss_g * self.adv_weight if self.adv_weight != 1.0 else loss_g
            else:
                loss_g = total_g = torch.zeros((), device=real.device)
            for term in terms:
                if term is not None:
                    total_g = total_g + term
            opt_g.zero_grad(set_to_none=True)
            self._backward(total_g)
            self._step(opt_g, counted=i == k - 1)
            self.tricks.after_g_step(self, step)
        logs = {"g_loss": loss_g, "g_total": total_g, **extra_logs}
        if loss_d is not None:
            logs["d_loss"] = loss_d
            with torch.no_grad():  # D's accuracy on the last D step (logit > 0 = "real"); read by the monitor
                logs["d_acc_real"] = torch.mean(out_real > 0, dtype=torch.float32)
                logs["d_acc_fake"] = torch.mean(out_fake <= 0, dtype=torch.float32)
            if penalty is not None:
                logs["d_penalty"] = penalty
        self._accumulate(logs)

    # ---- cheap logging: sums on device, one host sync per `trainer.log_every_n_steps` -------------
    def _accumulate(self, logs: dict):
        self.window.add(logs)
        trainer = self._trainer
        every = max(1, trainer.log_every_n_steps) if trainer is not None else 1
        step = self.global_step  # already counts this batch
        if step % every == 0 or (trainer is not None and trainer.fast_dev_run):
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

    def generate_samples(self, n: int, batch_size: int = 500, cond=None, seed: int = 12345) -> torch.Tensor:
        """n samples in data space on CPU, from the sampling generator in eval mode. Drawn from their own
        random stream, so evaluating never changes the training trajectory."""
        with self.eval_generator() as g, own_rng(seed, self.device):
            out = []
            for i in range(0, n, batch_size):
                c = None if cond is None else cond[i : i + batch_size].to(self.device)
                out.append(self.generate(c, min(batch_size, n - i), generator=g).float().cpu())
        return torch.cat(out)
