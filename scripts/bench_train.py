"""Training throughput of gan_lab's loop vs a hand-written PyTorch loop, same nets/batch/data/seed.

    python scripts/bench_train.py                 # both cases, ratios printed
    python scripts/bench_train.py --case mlp --steps 1500

Both loops run in this process, alternating (plain, gan_lab, plain, gan_lab, ...), and the median
steps/s of each is compared; warm-up steps are excluded. The gan_lab side is the real entry point's
objects (`gan_lab.train.build_objects`) with the default trainer and the loop's own logging (one host
sync per trainer.log_every_n_steps); external loggers, pictures, checkpoints and periodic metrics are
off (BARE), as the plain loop has none of them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

ROOT = Path(__file__).resolve().parents[1]
# The loop alone: no external logger, progress bar, pictures, checkpoints or periodic metrics.
BARE = [
    "logger=none",
    "callbacks.progress=null",
    "callbacks.samples=null",
    "callbacks.checkpoint=null",
    "callbacks.metrics=null",
    "trainer.enable_checkpointing=false",
    "trainer.enable_progress_bar=false",
]
CASES = {  # name: (overrides, target ratio)
    "mlp": (["model=gan_mlp", "data=toy2d_ring"], 0.90),
    "dcgan": (["model=dcgan", "data=digits"], 0.95),
}


def compose(overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        return compose("train", overrides=overrides)


class Timer(pl.Callback):
    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps, self.t0, self.t1 = warmup, steps, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.warmup + self.steps:
            self.t1 = time.perf_counter()


def run_gan_lab(overrides, warmup, steps, tmp: Path) -> float:
    from gan_lab.train import build_objects

    cfg = compose([*overrides, *BARE, f"trainer.max_steps={warmup + steps}"])
    dm, task, trainer = build_objects(cfg, tmp)
    timer = Timer(warmup, steps)
    trainer.callbacks.append(timer)
    trainer.fit(task, datamodule=dm)
    return steps / (timer.t1 - timer.t0)


def run_plain(overrides, warmup, steps, tmp: Path) -> float:
    """The same nets, optimizers, loss and batches in the loop one would write by hand."""
    import torch.nn.functional as F

    from gan_lab.train import build_objects

    cfg = compose([*overrides, *BARE])
    dm, task, _ = build_objects(cfg, tmp)
    G, D = task.generator, task.discriminator
    opt_g, opt_d = task.configure_optimizers()
    x_all = dm.split_tensors("train")[0]
    bs, z_dim = dm.batch_size, task.z_dim
    gen = torch.Generator().manual_seed(0)
    perm, pos = torch.randperm(len(x_all), generator=gen), 0
    t0 = None
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        if pos + bs > len(perm):
            perm, pos = torch.randperm(len(x_all), generator=gen), 0
        real = x_all[perm[pos : pos + bs]]
        pos += bs
        with torch.no_grad():
            fake = G(torch.randn(bs, z_dim))
        out_r, out_f = D(real), D(fake)
        loss_d = F.binary_cross_entropy_with_logits(out_r, torch.ones_like(out_r)) + F.binary_cross_entropy_with_logits(
            out_f, torch.zeros_like(out_f)
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        fake = G(torch.randn(bs, z_dim))
        loss_g = F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    return steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=[*CASES, "all"], default="all")
    p.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default: mlp 1500, dcgan 60)")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    import logging
    import tempfile
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    ok = True
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {torch.backends.cpu.get_cpu_capability()}")
    for name in CASES if args.case == "all" else [args.case]:
        overrides, target = CASES[name]
        steps = args.steps or (1500 if name == "mlp" else 60)
        warmup = args.warmup if args.warmup is not None else max(10, steps // 10)
        plain, lab = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                torch.manual_seed(r)
                plain.append(run_plain(overrides, warmup, steps, Path(tmp) / f"p{r}"))
                torch.manual_seed(r)
                lab.append(run_gan_lab(overrides, warmup, steps, Path(tmp) / f"g{r}"))
        ratio = statistics.median(lab) / statistics.median(plain)
        ok &= ratio >= target
        print(
            f"{name:6s} plain {statistics.median(plain):8.1f} steps/s  gan_lab {statistics.median(lab):8.1f} steps/s  "
            f"ratio {ratio:.3f} (target >= {target:.2f}) {'OK' if ratio >= target else 'BELOW TARGET'}"
            f"  [plain {', '.join(f'{v:.1f}' for v in plain)} | gan_lab {', '.join(f'{v:.1f}' for v in lab)}]"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
