"""Seed-parallel training: S seeds of one GAN trained in one process as one batched model, through the one
loop (`gan_lab/tasks/adversarial.py`).

    python -m gan_lab.train model=gan_mlp data=toy2d_ring seeds=10      # seeds seed .. seed+9

Member k is the run `seed=<seed+k>` would be: its nets are built from that seed (the same initial weights),
it draws its latent codes from that run's random stream (member 0 from the process's own stream, the others
from one torch.Generator each, saved in checkpoints), and it sees that run's data order. Nothing is shared
but the arithmetic:
- `Stacked` holds one net's parameters and buffers with a leading member dimension (one nn.Parameter per
  tensor, so the optimizers, checkpoints and EMA see ordinary parameters) and runs the single-member net
  under `torch.func.vmap(functional_call)`: every layer, batch norm and minibatch statistic stays per member;
- the loop's tensors are the members' batches one after the other (S*B rows); the adversarial loss is
  taken per member (`MemberLoss`, a vector of S losses) and the loop's total is summed over the members,
  so each member's gradient is exactly its own (Adam is elementwise). Terms that tricks average over the
  whole S*B batch (penalties, AC-GAN's class loss) are means of per-sample values: added to each of the S
  member totals and summed, they give each member its own mean;
- a member whose loss becomes non-finite is recorded as diverged at that step, its losses leave the sum and
  its weights are held at zero from then on; the others go on (the run diverges when all have);
- each member writes what a normal run writes into `<run dir>/seed<k>/`: .hydra/ (its config: seed=<seed+k>,
  no seeds), metrics.json, metrics.csv, samples/ and checkpoints/last.ckpt, a checkpoint of a normal run
  (`gan-lab evaluate`, `gan-lab sample`, resume with seed=<seed+k> hydra.run.dir=<run dir>/seed<k>).

With S = 1 the member runs the single-member kernels (no vmap) and the run is bit-identical to `seed=<seed>`
on the CPU; with S > 1 batched matrix products sum in another order, so members match their single runs to
float rounding (tests/test_seeds.py states the tolerance). Refused, in one line each: models other than the
GAN task (gan_mlp, dcgan), data that is not held in memory, `model.grad_clip` (a norm over all members),
trainer devices > 1, and the tricks that mix members or that vmap cannot batch (`UNSUPPORTED_TRICKS`).
Tricks that draw random numbers (instance noise, label noise and flips, dropout, DiffAugment, WGAN-GP's
interpolation) draw them for all members at once from the process's stream: each member gets its own draws,
but not the numbers its single run would draw (S = 1 still is bit-identical).
"""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.func import functional_call, vmap

from gan_lab.atomic_io import atomic_write_bytes
from gan_lab.callbacks.monitor import MonitorCallback, grad_norm, optimizer_name
from gan_lab.data.base import ResumesAtPosition
from gan_lab.errors import ConfigError
from gan_lab.tasks.gan import GANTask

log = logging.getLogger("gan_lab")

# trick -> why it is refused with seeds=
UNSUPPORTED_TRICKS = {
    "feature_matching": "its loss compares D-feature means over the whole batch, which would mix the members",
    "unrolled": "it unrolls D with its own optimizer copy outside the batched nets",
    "spectral_norm": "its power iteration writes with out= (torch.nn.functional.normalize), which vmap cannot batch",
}
SEEDS_HELP = "allowed null (one run) or an integer >= 1"


# ---- the batched nets ---------------------------------------------------------------------------------
def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return module.get_submodule(path), leaf


class Stacked(nn.Module):
    """S nets of one architecture as one module: `inner` is the single-member net whose parameters and
    buffers carry a leading member dimension. Inputs are the members' rows one after the other (S*B x ...);
    member k's rows go through member k's weights."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        self.members = len(nets)
        self.inner = copy.deepcopy(nets[0])
        for name, _ in list(self.inner.named_parameters()):
            owner, leaf = _owner(self.inner, name)
            setattr(owner, leaf, nn.Parameter(torch.stack([n.get_parameter(name).detach() for n in nets])))
        for name, _ in list(self.inner.named_buffers()):
            owner, leaf = _owner(self.inner, name)
            setattr(owner, leaf, torch.stack([n.get_buffer(name) for n in nets]))
        for attr in ("z_dim", "shape"):  # what the task reads of its nets
            if hasattr(nets[0], attr):
                setattr(self, attr, getattr(nets[0], attr))
        # (name, owning module, attribute) of every tensor: read at each call (a module's .to() replaces its
        # buffers), without walking the module tree each time
        names = [n for n, _ in self.inner.named_parameters()] + [n for n, _ in self.inner.named_buffers()]
        self._refs = [(n, *_owner(self.inner, n)) for n in names]

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(owner, leaf) for name, owner, leaf in self._refs}

    def forward(self, *args):
        s = self.members
        if s == 1:  # the single-member kernels: bit-identical to the net itself
            return functional_call(self.inner, {k: v[0] for k, v in self._tensors().items()}, args)

        def one(tensors, *a):
            return functional_call(self.inner, tensors, a)

        split = [a.reshape(s, a.shape[0] // s, *a.shape[1:]) for a in args]
        out = vmap(one, randomness="different")(self._tensors(), *split)
        if isinstance(out, tuple):
            return tuple(o.reshape(-1, *o.shape[2:]) for o in out)
        return out.reshape(-1, *out.shape[2:])


class MemberLoss:
    """The adversarial loss per member: `d` and `g` return S losses, each member's own mean."""

    def __init__(self, base, members: int):
        self.base, self.members = base, members
        self.name, self.uses_targets = base.name, base.uses_targets

    def _split(self, t):
        return t.reshape(self.members, t.shape[0] // self.members, *t.shape[1:])

    def d(self, real, fake, real_t, fake_t):
        if self.members == 1:
            return self.base.d(real, fake, real_t, fake_t).reshape(1)
        return vmap(self.base.d)(*(self._split(t) for t in (real, fake, real_t, fake_t)))

    def g(self, fake):
        if self.members == 1:
            return self.base.g(fake).reshape(1)
        return vmap(self.base.g)(self._split(fake))


# ---- the task ---------------------------------------------------------------------------------------
class SeedParallelGAN(GANTask):
    """A GAN task whose nets are `Stacked` members (`seeds`: each member's seed); built by
    `build_seed_parallel`, which stacks the single-seed tasks it built first (`stack`)."""

    def __init__(self, *args, seeds: list[int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.seeds = [int(s) for s in seeds or [0]]
        self.members = len(self.seeds)
        self.register_buffer("alive", torch.ones(self.members, dtype=torch.bool))
        self.register_buffer("diverged_at", torch.full((self.members,), -1, dtype=torch.long))
        self._views: list[GANTask] = []
        self._streams: list[torch.Generator] = []
        self._member_sums = None  # per-member loss sums of the logging window (K x S) and their count
        self._member_n = 0
        self.member_logged: list[dict[str, float]] = [{} for _ in self.seeds]
        self.member_callbacks = None

    def stack(self, tasks: list[GANTask], streams: list[torch.Tensor]) -> None:
        """Take the members' nets (stacked) and their random streams after building (member 0: the process's)."""
        self.generator = Stacked([t.generator for t in tasks])
        self.discriminator = Stacked([t.discriminator for t in tasks])
        self.adv_loss = MemberLoss(self.adv_loss, self.members)
        self.tricks.setup(self)  # EMA: a stacked copy of the stacked generator
        self._views = list(tasks)  # a plain list: not submodules (their weights are the stacked ones)
        self._streams = []
        for state in streams[1:]:
            g = torch.Generator()
            g.set_state(state)
            self._streams.append(g)

    # ---- what the loop asks -------------------------------------------------------------------------
    def generate(self, cond, n: int, generator=None, z=None):
        if z is None:
            b = n // self.members
            zs = [torch.randn(b, self.z_dim, device=self.device)]
            zs += [torch.randn(b, self.z_dim, generator=g).to(self.device) for g in self._streams]
            z = torch.cat(zs) if len(zs) > 1 else zs[0]
        return super().generate(cond, n, generator, z)

    def _backward(self, loss):
        if loss.dim():  # the S member totals
            finite = torch.isfinite(loss.detach())
            if not bool(finite.all()):
                self._diverge(~finite)
            loss = torch.where(self.alive, loss, torch.zeros_like(loss)).sum()
        super()._backward(loss)

    def _diverge(self, which: torch.Tensor) -> None:
        new = which & self.alive
        if not bool(new.any()):
            return
        self.diverged_at[new] = self.global_step
        self.alive &= ~new
        dead = [self.seeds[i] for i in torch.nonzero(new).flatten().tolist()]
        log.warning("seed(s) %s diverged at step %d (non-finite loss); the other members go on", dead, self.global_step)
        if not bool(self.alive.any()):
            from gan_lab.tasks.loss_window import GANDiverged

            raise GANDiverged(f"every member diverged (the last at step {self.global_step})")

    def _step(self, opt, counted: bool):
        dead = None if bool(self.alive.all()) else ~self.alive
        if dead is not None:
            for group in opt.optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad[dead] = 0
        super()._step(opt, counted)
        if dead is not None:  # a diverged member is held at zero (finite, so it cannot reach the others' logs)
            with torch.no_grad():
                for m in self.modules():
                    if isinstance(m, Stacked):
                        for t in m._tensors().values():
                            t[dead] = 0
                for state in opt.optimizer.state.values():
                    for v in state.values():
                        if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == self.members:
                            v[dead] = 0

    def _d_accuracy(self, out_real, out_fake):
        """Each member's accuracy on its own samples (S values; the outputs are member-major)."""
        s = self.members
        return (out_real > 0).reshape(s, -1).float().mean(1), (out_fake <= 0).reshape(s, -1).float().mean(1)

    def _accumulate(self, logs: dict):
        """Per-member values (S losses; values pooled over the batch count for every member) kept per member
        for their metrics.json; the loop's window gets their mean over the members still training."""
        with torch.no_grad():
            vals = torch.stack([v.detach().float().reshape(-1).expand(self.members) for v in logs.values()])
            vals = torch.where(self.alive, vals, torch.zeros_like(vals))
            if self._member_sums is None or self._member_sums.shape != vals.shape:
                self._member_sums, self._member_n, self._member_keys = vals, 1, tuple(logs)
            else:
                self._member_sums, self._member_n = self._member_sums + vals, self._member_n + 1
            pooled = vals.sum(1) / self.alive.sum()
        if self._log_due():  # in the step, so the members' callbacks see this window at this batch's end
            self._flush_members()
        super()._accumulate(dict(zip(logs, pooled)))

    def _flush_members(self) -> None:
        if self._member_sums is None:
            return
        means = (self._member_sums / self._member_n).T.tolist()
        for k, row in enumerate(means):
            if self.alive[k]:
                self.member_logged[k] = {f"train/{key}": v for key, v in zip(self._member_keys, row)}
                self._views[k].last_logged.update(self.member_logged[k])  # what its monitor reads
                for lg in self.member_callbacks.loggers[k] if self.member_callbacks is not None else []:
                    lg.log_metrics(self.member_logged[k], step=self.global_step)
        self._member_sums, self._member_n = None, 0

    def on_train_end(self):
        super().on_train_end()
        self._flush_members()

    # ---- checkpoints: the run's own, and one per member as a normal run's -----------------------------
    def on_save_checkpoint(self, checkpoint):
        super().on_save_checkpoint(checkpoint)
        checkpoint["member_rng"] = [g.get_state() for g in self._streams]
        run_dir = Path(self.trainer.default_root_dir)
        for k in range(self.members):
            if self.alive[k]:  # a diverged member keeps its last good checkpoint
                data = io.BytesIO()
                torch.save(self.member_checkpoint(checkpoint, k), data)
                path = member_dir(run_dir, self.seeds[k]) / "checkpoints" / "last.ckpt"
                atomic_write_bytes(path, data.getvalue(), "checkpoint")  # makes the checkpoints directory

    def on_load_checkpoint(self, checkpoint):
        super().on_load_checkpoint(checkpoint)
        for g, state in zip(self._streams, checkpoint.get("member_rng", [])):
            g.set_state(state)

    def member_state(self, k: int, state: dict | None = None) -> dict:
        """Member k's weights under a single-seed task's names."""
        state = self.state_dict() if state is None else state
        prefixes = [name + "." for name, m in self.named_modules() if isinstance(m, Stacked)]
        out = {}
        for key, v in state.items():
            p = next((p for p in prefixes if key.startswith(p + "inner.")), None)
            if p is not None:
                out[p + key[len(p) + len("inner.") :]] = v[k]
            elif key not in ("alive", "diverged_at"):
                out[key] = v
        return out

    def member_checkpoint(self, checkpoint: dict, k: int) -> dict:
        """The checkpoint member k's single-seed run would have written at this step."""
        s = self.members

        def slice_opt(o):
            state = {i: {n: (v[k] if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == s else v)
                         for n, v in st.items()} for i, st in o["state"].items()}  # fmt: skip
            return {**o, "state": state}

        out = {key: v for key, v in checkpoint.items() if key != "member_rng"}
        if "callbacks" in checkpoint and self.member_callbacks is not None:  # its callbacks' states, as its own
            states = checkpoint["callbacks"]
            out["callbacks"] = {key: v for key, v in states.items() if key != self.member_callbacks.state_key}
            out["callbacks"].update(states.get(self.member_callbacks.state_key, {}).get("members", [{}] * s)[k])
        out["state_dict"] = self.member_state(k, checkpoint["state_dict"])
        if "optimizer_states" in checkpoint:
            out["optimizer_states"] = [slice_opt(o) for o in checkpoint["optimizer_states"]]
        out["hyper_parameters"] = dict(self._views[k].hparams)
        if k and "rng_state" in checkpoint:
            out["rng_state"] = {**checkpoint["rng_state"], "torch": self._streams[k - 1].get_state()}
        return out

    # ---- members as single-seed tasks (samples, metrics) -----------------------------------------------
    def member_views(self) -> list[GANTask]:
        """The members as normal GAN tasks holding their current weights (copies), on this task's device."""
        state = self.state_dict()
        for k, view in enumerate(self._views):
            view.load_state_dict(self.member_state(k, state))
            self._views[k] = view.to(self.device)
        return self._views

    def _refuse(self):
        raise members_refusal(self.members)

    def generate_samples(self, *args, **kwargs):
        self._refuse()

    def sample_panels(self, datamodule=None):
        self._refuse()


def members_refusal(members: int, what: str = "this checkpoint") -> ConfigError:
    """The one line for a seed-parallel run's own checkpoint where one run's checkpoint is needed."""
    return ConfigError(
        f"{what} holds {members} seed-parallel members (seeds={members}); evaluate or sample one member's "
        "checkpoint: <run dir>/seed<k>/checkpoints/last.ckpt"
    )


def member_dir(run_dir: Path, seed: int) -> Path:
    return Path(run_dir) / f"seed{seed}"


# ---- building -----------------------------------------------------------------------------------------
def check_seeds(cfg) -> int | None:
    """The number of members (None: a normal run); one ConfigError line for what seed-parallel runs refuse."""
    seeds = cfg.get("seeds")
    if seeds is None:
        return None
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds={seeds!r} is not a number of seeds; {SEEDS_HELP}")
    from hydra.utils import get_class

    target = str(cfg.model.get("_target_", ""))
    try:
        ok = issubclass(get_class(target), GANTask)
    except Exception:
        ok = False
    if not ok:
        name = cfg.model.get("name") or target
        raise ConfigError(
            f"seeds={seeds} trains GAN models only; model={name} is not one; allowed model=gan_mlp, model=dcgan"
        )
    if cfg.model.get("grad_clip"):
        raise ConfigError(
            f"seeds={seeds} with model.grad_clip={cfg.model.grad_clip}: the clipping norm would be taken over all "
            "members together; allowed model.grad_clip=null with seeds"
        )
    if cfg.model.get("channels_last") is True:
        raise ConfigError(
            f"model.channels_last=true is not supported with seeds={seeds} (the batched nets' weights have a member "
            "dimension, and NHWC order is defined for 4-D tensors); allowed model.channels_last=false or auto "
            "(off with seeds)"
        )
    if cfg.model.get("compile"):
        raise ConfigError(
            f"model.compile={cfg.model.compile} is not supported with seeds={seeds} (the batched nets run under "
            "vmap); allowed model.compile=false"
        )
    for name in cfg.get("trick") or {}:
        if name in UNSUPPORTED_TRICKS:
            raise ConfigError(f"trick={name} is not supported with seeds={seeds}: {UNSUPPORTED_TRICKS[name]}")
    devices = (cfg.get("trainer") or {}).get("devices", 1)
    if devices not in (1, "1", None, "auto") or (cfg.get("trainer") or {}).get("num_nodes", 1) not in (1, None):
        raise ConfigError(f"seeds={seeds} runs in one process; trainer.devices={devices!r} is refused; allowed 1")
    batch = (cfg.get("data") or {}).get("batch_size")
    pac = ((cfg.get("trick") or {}).get("pacgan") or {}).get("m")
    if pac and isinstance(batch, int) and batch % int(pac):
        raise ConfigError(
            f"trick.pacgan: data.batch_size={batch} is not divisible by m={pac} (with seeds= each member packs its "
            f"own batch); choose data.batch_size as a multiple of {pac}"
        )
    return seeds


def member_config(cfg, seed: int):
    """The config of member `seed` as a single run: seed=<seed>, no seeds."""
    from omegaconf import OmegaConf, open_dict

    out = copy.deepcopy(cfg)
    with open_dict(out):
        out.seed = seed
        out.seeds = None
    OmegaConf.set_readonly(out, None)
    return out


def build_seed_parallel(cfg):
    """(data module, SeedParallelGAN): every member's data module and task built as its own run would build
    them (so member k starts from seed+k's weights), then stacked; the process's random streams are left where
    member 0's run has them, and the training batches are the members' batches one after the other."""
    from gan_lab.build import build_data_and_task
    from gan_lab.data.base import InMemoryDataModule
    from gan_lab.rng import rng_state, set_rng_state

    n = check_seeds(cfg)
    seeds = [int(cfg.seed) + k for k in range(n)]
    tasks, streams = [], []
    dm, state0 = None, None
    for s in seeds:
        dm_k, task = build_data_and_task(member_config(cfg, s))
        if dm is None:
            if not isinstance(dm_k, InMemoryDataModule):
                raise ConfigError(
                    f"seeds={n} needs data held in memory; data={getattr(dm_k, 'name', '') or type(dm_k).__name__} "
                    "is not; allowed the embedded and in-memory data (toy2d_ring, toy2d_grid, digits, mnist, "
                    "stacked_digits, stacked_mnist, cifar10, cifar100)"
                )
            dm, state0 = dm_k, rng_state()
        tasks.append(task)
        streams.append(torch.get_rng_state())
    from gan_lab.build import build

    batched = {**dict(tasks[0].hparams), "_target_": "gan_lab.ensemble.SeedParallelGAN", "channels_last": False}
    task = build(batched, "model", seeds=seeds)
    task.stack(tasks, streams)
    set_rng_state(state0)
    dm.train_dataloader = _member_loader(dm, seeds)
    return dm, task


def _member_loader(dm, seeds: list[int]):
    from gan_lab.data.base import InMemoryDataModule

    def train_dataloader():
        base = InMemoryDataModule.train_dataloader(dm)  # member 0's batches (its checks, its position)
        return MemberBatches([base] + [base.reseeded(s % 2**31) for s in seeds[1:]])

    return train_dataloader


class MemberBatches(ResumesAtPosition):
    """Every member's training batch (its own data order), concatenated: S*B rows per step."""

    def __init__(self, members):
        self.members = members

    @property
    def position(self):  # the members share the run's position
        return self.members[0].position

    def __len__(self) -> int:
        return len(self.members[0])

    def __iter__(self):
        if len(self.members) == 1:
            yield from self.members[0]
            return
        for parts in zip(*self.members):
            if isinstance(parts[0], tuple):
                yield tuple(torch.cat(ts) for ts in zip(*parts))
            else:
                yield torch.cat(parts)


# ---- per-member callbacks and files ---------------------------------------------------------------------
class _MemberTrainer:
    """The trainer as one member's callbacks see it: its own run directory, loggers and callbacks."""

    def __init__(self, trainer, root: Path, loggers: list, callbacks: list):
        self._run_trainer, self.default_root_dir, self.loggers = trainer, str(root), loggers
        self.callbacks = callbacks

    def __getattr__(self, name):
        return getattr(self._run_trainer, name)


class MemberCallbacks(pl.Callback):
    """The run's sample, evaluation and monitor callbacks, one copy per member, called with the member as a
    normal task and a trainer whose run directory is `<run dir>/seed<k>` (pictures, metrics.csv,
    metrics.json). Each member's monitor gets that member's gradient norms and D accuracies, and checks
    that member's evaluations; the copies' states travel in the run's checkpoint and in each member's."""

    def __init__(self, callbacks: list, task: SeedParallelGAN, run_dir: Path, cfg, ckpt: str | None):
        from gan_lab.history import history_logger

        self.templates = callbacks
        self.run_dir, self.cfg, self.task = Path(run_dir), cfg, task
        self.dirs = [member_dir(run_dir, s) for s in task.seeds]
        self.per_member = [[copy.deepcopy(cb) for cb in callbacks] for _ in task.seeds]
        member_ckpts = [d / "checkpoints" / "last.ckpt" for d in self.dirs]
        self.loggers = [
            [history_logger(d, str(c) if ckpt and c.is_file() else None)] for d, c in zip(self.dirs, member_ckpts)
        ]
        task.member_callbacks = self

    def _due(self, step: int) -> bool:
        return any(getattr(cb, "every_n_steps", 0) and step % cb.every_n_steps == 0 for cb in self.templates)

    def _proxy(self, trainer, k: int) -> _MemberTrainer:
        return _MemberTrainer(trainer, self.dirs[k], self.loggers[k], self.per_member[k])

    def _each(self, trainer, hook: str, *args, sync: bool):
        views = self.task.member_views() if sync else self.task._views
        for k, view in enumerate(views):
            if not self.task.alive[k]:
                continue
            proxy = self._proxy(trainer, k)
            for cb in self.per_member[k]:
                getattr(cb, hook)(proxy, view, *args)

    def setup(self, trainer, pl_module, stage):
        for k, cbs in enumerate(self.per_member):
            for cb in cbs:
                cb.setup(self._proxy(trainer, k), self.task._views[k], stage)

    def state_dict(self) -> dict:
        return {"members": [{cb.state_key: st for cb in cbs if (st := cb.state_dict())} for cbs in self.per_member]}

    def load_state_dict(self, state_dict: dict) -> None:
        for cbs, states in zip(self.per_member, state_dict.get("members", [])):
            for cb in cbs:
                if cb.state_key in states:
                    cb.load_state_dict(states[cb.state_key])

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        """Each member's gradient norm of this optimizer's step, for the members' monitors."""
        monitors = [(k, cb) for k, cbs in enumerate(self.per_member) for cb in cbs if isinstance(cb, MonitorCallback)]
        monitors = [(k, cb) for k, cb in monitors if cb.grad_norms and self.task.alive[k]]
        key = optimizer_name(trainer, pl_module, optimizer) if monitors else None
        norms = grad_norm(optimizer, self.task.members) if key else None
        if norms is not None:
            for k, cb in monitors:
                cb.add_norm(key, norms[k])

    def on_train_start(self, trainer, pl_module):
        write_member_hydra(self.run_dir, self.cfg, self.task.seeds)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._each(trainer, "on_train_batch_end", outputs, batch, batch_idx, sync=self._due(trainer.global_step))

    def on_train_end(self, trainer, pl_module):
        self._each(trainer, "on_train_end", sync=True)
        for loggers in self.loggers:
            for lg in loggers:
                lg.save()

    def on_exception(self, trainer, pl_module, exception):
        for k, cbs in enumerate(self.per_member):
            for cb in cbs:
                cb.on_exception(self._proxy(trainer, k), self.task._views[k], exception)

    def teardown(self, trainer, pl_module, stage):
        for k, cbs in enumerate(self.per_member):
            for cb in cbs:
                cb.teardown(self._proxy(trainer, k), self.task._views[k], stage)

    def member_final(self, k: int) -> dict:
        out = {}
        for cb in self.per_member[k]:
            if hasattr(cb, "final"):
                out.update(cb.final())
        return out


def member_callbacks(callbacks: list, task, run_dir: Path, cfg, ckpt: str | None) -> list:
    """The run's callbacks with the sample, evaluation and monitor callbacks moved into one MemberCallbacks
    (seeds=); unchanged for a normal run."""
    if not isinstance(task, SeedParallelGAN):
        return callbacks
    from gan_lab.callbacks.evaluation import EvaluationCallback
    from gan_lab.callbacks.samples import SampleCallback

    moved = [cb for cb in callbacks if isinstance(cb, (EvaluationCallback, SampleCallback, MonitorCallback))]
    kept = [cb for cb in callbacks if cb not in moved]
    return [*kept, MemberCallbacks(moved, task, run_dir, cfg, ckpt)]


def write_member_hydra(run_dir: Path, cfg, seeds: list[int]) -> None:
    """<run dir>/seed<k>/.hydra: member k's config (seed=<seed+k>, no seeds) and the run's overrides with
    `seeds=` replaced by `seed=<seed+k>` (so `gan-lab compare` groups the members as seeds of one setup)."""
    import yaml
    from omegaconf import OmegaConf

    from gan_lab.jobs import override_key

    hydra_dir = Path(run_dir) / ".hydra"
    overrides = []
    if (hydra_dir / "overrides.yaml").is_file():
        overrides = [str(o) for o in yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) or []]
    kept = [o for o in overrides if override_key(o) not in ("seed", "seeds")]
    for s in seeds:
        out = member_dir(run_dir, s) / ".hydra"
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(member_config(cfg, s), resolve=True))
        (out / "overrides.yaml").write_text(yaml.safe_dump([*kept, f"seed={s}"]))
        if (hydra_dir / "hydra.yaml").is_file():
            (out / "hydra.yaml").write_text((hydra_dir / "hydra.yaml").read_text())


def write_members(task, run_dir: Path, metrics: dict) -> None:
    """seeds=: each member's metrics.json (its own status, losses and metrics) and, in the run's metrics,
    the members' statuses and the mean of each numeric metric over the completed members."""
    if not isinstance(task, SeedParallelGAN):
        return
    from gan_lab.train import write_metrics

    cbs = task.member_callbacks
    member_metrics = []
    for k, s in enumerate(task.seeds):
        m = {"status": metrics.get("status"), "steps": metrics.get("steps")}
        m.update({key: metrics.get(key) for key in ("wall_time_s", "total_wall_time_s")})  # the batched run's
        m.update({key.split("/", 1)[-1]: v for key, v in task.member_logged[k].items()})
        if cbs is not None:
            m.update(cbs.member_final(k))
        m.update({"seed": s, "seed_parallel": {"members": task.members, "member": k, "run_dir": ".."}})
        if not task.alive[k]:
            step = int(task.diverged_at[k])
            m.update({"status": "diverged", "steps": step, "error": f"non-finite loss at step {step}"})
        elif metrics.get("error"):
            m["error"] = metrics["error"]
        write_metrics(member_dir(run_dir, s), m)
        member_metrics.append(m)
    done = [m for m in member_metrics if m["status"] == "completed"]
    keys = {k for m in done for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key in sorted(keys - {"seed", "steps", "wall_time_s", "total_wall_time_s"}):
        vals = [m[key] for m in done if isinstance(m.get(key), (int, float))]
        if len(vals) == len(done):
            metrics[key] = sum(vals) / len(vals)
    metrics["seeds"] = {str(s): m["status"] for s, m in zip(task.seeds, member_metrics)}
    alarms = [{**a, "seed": s} for s, m in zip(task.seeds, member_metrics) for a in m.get("alarms", [])]
    if any("alarms" in m for m in member_metrics):  # every member's alarms, each with its seed
        metrics["alarms"] = sorted(alarms, key=lambda a: (a["step"], a["seed"]))
