"""Training throughput of gan_lab's loop vs a hand-written PyTorch loop, same nets/batch/data/seed.

    python scripts/bench_train.py                          # mlp and dcgan on the CPU, ratios printed
    python scripts/bench_train.py --case mlp --steps 1500 --repeats 5
    python scripts/bench_train.py --case dcgan64 --device cuda   # DCGAN 64x64 (ngf = ndf = 64), batch 128

Both loops run in this process, alternating (plain, gan_lab, plain, gan_lab, ...), and the median
steps/s of each is compared; warm-up steps are excluded. The gan_lab side is the real entry point's
objects (`gan_lab.train.build_objects`) with the default trainer and the loop's own logging (one host
sync per trainer.log_every_n_steps); external loggers, progress bar and every callback (pictures,
checkpoints, periodic metrics, the training monitor) are off, as the plain loop has none of them
(`--callbacks` keeps the default callbacks but the progress bar, to see what they cost).
Besides wall-clock steps/s, the CPU time of the process per step is printed: on a shared machine it
moves less with other jobs' load than the wall clock (CPU runs only; on a GPU the wall clock counts).
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
# The loop alone: no external logger, no progress bar, no checkpoints; callbacks are dropped in `compose`.
BARE = ["logger=none", "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false"]
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
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        for name in list(cfg.get("callbacks") or {}):
            if not keep_callbacks or name == "progress":  # no progress bar either way (a terminal costs too)
                cfg.callbacks[name] = None
        if keep_callbacks:  # the checkpoint callback is kept: Lightning wants checkpointing on with it
            cfg.trainer.enable_checkpointing = cfg.callbacks.get("checkpoint") is not None
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


def run_gan_lab(overrides, warmup, steps, tmp: Path, device: str = "cpu", keep_callbacks: bool = False):
    """(steps/s, CPU seconds per step) of the real entry point's objects."""
    from gan_lab.train import build_objects

    cfg = compose([*overrides, *BARE, *device_overrides(device), f"trainer.max_steps={warmup + steps}"], keep_callbacks)
    dm, task, trainer = build_objects(cfg, tmp)
    timer = Timer(warmup, steps, device)
    trainer.callbacks.append(timer)
    trainer.fit(task, datamodule=dm)
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
    p.add_argument("--callbacks", action="store_true", help="keep the default callbacks on the gan_lab side")
    args = p.parse_args(argv)
    import logging
    import tempfile
    import warnings

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is false", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    ok = True
    where = torch.cuda.get_device_name() if args.device == "cuda" else torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.device}: {where}")
    for name in ["mlp", "dcgan"] if args.case == "all" else [args.case]:
        overrides, target, default_steps = CASES[name]
        steps = args.steps or (default_steps if args.device == "cpu" else 500)
        warmup = args.warmup if args.warmup is not None else max(10, steps // 10)
        plain, lab = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                torch.manual_seed(r)
                plain.append(run_plain(overrides, warmup, steps, Path(tmp) / f"p{r}", args.device))
                torch.manual_seed(r)
                lab.append(run_gan_lab(overrides, warmup, steps, Path(tmp) / f"g{r}", args.device, args.callbacks))
        p_rate, l_rate = statistics.median(v[0] for v in plain), statistics.median(v[0] for v in lab)
        p_cpu, l_cpu = statistics.median(v[1] for v in plain), statistics.median(v[1] for v in lab)
        ratio = l_rate / p_rate
        ok &= ratio >= target
        print(
            f"{name:7s} plain {p_rate:8.2f} steps/s  gan_lab {l_rate:8.2f} steps/s  ratio {ratio:.3f} "
            f"(target >= {target:.2f}) {'OK' if ratio >= target else 'BELOW TARGET'}"
            f"  [plain {', '.join(f'{v[0]:.2f}' for v in plain)} | gan_lab {', '.join(f'{v[0]:.2f}' for v in lab)}]"
        )
        print(
            f"{'':7s} CPU time per step: plain {p_cpu * 1e3:.2f} ms, gan_lab {l_cpu * 1e3:.2f} ms, "
            f"ratio {p_cpu / l_cpu:.3f}  ({args.repeats} alternating repeats of {steps} steps after {warmup})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
