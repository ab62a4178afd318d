"""Shared pieces of the architectures."""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import check_range


def dcgan_init(module: nn.Module) -> None:
    """Radford 2015 init: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:  # class-conditional BN: own gains
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def scaled(n: int, width: float) -> int:
    """Channel count n scaled by a width factor (the d_width trick), at least 1."""
    return max(1, int(round(n * width)))


class MinibatchStd(nn.Module):
    """Append the mean over features of the minibatch standard deviation as one extra channel/feature
    (Karras 2018). `group` samples share a statistic (the batch size when smaller)."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g = min(self.group, n)
        if n % g:
            g = 1 if n == 1 else next(k for k in range(g, 0, -1) if n % k == 0)
        y = x.reshape(g, -1, *x.shape[1:])
        std = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(dim=tuple(range(1, y.dim() - 1)), keepdim=True)
        std = std.repeat(g, *([1] * (std.dim() - 1)))
        if x.dim() == 4:
            std = std.expand(n, 1, x.shape[2], x.shape[3])
        return torch.cat([x, std.reshape(n, 1, *x.shape[2:])], 1)


def dropout_layers(p: float) -> list[nn.Module]:
    """[Dropout(p)] when p > 0, else []: a fresh module per call, so wrappers can tell them apart."""
    return [nn.Dropout(p)] if p > 0 else []


def check_d_kwargs(owner: str, dropout: float, width: float):
    check_range(owner, "dropout", dropout, 0.0, 1.0, high_open=True)
    check_range(owner, "width", width, 0.0, low_open=True)


class Discriminator(nn.Module):
    """The layout every gan_lab discriminator shares: D(x) = head(mbstd(body(x))) and features(x) =
    body(x), so tricks can add a minibatch-std feature (`mbstd`) and read features (feature matching).
    A class-conditional D (`cond`, nets/conditioning.py) also takes the labels y: D(x, y)."""

    def __init__(self):
        super().__init__()
        self.cond = None  # a conditioning.DCondition when class-conditional

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x if self.cond is None else self.cond.input(x, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        h = self.features(x, y)
        out = self.head(h if self.mbstd is None else self.mbstd(h))
        return out if self.cond is None else self.cond.output(out, h, y)
