"""Whether a Stacked-MNIST run's mode count measures collapse or samples the classifier cannot read.

    python scripts/stacked_modes_check.py <run dir> [<run dir> ...] [--n 2560] [--seed 0] [--batch-stats 128]
    python scripts/stacked_modes_check.py --controls <MNIST IDX dir> [--split t10k] [--n 25600]

For each run (its checkpoints/last.ckpt), on `--n` samples from fixed noise: the generated background (the mean
of each image's 3 x 3 corners; real MNIST stacks: -1), the MNIST classifier's class histogram per channel with
its mean top probability, and the modes and KL of the metric (`stacked_modes`) on the samples as they are and
with every pixel below 0 set to -1. That second count is a diagnosis, not the protocol: when the generator has
not yet learned MNIST's black background, the classifier can put every channel in one class with full
confidence, and the metric then reports 1 mode for samples that are varied digits-to-be. The second count
is no mode count either: the transform also raises the counts of readable samples whose background is slightly
grey, so it bounds what the samples hold from above.

`--batch-stats B` samples with the generator's batch norm in training mode, each batch of B samples normalised
by its own statistics, as the PacGAN authors' Stacked-MNIST sampler does (their TensorFlow `sampler` calls its
batch norm with the default `train=True`); without it the generator runs in eval mode (running statistics), as
gan_lab's metrics sample.

`--controls` gives the same counts for reference images instead of runs: real stacks of the MNIST split (the
transform leaves them as they are) and smoothed uniform noise (blobs without digits), whose count after the
transform is what the transform alone makes of shapes that are not digits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from gan_lab.metrics.features import embed, load_feature_net
from gan_lab.metrics.mode_collapse import stacked_modes
from gan_lab.sample import load_task


def check(run_dir: Path, net, n: int = 2560, seed: int = 0, batch_stats: int | None = None) -> dict:
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise SystemExit(f"stacked_modes_check: {ckpt} does not exist; give a Stacked-MNIST run directory")
    task, step = load_task(ckpt, "cpu")
    g = task.generator
    z = torch.randn(n, g.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        if batch_stats:  # batch norm on each batch's statistics (the loaded copy's running statistics move; unused)
            g.train()
            x = torch.cat([g(z[i : i + batch_stats]) for i in range(0, n, batch_stats)])
        else:
            x = g.eval()(z)
    if x.dim() != 4 or x.shape[1] != 3:
        raise SystemExit(f"stacked_modes_check: {run_dir} makes {tuple(x.shape[1:])} samples; 3-channel stacks needed")
    sampling = {"bn": f"batch statistics, batches of {batch_stats}" if batch_stats else "eval (running statistics)"}
    return {"run": str(run_dir), "step": step, **sampling, **counts(x, net)}


def controls(root: Path, split: str, net, n: int = 25600, seed: int = 0) -> list[dict]:
    """The counts of real stacks of the MNIST split and of smoothed uniform noise (n images each)."""
    from gan_lab.data.mnist import load_mnist
    from gan_lab.data.stacked import stack_channels

    x, y = load_mnist(root, split)
    real, _ = stack_channels(x * 2 - 1, y, n, seed)
    noise = torch.rand(n, 3, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    blobs = (torch.nn.functional.avg_pool2d(noise, 5, 1, 2) * 3).clamp(-1, 1)
    return [{"control": "real stacks", **counts(real, net)}, {"control": "smoothed noise", **counts(blobs, net)}]


def counts(x: torch.Tensor, net) -> dict:
    corners = torch.cat([x[..., :3, :3], x[..., :3, -3:], x[..., -3:, :3], x[..., -3:, -3:]], -1)
    out = {"n": len(x), "background": round(corners.mean().item(), 3)}
    for name, images in (("as_is", x), ("below_0_to_-1", torch.where(x < 0, torch.full_like(x, -1.0), x))):
        logits = embed(net, images, logits=True)[1]  # N x 3 x 10: channel by channel, as the metric
        modes, kl = stacked_modes(logits)
        out[name] = {
            "modes": modes,
            "kl": round(kl, 3),
            "classes_per_channel": [torch.bincount(logits[:, c].argmax(-1), minlength=10).tolist() for c in range(3)],
            "mean_top_probability": round(logits.softmax(-1).max(-1).values.mean().item(), 3),
        }
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--n", type=int, default=2560, help="samples per run (or per control)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed noise")
    parser.add_argument("--batch-stats", type=int, metavar="B", help="sample with batch norm on batches of B (>= 2)")
    parser.add_argument("--controls", type=Path, help="MNIST IDX folder: count real stacks and smoothed noise")
    parser.add_argument("--split", default="t10k", help="MNIST split of the controls: train or t10k")
    args = parser.parse_args(argv)
    if not args.runs and args.controls is None:
        parser.error("give run directories or --controls <MNIST IDX dir>")
    if args.batch_stats is not None and args.batch_stats < 2:
        parser.error(f"--batch-stats {args.batch_stats}: a batch of at least 2 samples is needed for batch statistics")
    torch.set_num_threads(1)
    net = load_feature_net("mnist")
    for result in controls(args.controls, args.split, net, args.n, args.seed) if args.controls else []:
        print(json.dumps(result))
    for run in args.runs:
        print(json.dumps(check(run, net, args.n, args.seed, args.batch_stats)))


if __name__ == "__main__":
    main(sys.argv[1:])
