"""Transposed convolutions on the CPU: gan_lab's layer (`gan_lab.nets.common.ConvTranspose2d`) against the
library's kernel (`nn.ConvTranspose2d.forward`) with the same weights, per layer of a generator and over
gan_lab's own training loop.

    python scripts/bench_convt.py                          # the default job's DCGAN on digits (1 channel)
    python scripts/bench_convt.py --threads 2 --config default

Per layer: forward, and forward + backward (input and weight gradients), CPU milliseconds per call (median of
`--repeats` alternating rounds), in channels-last order as the nets run on the CPU. The loop: `bench_train.py`'s
gan_lab loop (`--config bare` or `default`) with the generator's transposed convolutions on gan_lab's path and
on the library's kernel, alternating; CPU milliseconds per step (every thread) and steps/s.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from bench_train import BARE, CASES, compose, run_gan_lab
from torch import nn

from gan_lab.nets.common import ConvTranspose2d

IMAGE_CASES = [name for name in CASES if name.startswith("dcgan")]


def cpu_ms(fn, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e3


def library_kernel(on: bool):
    """gan_lab's ConvTranspose2d running the library's kernel (`on`), or as it is."""
    return mock.patch.object(ConvTranspose2d, "forward", nn.ConvTranspose2d.forward) if on else contextlib.nullcontext()


def layer_table(overrides: list[str], repeats: int, tmp: Path) -> None:
    from gan_lab.train import build_objects

    dm, task, _ = build_objects(compose([*overrides, *BARE]), tmp)
    g = task.generator.to(memory_format=torch.channels_last)
    print("\n| layer | input | library fwd | gan_lab fwd | library fwd+bwd | gan_lab fwd+bwd | gan_lab's path |")
    print("|---|---|---|---|---|---|---|")
    x = torch.randn(dm.batch_size, task.z_dim, 1, 1)
    for layer in g.net:
        if isinstance(layer, ConvTranspose2d):
            xin = x.contiguous(memory_format=torch.channels_last)
            xg = xin.clone().requires_grad_(True)
            times = {k: [] for k in ("lf", "of", "lb", "ob")}
            for _ in range(repeats):
                for key in ("l", "o"):
                    with library_kernel(key == "l"):
                        times[key + "f"].append(cpu_ms(lambda m=layer, a=xin: m(a), 10))
                        times[key + "b"].append(cpu_ms(lambda m=layer, a=xg: m(a).sum().backward(), 10))
            med = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"| {layer.in_channels} -> {layer.out_channels}, k{layer.kernel_size[0]} s{layer.stride[0]} | "
                f"{tuple(xin.shape)} | {med['lf']:.2f} | {med['of']:.2f} | {med['lb']:.2f} | {med['ob']:.2f} | "
                f"{layer.matmul_path(xin) or 'library'} |"
            )
        with torch.no_grad():
            x = layer(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=IMAGE_CASES, default="dcgan", help="bench_train.py's image cases")
    ap.add_argument("--config", choices=["bare", "default"], default="bare", help="bench_train.py's configurations")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40, help="timed loop steps per round")
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)  # as bench_train.py: the timings only
    overrides = CASES[args.case][0]
    print(f"torch {torch.__version__}, {args.threads} thread(s), case {args.case}: {' '.join(overrides)}")
    with tempfile.TemporaryDirectory() as tmp:
        layer_table(overrides, args.repeats, Path(tmp) / "layers")
        rounds = {"library": [], "gan_lab": []}
        for r in range(args.repeats):
            for name, runs in rounds.items():
                torch.manual_seed(r)
                with library_kernel(name == "library"):
                    runs.append(run_gan_lab(overrides, args.warmup, args.steps, Path(tmp) / f"{name}{r}",
                                            config=args.config))  # fmt: skip
    (lib_rate, lib_cpu), (our_rate, our_cpu) = (
        (statistics.median(v[0] for v in runs), statistics.median(v[1] for v in runs)) for runs in rounds.values()
    )
    print(
        f"\ngan_lab's loop (--config {args.config}), medians of {args.repeats} x {args.steps} steps: library kernel "
        f"{lib_cpu * 1e3:.1f} ms/step CPU, {lib_rate:.2f} steps/s; gan_lab's layer {our_cpu * 1e3:.1f} ms/step CPU, "
        f"{our_rate:.2f} steps/s: {lib_cpu / our_cpu:.3f}x CPU, {our_rate / lib_rate:.3f}x wall"
    )


if __name__ == "__main__":
    main()
