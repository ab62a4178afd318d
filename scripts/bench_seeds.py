"""Throughput of seed-parallel training: one S-member run (`seeds=S`) against S sequential normal runs, same
nets and batch, in member-steps per second, with the default callbacks on (checkpoints, samples, metrics,
monitor; no W&B: logger=none).

    python scripts/bench_seeds.py                          # the table of docs/seeds.md (tens of minutes)
    python scripts/bench_seeds.py --cases mlp100 --members 1,10 --steps 200
    python scripts/bench_seeds.py --cases experiment=pacgan_ring_gan --members 10 --steps 80   # a preset
    python scripts/bench_seeds.py --kernels                # the D's forward+backward alone, 1 vs S members

Each measurement is a fresh process with one torch thread, training through `gan_lab.train.train`. The
steady-state rate is taken between the end of batch `--warmup` and the last batch (CPU seconds of the process
and wall seconds); "run" is the whole run, building and the end-of-run evaluation and samples included.
The ratio is member-steps/s of the S-member run over steps/s of one normal run (S sequential runs have
that rate); CPU-time ratios are the ones to trust on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "mlp100": ["model=gan_mlp", "data=toy2d_ring", "data.batch_size=100"],
    "mlp256": ["model=gan_mlp", "data=toy2d_ring", "data.batch_size=256"],
    "dcgan64": ["model=dcgan", "data=digits", "data.batch_size=64"],
}
MLP_3x128 = ["model.generator.hidden=[128,128,128]", "model.discriminator.hidden=[128,128,128]"]
LABELS = {
    "mlp100": "2-D MLP 3x128, batch 100",
    "mlp256": "2-D MLP 3x128, batch 256",
    "dcgan64": "DCGAN digits 32x32, widths 32, batch 64",
}


def _child(args) -> None:
    """One measured run (in its own process)."""
    import os

    import pytorch_lightning as pl
    import torch
    from hydra import compose, initialize_config_dir

    from gan_lab.config import CONF_DIR
    from gan_lab.train import train

    torch.set_num_threads(1)
    marks = {}

    class Clock(pl.Callback):
        def on_train_batch_end(self, trainer, *a):
            if trainer.global_step in (args.warmup, args.steps):
                marks[trainer.global_step] = (time.perf_counter(), time.process_time())

    overrides = [*args.overrides, f"trainer.max_steps={args.steps}", "logger=none", "threads=1"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=overrides)
    import gan_lab.train as gt

    build_objects = gt.build_objects

    def with_clock(*a, **k):
        dm, task, trainer = build_objects(*a, **k)
        trainer.callbacks.append(Clock())
        return dm, task, trainer

    gt.build_objects = with_clock
    w0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train(cfg, Path(tmp) / "run")
    w1, c1 = time.perf_counter(), time.process_time()
    (wa, ca), (wb, cb) = marks[args.warmup], marks[args.steps]
    n = args.steps - args.warmup
    out = {
        "status": metrics["status"],
        "steps_per_s_wall": n / (wb - wa),
        "steps_per_s_cpu": n / (cb - ca),
        "run_wall_s": w1 - w0,
        "run_cpu_s": c1 - c0,
        "threads": torch.get_num_threads(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }
    print("RESULT " + json.dumps(out))


def kernels(members: list[int], batch: int = 100, repeats: int = 200) -> None:
    """Where the time goes without the loop: forward + backward of the 3x128 2-D MLP discriminator, one member
    as a plain module against S members stacked (`gan_lab.ensemble.Stacked`), CPU ms per call."""
    import torch

    from gan_lab.ensemble import Stacked
    from gan_lab.nets.mlp import MLPDiscriminator

    torch.set_num_threads(1)

    def ms(net, x) -> float:
        for _ in range(10):
            net(x).sum().backward()
        t = time.process_time()
        for _ in range(repeats):
            net(x).sum().backward()
        return (time.process_time() - t) / repeats * 1e3

    one = ms(MLPDiscriminator((2,), hidden=(128, 128, 128)), torch.randn(batch, 2))
    print(f"one member: {one:.2f} ms")
    for s in members:
        nets = [MLPDiscriminator((2,), hidden=(128, 128, 128)) for _ in range(s)]
        t = ms(Stacked(nets), torch.randn(s * batch, 2))
        print(f"{s} members stacked: {t:.2f} ms = {t / (s * one):.2f} x {s} single members")


def measure(overrides: list[str], steps: int, warmup: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--steps", str(steps), "--warmup", str(warmup), "--", *overrides]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"measurement failed: {' '.join(overrides)}\n{r.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="mlp100,mlp256,dcgan64")
    p.add_argument("--members", default="1,4,10,32")
    p.add_argument("--steps", type=int, default=300, help="batches per run (2-D MLP)")
    p.add_argument("--dcgan-steps", type=int, default=60, help="batches per run (DCGAN)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--kernels", action="store_true", help="only time one net's forward+backward, 1 vs S members")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    if args.kernels:
        kernels([int(x) for x in args.members.split(",")])
        return 0
    rows = []
    print("| model | S | single run steps/s (CPU) | S-member member-steps/s (CPU) | ratio CPU | ratio wall |")
    print("|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        if case not in CASES and not case.startswith("experiment="):
            p.error(f"--cases {case!r} is not known; allowed {', '.join(CASES)} or experiment=<preset>")
        base = CASES[case] + (MLP_3x128 if case.startswith("mlp") else []) if case in CASES else [case]
        steps = args.dcgan_steps if case.startswith("dcgan") else args.steps
        warmup = min(args.warmup, steps // 3)
        single = measure(base, steps, warmup)
        for s in [int(x) for x in args.members.split(",")]:
            par = measure([*base, f"seeds={s}"], steps, warmup)
            row = {
                "case": case,
                "members": s,
                "single": single,
                "parallel": par,
                "ratio_cpu": s * par["steps_per_s_cpu"] / single["steps_per_s_cpu"],
                "ratio_wall": s * par["steps_per_s_wall"] / single["steps_per_s_wall"],
            }
            rows.append(row)
            print(
                f"| {LABELS.get(case, case)} | {s} | {single['steps_per_s_cpu']:.1f} | "
                f"{s * par['steps_per_s_cpu']:.1f} | {row['ratio_cpu']:.2f}x | {row['ratio_wall']:.2f}x |",
                flush=True,
            )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
