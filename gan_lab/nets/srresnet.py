"""SRResNet generator and SRGAN discriminator (Ledig 2017).

    g = SRResNet(in_channels=3, scale=4)        # N x 3 x h x w -> N x 3 x 4h x 4w, not clamped
    d = SRDiscriminator()                       # N x 3 x H x W (H, W >= 16) -> N x 1 logits

Generator: 9x9 conv + PReLU, `n_blocks` residual blocks (conv3-BN-PReLU-conv3-BN + identity),
conv3-BN + global skip, sub-pixel upsampling (conv3 to 4x channels, PixelShuffle(2), PReLU) twice
for x4, once for x2, one PixelShuffle(3) stage for x3, then a 9x9 conv. The output is not clamped:
the task trains it on [-1, 1] targets and clamps for display/metrics.

Discriminator: conv3 + LReLU 0.2, then seven conv3-BN-LReLU blocks k64s2, k128s1, k128s2, k256s1,
k256s2, k512s1, k512s2 (stride 2 every other), global average pooling (instead of the paper's
flatten of a 6x6 map, so any patch size >= 16 works), dense 1024 + LReLU, dense 1 logit.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import ConfigError, check_range
from gan_lab.nets.common import MinibatchStd, check_d_kwargs, dcgan_init, dropout_layers, scaled


class ResidualBlock(nn.Module):
    def __init__(self, n_feats: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, 3, 1, 1, bias=False),
            nn.BatchNorm2d(n_feats),
            nn.PReLU(n_feats),
            nn.Conv2d(n_feats, n_feats, 3, 1, 1, bias=False),
            nn.BatchNorm2d(n_feats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, in_channels: int = 3, scale: int = 4, n_blocks: int = 16, n_feats: int = 64):
        super().__init__()
        owner = "model.generator"
        if scale not in (2, 3, 4) or isinstance(scale, bool):
            raise ConfigError(f"{owner}: scale={scale!r} is not supported; allowed 2, 3, 4")
        check_range(owner, "in_channels", in_channels, 1)
        check_range(owner, "n_blocks", n_blocks, 0)
        check_range(owner, "n_feats", n_feats, 1)
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, n_feats, 9, 1, 4), nn.PReLU(n_feats))
        self.blocks = nn.Sequential(*[ResidualBlock(n_feats) for _ in range(n_blocks)])
        self.post = nn.Sequential(nn.Conv2d(n_feats, n_feats, 3, 1, 1, bias=False), nn.BatchNorm2d(n_feats))
        factors = [3] if scale == 3 else [2] * (scale // 2)
        up = []
        for f in factors:
            up += [nn.Conv2d(n_feats, n_feats * f * f, 3, 1, 1), nn.PixelShuffle(f), nn.PReLU(n_feats)]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(n_feats, in_channels, 9, 1, 4)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.post(self.blocks(h))
        return self.tail(self.upsample(h))


class SRDiscriminator(nn.Module):
    """`features(x)` is the pooled last conv block (N x C); `forward` gives N x 1 logits. `minibatch_std`
    appends the minibatch standard-deviation channel to the last conv map before pooling (the trick)."""

    def __init__(
        self,
        in_channels: int = 3,
        n_feats: int = 64,
        width: float = 1.0,
        dropout: float = 0.0,
        minibatch_std: bool = False,
    ):
        super().__init__()
        owner = "model.discriminator"
        check_d_kwargs(owner, dropout, width)
        check_range(owner, "in_channels", in_channels, 1)
        check_range(owner, "n_feats", n_feats, 1)

        c = scaled(n_feats, width)
        layers = [nn.Conv2d(in_channels, c, 3, 1, 1), nn.LeakyReLU(0.2, True), *dropout_layers(dropout)]
        plan = [(1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)]  # (channel multiple, stride)
        for mult, stride in plan:
            c_out = scaled(n_feats * mult, width)
            layers += [
                nn.Conv2d(c, c_out, 3, stride, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, True),
                *dropout_layers(dropout),
            ]
            c = c_out
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        hidden = scaled(1024, width)
        self.head = nn.Sequential(
            nn.Linear(c + int(minibatch_std), hidden),
            nn.LeakyReLU(0.2, True),
            *dropout_layers(dropout),
            nn.Linear(hidden, 1),
        )
        dcgan_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(self.pool(h if self.mbstd is None else self.mbstd(h)))
