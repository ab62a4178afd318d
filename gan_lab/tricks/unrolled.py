"""Unrolled GAN (Metz et al. 2017): G's loss is taken against D unrolled `steps` optimizer steps ahead.

    gan-lab train experiment=unrolled_stacked_d4 trick=[unrolled] trick.unrolled.steps=5

Each G update copies D's parameters and its optimizer's state, takes `steps` D updates on the current real
batch and the G update's fakes with the same optimizer rule (Adam or SGD, with D's learning rate and state),
and computes G's loss on that unrolled D (`torch.func.functional_call`; D itself is not changed). With
`second_order=true` (the paper's main results) the unrolled updates are differentiated through, so G's
gradient anticipates how D would react; `second_order=false` detaches them (cheaper: G sees only the final
unrolled D). D's own update is unchanged.

The paper's surrogate objective is the whole GAN value function at the unrolled D, f(G, D_k(G)), real term
included: with second order the real samples' term depends on G through D_k's parameters (the released 2-D
demo, poolio/unrolled_gan, minimises exactly that). So with `real_term=true` (the default) G's loss adds
-(D's loss on the real batch at D_k), the real part of D's loss (`AdversarialLoss.d_real`), weighted like G's
adversarial loss; its first-order gradient is zero, so it changes only the second-order path.
`real_term=false` takes G's loss on the fakes alone. The unrolled D loss is the run's D loss with the label tricks and
D-input tricks (noise, DiffAugment, packing) through the task's own D call; D penalties (R1, gradient penalty)
and AC-GAN's class loss are not part of it. Cost per G update: `steps` extra D forward/backward passes (twice
that with second_order, which also keeps their graphs for G's backward).

`log_every=N` (default 0: off) splits G's adversarial gradient every N-th G update and logs it with G's loss:
`train/unrolled_share` = |g_full - g_first| / |g_first|, the size of the part that comes through the unrolled
updates (and the real term) relative to the gradient against the unrolled D held fixed, and
`train/unrolled_cos` = cos(g_full, g_first) (below 0: the unrolled path reverses G's direction). g_full is the
second-order gradient whether or not the run trains with it. Each split is logged until the next one (set N to
trainer.log_every_n_steps to log one per window); it costs two extra G backward passes, and with first order
one second-order unroll."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from gan_lab.errors import ConfigError
from gan_lab.rng import replay_rng, rng_state
from gan_lab.tricks.base import Trick


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt with a finite derivative at 0 (where Adam's second moment is still 0)."""
    pos = v > 0
    return torch.where(pos, v.clamp_min(1e-30).sqrt(), torch.zeros_like(v))


def _optimizer_rule(optimizer: torch.optim.Optimizer):
    if type(optimizer) is torch.optim.Adam:
        return "adam"
    if type(optimizer) is torch.optim.SGD:
        return "sgd"
    raise ConfigError(f"trick=unrolled: D's optimizer {type(optimizer).__name__} cannot be unrolled; allowed Adam, SGD")


def unroll(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[dict], torch.Tensor],
    steps: int,
    create_graph: bool = True,
) -> dict[str, torch.Tensor]:
    """`module`'s parameters after `steps` updates of `optimizer`'s rule on `loss_fn(params)`, starting from the
    module's parameters and the optimizer's current state; neither is changed. With create_graph the result
    is differentiable with respect to whatever `loss_fn` depends on besides the parameters (G's samples)."""
    rule = _optimizer_rule(optimizer)
    # the parameters D's optimizer updates (during a G step D's may have requires_grad off: not a criterion)
    by_param = {p: n for n, p in module.named_parameters()}
    group_of, state = {}, {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p in by_param:
                group_of[by_param[p]] = group
                state[by_param[p]] = optimizer.state.get(p, {})
    if not group_of:
        raise ConfigError("trick=unrolled: the optimizer given does not update the discriminator's parameters")
    names = [n for n, _ in module.named_parameters() if n in group_of]
    fixed = {n: p for n, p in module.named_parameters() if n not in group_of}
    params = {n: p.detach().requires_grad_(True) for n, p in module.named_parameters() if n in group_of}
    if rule == "adam":
        for g in {id(g): g for g in group_of.values()}.values():
            if g.get("amsgrad") or g.get("maximize"):
                raise ConfigError(
                    "trick=unrolled: Adam with amsgrad or maximize cannot be unrolled; allowed plain Adam"
                )
        mom = {n: state[n]["exp_avg"].detach() if "exp_avg" in state[n] else torch.zeros_like(params[n]) for n in names}
        sq = {
            n: state[n]["exp_avg_sq"].detach() if "exp_avg_sq" in state[n] else torch.zeros_like(params[n])
            for n in names
        }
        t0 = {n: float(state[n]["step"]) if "step" in state[n] else 0.0 for n in names}
    else:
        buf = {n: state[n].get("momentum_buffer") for n in names}
        buf = {n: None if b is None else b.detach() for n, b in buf.items()}
    for k in range(steps):
        loss = loss_fn(params)
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=create_graph, allow_unused=True)
        new = {}
        for n, g in zip(names, grads):
            p, group = params[n], group_of[n]
            if g is None:
                g = torch.zeros_like(p)
            if group.get("weight_decay"):
                g = g + group["weight_decay"] * p
            if rule == "adam":
                b1, b2 = group["betas"]
                t = t0[n] + k + 1
                mom[n] = b1 * mom[n] + (1 - b1) * g
                sq[n] = b2 * sq[n] + (1 - b2) * g * g
                denom = _safe_sqrt(sq[n]) / math.sqrt(1 - b2**t) + group["eps"]
                new[n] = p - (group["lr"] / (1 - b1**t)) * mom[n] / denom
            else:
                momentum = group.get("momentum", 0.0)
                if momentum:
                    b = buf[n]
                    b = g if b is None else momentum * b + (1 - group.get("dampening", 0.0)) * g
                    buf[n] = b if create_graph else b.detach()
                    g = g + momentum * b if group.get("nesterov") else b
                new[n] = p - group["lr"] * g
            if not create_graph:
                new[n] = new[n].detach().requires_grad_(True)
                if rule == "adam":
                    mom[n], sq[n] = mom[n].detach(), sq[n].detach()
        params = new
    return {**fixed, **params}


class _DOutputs(nn.Module):
    """`task.d_outputs` as a module call, so that `functional_call` can run it with other D parameters (the
    task's own D input path: discriminator_input, the D-input tricks, packing, class labels)."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def forward(self, x, cond, step: int):
        return self.task.d_outputs(x, cond, step)


class Unrolled(Trick):
    name, paper = "unrolled", "Metz 2017 (Unrolled GAN)"
    resources = frozenset({"g_critic"})
    ALLOWED = {  # for `gan-lab tricks`
        "second_order": "true, false",
        "real_term": "true, false",
        "log_every": "0 (off) or an integer > 0",
    }

    def __init__(self, steps: int = 5, second_order: bool = True, real_term: bool = True, log_every: int = 0):
        self.steps = int(self.check("steps", steps, 1, 100))
        for key, value in (("second_order", second_order), ("real_term", real_term)):
            if not isinstance(value, bool):
                raise ConfigError(f"trick.unrolled.{key}={value!r} must be a boolean; allowed true, false")
        if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 0:
            raise ConfigError(
                f"trick.unrolled.log_every={log_every!r} must be an integer >= 0; allowed 0 (off) or every how many "
                "G updates to split G's gradient"
            )
        self.second_order, self.real_term, self.log_every = second_order, real_term, log_every
        self._split: dict[str, torch.Tensor] | None = None  # the last gradient split, logged until the next

    def g_critic(self, task, fake, real, cond, step):
        """(logits, auxiliary or None, real term or None): D's outputs on `fake` for G's loss, from D unrolled
        `steps` updates ahead, and the value function's real term at that D (second order with real_term)."""
        d = task.discriminator
        opt = task.optimizers()[1]
        opt = getattr(opt, "optimizer", opt)  # Lightning's wrapper -> the torch optimizer
        call = _DOutputs(task)
        # batch-norm statistics and spectral-norm vectors of D are updated on copies
        buffers = {f"task.discriminator.{n}": b.clone() for n, b in d.named_buffers()}

        def outputs(params, x):
            named = {f"task.discriminator.{n}": p for n, p in params.items()}
            return functional_call(call, (named, buffers), (x, cond, step))

        def unrolled(second_order: bool) -> dict[str, torch.Tensor]:
            inner_fake = fake if second_order else fake.detach()

            def d_loss(params):
                out_real, out_fake = outputs(params, real)[0], outputs(params, inner_fake)[0]
                real_t, fake_t = task.tricks.targets(torch.ones_like(out_real), torch.zeros_like(out_fake), step)
                return task.adv_loss.d(out_real, out_fake, real_t, fake_t)

            return unroll(d, opt, d_loss, self.steps, create_graph=second_order)

        def real_term(params):  # the value function's real term at D_k (see the module doc)
            out_real = outputs(params, real)[0]
            real_t = task.tricks.targets(torch.ones_like(out_real), torch.zeros_like(out_real), step)[0]
            return -task.adv_loss.d_real(out_real, real_t) * task.adv_weight

        due = bool(self.log_every) and (self._split is None or step % self.log_every == 0)
        # the random state the split's extra passes start from: first order replays the whole unroll, second
        # order only D's pass on the fakes
        replay = rng_state() if due and not self.second_order else None
        params = unrolled(self.second_order)
        term = real_term(params) if self.second_order and self.real_term else None
        if due and self.second_order:
            replay = rng_state()
        out = outputs(params, fake)
        if due:
            # G's adversarial loss with the unrolled updates differentiated through (full) and without (first); the
            # extra passes replay the random draws (instance noise, DiffAugment, label noise) of the passes they mirror
            if self.second_order:
                full = task.adv_loss.g(out[0]) * task.adv_weight
                if term is not None:
                    full = full + term
                with replay_rng(replay):
                    first = task.adv_loss.g(outputs({n: p.detach() for n, p in params.items()}, fake)[0])
                first = first * task.adv_weight
            else:
                first = task.adv_loss.g(out[0]) * task.adv_weight
                with replay_rng(replay):
                    so = unrolled(True)
                    full = task.adv_loss.g(outputs(so, fake)[0]) * task.adv_weight
                    if self.real_term:
                        full = full + real_term(so)
            self._split = _gradient_split(full, first, [p for p in task.generator.parameters() if p.requires_grad])
        return (*out, term)

    def logs(self) -> dict:
        """With log_every: the last split of G's gradient (see `_gradient_split`), held between computations."""
        return self._split or {}


def _gradient_split(full: torch.Tensor, first: torch.Tensor, params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """How much of G's gradient comes through the unrolled updates: `unrolled_share` = |g_full - g_first| /
    |g_first| and `unrolled_cos` = cos(g_full, g_first), where g_first is the gradient of `first` (G's loss
    against the unrolled D taken as fixed) and g_full that of `full` (through the unrolled updates, real term
    included). Graphs are kept: G's own backward follows."""

    def flat(loss):
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return torch.cat([torch.zeros_like(p).flatten() if g is None else g.flatten() for p, g in zip(params, grads)])

    g_full, g_first = flat(full), flat(first)
    share = (g_full - g_first).norm() / g_first.norm().clamp_min(1e-12)
    cos = torch.nn.functional.cosine_similarity(g_full, g_first, dim=0)
    return {"unrolled_share": share.detach(), "unrolled_cos": cos.detach()}
