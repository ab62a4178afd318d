"""Shared pieces of the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


class ConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` (same parameters and state dict; the same results up to float rounding) that, on
    the CPU, computes two shapes oneDNN's transposed-convolution kernel runs slowly as matrix products:

    - a 1 x 1 input with stride 1 and no padding (a generator's first layer, z -> C x k x k), which is a linear
      map: one matrix product;
    - one output channel (the image layer of a grayscale generator): the matrix product of the input with the
      kernel, then col2im (`F.fold`), which is the transposed convolution's definition.

    Measured with one thread (2-core AMD EPYC, DCGAN on 32 x 32 digits, batch 64): z -> 128 x 4 x 4 and
    32 -> 1 channel at 16 -> 32 pixels take 2-4x less time forward and 1.6-2.6x less forward and backward than
    the library's kernel (`scripts/bench_convt.py`), while with 3 output channels the kernel is the faster one; so
    other shapes, other devices, groups, dilation and output padding go to the library's kernel."""

    def matmul_path(self, x: torch.Tensor, output_size=None) -> str | None:
        """"project" (1 x 1 input), "one_channel", or None (the library's kernel) for input `x`."""
        if (
            x.device.type != "cpu"
            or output_size is not None
            or x.dim() != 4
            or self.groups != 1
            or self.dilation != (1, 1)
            or self.output_padding != (0, 0)
            or self.padding_mode != "zeros"
        ):
            return None
        if x.shape[-2:] == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0):
            return "project"
        return "one_channel" if self.out_channels == 1 else None

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        path = self.matmul_path(x, output_size)
        if path is None:
            return super().forward(x, output_size)
        if path == "project":
            n = x.shape[0]
            y = x.reshape(n, -1) @ self.weight.reshape(self.in_channels, -1)
            y = y.view(n, self.out_channels, *self.kernel_size)
        else:
            y = self._one_channel(x)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def _one_channel(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        out = ((h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw)
        # (N*H*W, C) @ (C, kh*kw): free of copies when x is channels-last, as the nets run on the CPU
        cols = x.permute(0, 2, 3, 1).reshape(n * h * w, c) @ self.weight.reshape(c, kh * kw)
        return F.fold(cols.view(n, h * w, kh * kw).transpose(1, 2), out, (kh, kw), stride=(sh, sw), padding=(ph, pw))


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
