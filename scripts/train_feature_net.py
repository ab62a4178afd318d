"""Train a shipped feature net (metrics/features.py) and write gan_lab/metrics/weights/<name>.pt.

    python scripts/train_feature_net.py --name digits   # 20 epochs, 80 s on 2 shared CPU cores
    python scripts/train_feature_net.py --name mnist    # 12 epochs, 15 min on 2 busy CPU cores (MNIST t10k
                                                        # from --mnist-root or $GAN_LAB_MNIST_ROOT)

Augmentation: random affine (shift <= 2 px, rotation <= 10 deg, scale 0.9-1.1). Prints the held-out
accuracy and the weights' version (short sha256); copy both into `SHIPPED` in features.py. Same seed,
same machine: the same weights bit for bit (checked for digits).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_lab.metrics.features import (
    SHIPPED,
    WEIGHTS_DIR,
    FeatureNet,
    SmallCNN,
    accuracy,
    file_version,
    heldout_data,
)


def augment(x: torch.Tensor, g: torch.Generator, shift_px: float = 2.0, max_deg: float = 10.0) -> torch.Tensor:
    n, size = len(x), x.shape[-1]
    ang = (torch.rand(n, generator=g) * 2 - 1) * math.radians(max_deg)
    scale = 1 + (torch.rand(n, generator=g) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 * shift_px / size)  # grid units: 2 / size per pixel
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1  # background stays -1


def train(name: str, epochs: int, batch_size: int, lr: float, seed: int) -> tuple[SmallCNN, float]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    (x, y), (xh, yh) = heldout_data(name)
    net = SmallCNN()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * (len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // batch_size):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(net(augment(x[idx], g)), y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(FeatureNet(name, copy.deepcopy(net), SHIPPED[name]["input_size"], "training"), xh, yh)
        print(
            f"{name} epoch {epoch + 1}/{epochs} loss {loss.item():.3f} held-out acc {acc:.4f} "
            f"({time.time() - t0:.0f} s)",
            flush=True,
        )
    net.eval()
    return net, acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", choices=sorted(SHIPPED), required=True)
    p.add_argument("--epochs", type=int, default=None, help="default: 20 (digits), 12 (mnist)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mnist-root", default=None, help="folder of MNIST's t10k IDX files (default $GAN_LAB_MNIST_ROOT)")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    a = p.parse_args()
    if a.mnist_root:
        os.environ["GAN_LAB_MNIST_ROOT"] = a.mnist_root
    torch.set_num_threads(max(1, torch.get_num_threads()))
    epochs = a.epochs or {"digits": 20, "mnist": 12}[a.name]
    net, acc = train(a.name, epochs, a.batch_size, a.lr, a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"{a.name}.pt"
    torch.save({k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}, path)
    (xt, _), (xh, _) = heldout_data(a.name)
    record = {
        "input_size": SHIPPED[a.name]["input_size"],
        "heldout_accuracy": round(acc, 4),
        "n_train": len(xt),
        "n_heldout": len(xh),
        "sha256": file_version(path),
    }
    print(f"held-out accuracy {acc:.4f}; wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    print(f'SHIPPED["{a.name}"] = {json.dumps(record)}')


if __name__ == "__main__":
    main()
