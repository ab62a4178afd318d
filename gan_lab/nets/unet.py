"""pix2pix U-Net generator (Isola 2017): a conv encoder down to 1x1 and a mirrored transposed-conv
decoder with skip connections (encoder block i is concatenated to the decoder input of its mirror).

    g = UNetGenerator(in_channels=1, out_channels=1, size=32)    # 5 down/up blocks, 32 -> 1 -> 32
    y = g(x)                                                     # N x 1 x 32 x 32 in [-1, 1]

Encoder C64-C128-C256-C512-C512-..., 4x4 stride-2 convs, LeakyReLU 0.2, BatchNorm except on the
first block and on the innermost one (as the official code: a 1x1 map would be normalised away).
Decoder: ReLU, 4x4 stride-2 transposed conv, BatchNorm, Dropout(p) in the first `n_dropout` decoder
blocks (innermost first, as the paper's CD512-CD1024-CD1024-C1024...; the official code skips the
innermost one), Tanh on the last. The paper keeps dropout on at test time as the noise source: that
is the task's choice (`g.train()`), not the net's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_lab.errors import ConfigError, check_range
from gan_lab.nets.common import ConvTranspose2d, dcgan_init


def check_power_of_two(owner: str, name: str, value: int, low: int = 8, high: int = 1024) -> int:
    """ConfigError unless value is a power of two in [low, high]."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not (is_int and low <= value <= high and value & (value - 1) == 0):
        allowed = ", ".join(str(2**k) for k in range(int(math.log2(low)), int(math.log2(high)) + 1))
        raise ConfigError(f"{owner}: {name}={value!r} is not supported; allowed powers of two {allowed}")
    return value


class UNetGenerator(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        size: int,
        ngf: int = 64,
        n_down: int | None = None,
        dropout: float = 0.5,
        n_dropout: int = 3,
    ):
        super().__init__()
        owner = "model.generator"
        check_power_of_two(owner, "size", size)
        check_range(owner, "in_channels", in_channels, 1)
        check_range(owner, "out_channels", out_channels, 1)
        check_range(owner, "ngf", ngf, 1)
        max_down = int(math.log2(size))
        n_down = max_down if n_down is None else n_down
        check_range(owner, "n_down", n_down, 2, max_down)
        check_range(owner, "dropout", dropout, 0.0, 1.0, high_open=True)
        check_range(owner, "n_dropout", n_dropout, 0, n_down - 1)
        self.size, self.n_down = size, n_down
        ch = [ngf * min(2**i, 8) for i in range(n_down)]

        downs = [nn.Conv2d(in_channels, ch[0], 4, 2, 1)]
        for i in range(1, n_down):
            innermost = i == n_down - 1
            downs.append(
                nn.Sequential(
                    nn.LeakyReLU(0.2, True),
                    nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=innermost),
                    *([] if innermost else [nn.BatchNorm2d(ch[i])]),
                )
            )
        self.downs = nn.ModuleList(downs)

        ups = []  # ups[0] is the innermost decoder block; its input is not concatenated
        for k, i in enumerate(range(n_down - 1, 0, -1)):
            c_in = ch[i] if k == 0 else 2 * ch[i]
            ups.append(
                nn.Sequential(
                    nn.ReLU(True),
                    ConvTranspose2d(c_in, ch[i - 1], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(ch[i - 1]),
                    *([nn.Dropout(dropout)] if k < n_dropout and dropout > 0 else []),
                )
            )
        last = ConvTranspose2d(2 * ch[0], out_channels, 4, 2, 1)
        ups.append(nn.Sequential(nn.ReLU(True), last, nn.Tanh()))
        self.ups = nn.ModuleList(ups)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.ups[0](skips.pop())
        for up in self.ups[1:]:
            x = up(torch.cat([x, skips.pop()], 1))
        return x
