"""Training throughput of gan_lab's loop vs a hand-written PyTorch loop, same nets/batch/data/seed.

    python scripts/bench_train.py                          # mlp and dcgan on the CPU: bare, default, compiled
    python scripts/bench_train.py --case mlp --config default --steps 1500 --repeats 5
    python scripts/bench_train.py --case dcgan64 --device cuda   # DCGAN 64x64 (ngf = ndf = 64), batch 128

Configurations of the gan_lab side (`--config`, several allowed), each against the same plain loop:
  bare      the loop alone: no external logger, no progress bar, no callback (pictures, checkpoints,
            periodic metrics, training monitor), as the plain loop has none of them
  default   what `python -m gan_lab.train` runs: every default callback at its default cadence
            (checkpoints, pictures and metrics every 500 steps, gradient norms, the progress bar) and
            the default W&B logger (offline)
  compiled  the loop alone with `model.compile=step` (G's and D's losses with their forward and backward
            passes, and both optimizer steps, through torch.compile); its compilation is in the warm-up
All loops run in this process, alternating (plain, then each configuration, then plain again, ...), and
the median of each is compared; warm-up steps are excluded (at least one periodic event of each callback
lies in the timed steps when they are >= 500). Besides wall-clock steps/s, the CPU time of the process
per step (every thread of it) is printed: on a shared machine it moves less with other jobs' load than
the wall clock (CPU runs only; on a GPU the wall clock counts).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from gan_lab.config import CONF_DIR

ROOT = Path(__file__).resolve().parents[1]
# The loop alone: no external logger, no progress bar; the configured callbacks are dropped in `compose` (the
# run's own last.ckpt at its end, written after the timed steps, stays: gan_lab.train always adds it).
BARE = ["logger=none", "trainer.enable_progress_bar=false"]
CONFIGS = {  # name: (overrides, keep the default callbacks, target ratio by case (default: the case's))
    "bare": (BARE, False, {}),
    "default": ([], True, {"mlp": 0.90, "dcgan": 0.97}),
    "compiled": ([*BARE, "model.compile=step"], False, {"mlp": 1.30, "dcgan": 1.0}),
}
CASES = {  # name: (overrides, target ratio, default timed steps on the CPU)
    "mlp": (["model=gan_mlp", "data=toy2d_ring"], 0.90, 1500),
    "dcgan": (["model=dcgan", "data=digits"], 0.95, 60),
    # Radford 2015 at 64x64: ngf = ndf = 64, batch 128 (the digits upscaled to 64 px)
    "dcgan64": (
        [
            "model=dcgan",
            "data=digits",
            "data.size=64",
            "data.batch_size=128",
            "model.generator.ngf=64",
            "model.discriminator.ndf=64",
        ],
        0.95,
        10,
    ),
}


def compose(overrides, keep_callbacks: bool = False):
    """The composed config; without `keep_callbacks` every configured callback is dropped."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=overrides)
    if not keep_callbacks:
        with open_dict(cfg):
            for name in list(cfg.get("callbacks") or {}):
                cfg.callbacks[name] = None
    return cfg


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Timer(pl.Callback):
    """Wall and CPU time from the start of batch `warmup` to the end of batch `warmup + steps`."""

    def __init__(self, warmup: int, steps: int, device: str):
        self.warmup, self.steps, self.device = warmup, steps, device
        self.t0 = self.t1 = self.c0 = self.c1 = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            _sync(self.device)
            self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.warmup + self.steps:
            _sync(self.device)
            self.t1, self.c1 = time.perf_counter(), time.process_time()


def device_overrides(device: str) -> list[str]:
    # on a GPU the data lives there too (both loops), so neither pays a host-to-device copy per batch
    return ["trainer.accelerator=gpu", "data.on_device=true"] if device == "cuda" else ["trainer.accelerator=cpu"]


def run_gan_lab(overrides, warmup, steps, tmp: Path, device: str = "cpu", config: str = "bare"):
    """(steps/s, CPU seconds per step) of the real entry point's objects in configuration `config`."""
    from gan_lab.train import _finish_wandb, build_objects

    extra, keep_callbacks, _ = CONFIGS[config]
    steps_override = f"trainer.max_steps={warmup + steps}"
    cfg = compose([*overrides, *extra, *device_overrides(device), steps_override], keep_callbacks)
    dm, task, trainer = build_objects(cfg, tmp)
    timer = Timer(warmup, steps, device)
    trainer.callbacks.append(timer)
    try:
        trainer.fit(task, datamodule=dm)
    finally:
        _finish_wandb()  # the next run starts its own W&B run
    return steps / (timer.t1 - timer.t0), (timer.c1 - timer.c0) / steps


def run_plain(overrides, warmup, steps, tmp: Path, device: str = "cpu"):
    """The same nets, optimizers, loss and batches in the loop one would write by hand."""
    import torch.nn.functional as F

    from gan_lab.train import build_objects

    cfg = compose([*overrides, *BARE, *device_overrides(device)])
    dm, task, _ = build_objects(cfg, tmp)
    G, D = task.generator.to(device), task.discriminator.to(device)
    opt_g, opt_d = task.configure_optimizers()
    x_all = dm.split_tensors("train")[0].to(device)
    bs, z_dim = dm.batch_size, task.z_dim
    gen = torch.Generator().manual_seed(0)
    perm, pos = torch.randperm(len(x_all), generator=gen).to(device), 0
    t0 = c0 = None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
        if pos + bs > len(perm):
            perm, pos = torch.randperm(len(x_all), generator=gen).to(device), 0
        real = x_all[perm[pos : pos + bs]]
        pos += bs
        with torch.no_grad():
            fake = G(torch.randn(bs, z_dim, device=device))
        out_r, out_f = D(real), D(fake)
        loss_d = F.binary_cross_entropy_with_logits(out_r, torch.ones_like(out_r)) + F.binary_cross_entropy_with_logits(
            out_f, torch.zeros_like(out_f)
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        fake = G(torch.randn(bs, z_dim, device=device))
        loss_g = F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    _sync(device)
    return steps / (time.perf_counter() - t0), (time.process_time() - c0) / steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=[*CASES, "all"], default="all", help="all: mlp and dcgan (the CPU cases)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default per case)")
    p.add_argument("--warmup", type=int, default=None, help="untimed first steps (default: steps // 10, >= 10)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--config", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                   help="gan_lab configurations to time against the plain loop (default: all three)")
    args = p.parse_args(argv)
    import logging
    import os
    import tempfile
    import warnings

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is false", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("WANDB_SILENT", "true")
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    ok = True
    where = torch.cuda.get_device_name() if args.device == "cuda" else torch.backends.cpu.get_cpu_capability()
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.device}: {where}, load average {load}")
    for name in ["mlp", "dcgan"] if args.case == "all" else [args.case]:
        overrides, case_target, default_steps = CASES[name]
        steps = args.steps or (default_steps if args.device == "cpu" else 500)
        warmup = args.warmup if args.warmup is not None else max(10, steps // 10)
        plain, lab = [], {c: [] for c in args.config}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                torch.manual_seed(r)
                plain.append(run_plain(overrides, warmup, steps, Path(tmp) / f"p{r}", args.device))
                for c in args.config:
                    torch.manual_seed(r)
                    lab[c].append(run_gan_lab(overrides, warmup, steps, Path(tmp) / f"{c}{r}", args.device, c))
        p_rate, p_cpu = statistics.median(v[0] for v in plain), statistics.median(v[1] for v in plain)
        print(f"{name:7s} plain    {p_rate:8.2f} steps/s, CPU {p_cpu * 1e3:7.2f} ms/step  "
              f"[{', '.join(f'{v[0]:.2f}' for v in plain)}]  ({args.repeats} alternating repeats of {steps} "
              f"steps after {warmup})")  # fmt: skip
        for c, runs in lab.items():
            target = CONFIGS[c][2].get(name, case_target)
            l_rate, l_cpu = statistics.median(v[0] for v in runs), statistics.median(v[1] for v in runs)
            ratio, cpu_ratio = l_rate / p_rate, p_cpu / l_cpu
            ok &= ratio >= target or cpu_ratio >= target
            print(
                f"{'':7s} {c:8s} {l_rate:8.2f} steps/s, CPU {l_cpu * 1e3:7.2f} ms/step  "
                f"[{', '.join(f'{v[0]:.2f}' for v in runs)}]  ratio to plain: wall {ratio:.3f}, CPU {cpu_ratio:.3f} "
                f"(target >= {target:.2f}) {'OK' if max(ratio, cpu_ratio) >= target else 'BELOW TARGET'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
