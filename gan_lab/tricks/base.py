"""The trick interface: named hooks the adversarial loop calls, and their composition.

A trick overrides only the hooks it needs. `TrickSet` calls each hook only on the tricks that override
it, so an empty set costs nothing in the loop. Two tricks that claim the same exclusive `resource`
(for example both rewriting the label values) are rejected with a message naming both.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import ConfigError, check_range

HOOKS = (
    "discriminator_kwargs",  # (kwargs) -> kwargs, before D is built: width, dropout, packing, mbstd
    "wrap_discriminator",  # (D) -> D, after it is built: spectral norm
    "optimizer_kwargs",  # (which 'g'|'d', kwargs) -> kwargs: learning rates, betas
    "setup",  # (task) once the nets exist: EMA copy
    "targets",  # (real_t, fake_t, step) -> (real_t, fake_t): smoothing, noise, flips
    "d_input",  # (x, step) -> x, on every D input (real and fake, D and G steps)
    "d_labels",  # (y, step) -> y, the class labels of D's input, regrouped like it (PacGAN packing)
    "d_penalty",  # (task, real, fake, cond, step) -> scalar added to the D loss
    "g_loss",  # (task, fake, real, cond, step) -> scalar added to the G loss
    "g_critic",  # (task, fake, real, cond, step) -> (logits, aux, G-loss term): D G's loss is taken against
    "d_steps",  # (step, n) -> n: D updates this batch
    "g_steps",  # (step, n) -> n: G updates this batch
    "after_g_step",  # (task, step): EMA update
    "sampling_generator",  # (G) -> module used for samples and metrics
    "logs",  # () -> {name: scalar tensor} logged with G's loss every step (a trick's diagnostics)
)


def grad_norm_sq(out, x):
    """Per-sample ||d out / d x||^2, differentiable (for gradient penalties)."""
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.flatten(1).pow(2).sum(1)


class Trick:
    """Base class. `name` is the config name; `resources` are exclusive claims (see module doc);
    `needs_targets` marks label tricks that only work with target-based losses."""

    name = ""
    paper = ""
    resources: frozenset[str] = frozenset()
    needs_targets = False
    order = 0  # hooks run in ascending order: label flips after label values, PacGAN packing last

    def check(self, param: str, value, low=None, high=None, low_open=False, high_open=False):
        """Range-check a parameter (one-line ConfigError) and record the range for `gan-lab tricks`."""
        vars(self).setdefault("ranges", {})[param] = (low, high, low_open, high_open)
        return check_range(f"trick.{self.name}", param, value, low, high, low_open, high_open)

    # default no-op hooks (TrickSet only calls overridden ones)
    def discriminator_kwargs(self, kw: dict) -> dict:
        return kw

    def wrap_discriminator(self, d: nn.Module) -> nn.Module:
        return d

    def optimizer_kwargs(self, which: str, kw: dict) -> dict:
        return kw

    def setup(self, task) -> None:
        pass

    def targets(self, real_t, fake_t, step):
        return real_t, fake_t

    def d_input(self, x, step):
        return x

    def d_labels(self, y, step):
        return y

    def d_penalty(self, task, real, fake, cond, step):
        return None

    def g_loss(self, task, fake, real, cond, step):
        return None

    def g_critic(self, task, fake, real, cond, step):
        return None

    def d_steps(self, step: int, n: int) -> int:
        return n

    def g_steps(self, step: int, n: int) -> int:
        return n

    def after_g_step(self, task, step: int) -> None:
        pass

    def sampling_generator(self, g: nn.Module) -> nn.Module:
        return g

    def logs(self) -> dict:
        return {}

    # trick state travels in the checkpoint (schedules, counters, EMA weights are modules/buffers)
    def trick_state(self) -> dict:
        return {}

    def load_trick_state(self, state: dict) -> None:
        pass


class TrickSet(nn.Module):
    """Ordered tricks with per-hook dispatch lists. A module so that tricks holding modules (EMA) are
    moved with the task and saved in its checkpoint."""

    def __init__(self, tricks: list[Trick], loss=None):
        super().__init__()
        self.tricks = sorted(tricks, key=lambda t: t.order)
        self.modules_ = nn.ModuleList([t for t in self.tricks if isinstance(t, nn.Module)])
        claimed: dict[str, str] = {}
        for t in self.tricks:
            for r in t.resources:
                if r in claimed:
                    raise ConfigError(f"trick={claimed[r]} and trick={t.name} cannot be combined: both set {r}")
                claimed[r] = t.name
            if t.needs_targets and loss is not None and not loss.uses_targets:
                raise ConfigError(
                    f"trick={t.name} needs a loss with real/fake targets; model.loss={loss.name} has "
                    "none (allowed: minimax, non_saturating, least_squares)"
                )
        self._by_hook = {h: [t for t in self.tricks if getattr(type(t), h) is not getattr(Trick, h)] for h in HOOKS}
        self.names = [t.name for t in self.tricks]

    def has(self, hook: str) -> bool:
        return bool(self._by_hook[hook])

    def discriminator_kwargs(self, kw):
        for t in self._by_hook["discriminator_kwargs"]:
            kw = t.discriminator_kwargs(kw)
        return kw

    def wrap_discriminator(self, d):
        for t in self._by_hook["wrap_discriminator"]:
            d = t.wrap_discriminator(d)
        return d

    def optimizer_kwargs(self, which, kw):
        for t in self._by_hook["optimizer_kwargs"]:
            kw = t.optimizer_kwargs(which, kw)
        return kw

    def setup(self, task):
        for t in self._by_hook["setup"]:
            t.setup(task)

    def targets(self, real_t, fake_t, step):
        for t in self._by_hook["targets"]:
            real_t, fake_t = t.targets(real_t, fake_t, step)
        return real_t, fake_t

    def d_input(self, x, step):
        for t in self._by_hook["d_input"]:
            x = t.d_input(x, step)
        return x

    def d_labels(self, y, step):
        for t in self._by_hook["d_labels"]:
            y = t.d_labels(y, step)
        return y

    def _sum(self, hook, *args):
        total = None
        for t in self._by_hook[hook]:
            v = getattr(t, hook)(*args)
            if v is not None:
                total = v if total is None else total + v
        return total

    def d_penalty(self, task, real, fake, cond, step):
        return self._sum("d_penalty", task, real, fake, cond, step)

    def g_loss(self, task, fake, real, cond, step):
        return self._sum("g_loss", task, fake, real, cond, step)

    def g_critic(self, task, fake, real, cond, step):
        """(logits, auxiliary output, term) for G's loss from the trick claiming `g_critic` (one at most: an
        exclusive resource), or None: the task's current D. logits/auxiliary are D's outputs on `fake` that G's
        loss is taken against; term (a scalar or None) is added to G's loss of this G update."""
        for t in self._by_hook["g_critic"]:
            return t.g_critic(task, fake, real, cond, step)
        return None

    def d_steps(self, step, n=1):
        for t in self._by_hook["d_steps"]:
            n = t.d_steps(step, n)
        return n

    def g_steps(self, step, n=1):
        for t in self._by_hook["g_steps"]:
            n = t.g_steps(step, n)
        return n

    def after_g_step(self, task, step):
        for t in self._by_hook["after_g_step"]:
            t.after_g_step(task, step)

    def sampling_generator(self, g):
        for t in self._by_hook["sampling_generator"]:
            g = t.sampling_generator(g)
        return g

    def logs(self) -> dict:
        return {k: v for t in self._by_hook["logs"] for k, v in t.logs().items()}

    def trick_state(self) -> dict:
        return {t.name: t.trick_state() for t in self.tricks}

    def load_trick_state(self, state: dict) -> None:
        for t in self.tricks:
            if t.name in state:
                t.load_trick_state(state[t.name])


def build_tricks(specs, loss=None) -> TrickSet:
    """Instantiate tricks from `{name: {_target_: ..., **params}}` (Hydra's multi-select node) or a list."""
    from gan_lab.build import build

    if not specs:
        return TrickSet([], loss)
    items = specs.items() if isinstance(specs, dict) else [(s.get("name", ""), s) for s in specs]
    tricks = []
    for name, spec in items:
        if not isinstance(spec, dict) or "_target_" not in spec:
            raise ConfigError(
                f"trick.{name} parameters are set but {name} is not a selected trick; add it to trick=[...] "
                "(each conf/trick/<name>.yaml names its class)"
            )
        trick = build(_current_target(name, spec), f"trick.{name}")
        trick.name = name or trick.name
        tricks.append(trick)
    return TrickSet(tricks, loss)


# Before one module per trick, tricks lived in grouped modules; checkpoints written then name those targets.
_GROUPED_MODULES = ("discriminator", "labels", "optim", "regularizers", "schedule")


def _current_target(name: str, spec: dict) -> dict:
    """`gan_lab.tricks.<group>.<Class>` in an older checkpoint's config -> `gan_lab.tricks.<name>.<Class>`."""
    module, _, cls = str(spec["_target_"]).rpartition(".")
    if module in {f"gan_lab.tricks.{g}" for g in _GROUPED_MODULES}:
        return {**spec, "_target_": f"gan_lab.tricks.{name}.{cls}"}
    return spec
