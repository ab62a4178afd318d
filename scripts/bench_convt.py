"""Transposed convolutions on the CPU: gan_lab's layer (`gan_lab.nets.common.ConvTranspose2d`) against the
library's `nn.ConvTranspose2d` with the same weights, per layer of a generator and for a whole DCGAN step.

    python scripts/bench_convt.py                    # the default DCGAN's generator on digits (32 x 32, 1 channel)
    python scripts/bench_convt.py --channels 3 --threads 2

Per layer: forward, and forward + backward (input and weight gradients), CPU milliseconds per call (median of
`--repeats` alternating rounds), channels-last as the nets run on the CPU. The step: the training step of
`gan_lab`'s DCGAN (D on real and fake, then G with D frozen, Adam) with the generator built from either layer,
CPU milliseconds per step, alternating in this process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from gan_lab.nets.common import ConvTranspose2d
from gan_lab.nets.dcgan import DCGANDiscriminator, DCGANGenerator

CL = torch.channels_last


def cpu_ms(fn, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e3


def library_copy(layer: ConvTranspose2d) -> nn.ConvTranspose2d:
    ref = nn.ConvTranspose2d(
        layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
        bias=layer.bias is not None,
    )  # fmt: skip
    ref.load_state_dict(layer.state_dict())
    return ref.to(memory_format=CL)


def generator(channels: int, ngf: int, library: bool) -> DCGANGenerator:
    torch.manual_seed(0)
    g = DCGANGenerator((channels, 32, 32), z_dim=100, ngf=ngf)
    if library:
        for i, m in enumerate(g.net):
            if isinstance(m, ConvTranspose2d):
                g.net[i] = library_copy(m)
    return g.to(memory_format=CL)


def step_fn(g: nn.Module, channels: int, ndf: int, batch: int):
    torch.manual_seed(1)
    d = DCGANDiscriminator((channels, 32, 32), ndf=ndf).to(memory_format=CL)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.randn(batch, channels, 32, 32).contiguous(memory_format=CL)
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def step():
        with torch.no_grad():
            fake = g(torch.randn(batch, 100))
        loss_d = F.binary_cross_entropy_with_logits(d(real), ones) + F.binary_cross_entropy_with_logits(d(fake), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        d.requires_grad_(False)
        loss_g = F.binary_cross_entropy_with_logits(d(g(torch.randn(batch, 100))), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        d.requires_grad_(True)
        opt_g.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=1, help="image channels (digits, MNIST: 1)")
    ap.add_argument("--width", type=int, default=32, help="ngf = ndf (the default DCGAN: 32)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8, help="steps per round of the whole-step comparison")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, {args.channels} channel(s)")

    ours = generator(args.channels, args.width, library=False)
    print("\n| layer | input | library fwd | gan_lab fwd | library fwd+bwd | gan_lab fwd+bwd | gan_lab's path |")
    print("|---|---|---|---|---|---|---|")
    x = torch.randn(args.batch, 100, 1, 1)
    for layer in ours.net:
        if isinstance(layer, ConvTranspose2d):
            ref = library_copy(layer)
            xin = x.contiguous(memory_format=CL)
            xg = xin.clone().requires_grad_(True)
            times = {k: [] for k in ("lf", "of", "lb", "ob")}
            for _ in range(args.repeats):
                for key, mod in (("l", ref), ("o", layer)):
                    times[key + "f"].append(cpu_ms(lambda m=mod, a=xin: m(a), 10))
                    times[key + "b"].append(cpu_ms(lambda m=mod, a=xg: m(a).sum().backward(), 10))
            med = {k: statistics.median(v) for k, v in times.items()}
            path = layer.matmul_path(xin) or "library"
            print(
                f"| {layer.in_channels} -> {layer.out_channels}, k{layer.kernel_size[0]} s{layer.stride[0]} | "
                f"{tuple(xin.shape)} | {med['lf']:.2f} | {med['of']:.2f} | {med['lb']:.2f} | {med['ob']:.2f} | {path} |"
            )
        with torch.no_grad():
            x = layer(x)

    steps = {
        name: step_fn(generator(args.channels, args.width, library=lib), args.channels, args.width, args.batch)
        for name, lib in (("library", True), ("gan_lab", False))
    }
    for fn in steps.values():
        fn(), fn()
    rounds = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, fn in steps.items():
            rounds[name].append(cpu_ms(fn, args.steps))
    lib, ours_ms = statistics.median(rounds["library"]), statistics.median(rounds["gan_lab"])
    print(f"\nDCGAN training step, CPU ms (median of {args.repeats} x {args.steps} steps): library layers {lib:.1f}, "
          f"gan_lab's {ours_ms:.1f}: {lib / ours_ms:.3f}x")  # fmt: skip


if __name__ == "__main__":
    main()
