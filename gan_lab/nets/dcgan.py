"""Radford-2015 DCGAN: transposed-conv generator (BN + ReLU, Tanh out), strided-conv discriminator
(LeakyReLU 0.2, BN except on the first layer), N(0, 0.02) init. Sizes 4*2^k or 7*2^k (32, 64, 28...)."""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import ConfigError, check_range
from gan_lab.nets.common import (
    ConvTranspose2d,
    Discriminator,
    MinibatchStd,
    check_d_kwargs,
    dcgan_init,
    dropout_layers,
    scaled,
)
from gan_lab.nets.conditioning import DCondition, batch_norm, g_input, run_layers, z_extra


def _plan(size: int) -> tuple[int, int]:
    """(base spatial size, number of x2 stages) for an image size."""
    for base in (4, 7):
        k, s = 0, size
        while s > base and s % 2 == 0:
            s, k = s // 2, k + 1
        if s == base and k >= 1:
            return base, k
    raise ConfigError(
        f"model=dcgan: image size {size} is not supported; allowed 4*2^k or 7*2^k (8, 14, 16, 28, 32, 64, ...)"
    )


class DCGANGenerator(nn.Module):
    """`conditional` (nets/conditioning.py): concat/acgan feed z ++ one-hot(y) to the first layer;
    projection makes every batch norm class-conditional."""

    def __init__(self, shape, z_dim: int = 100, ngf: int = 64, conditional: str | None = None, num_classes: int = 0):
        super().__init__()
        c, size = shape[0], shape[-1]
        if len(shape) != 3 or shape[1] != shape[2]:
            raise ConfigError(f"model=dcgan needs square image data; got sample shape {tuple(shape)}")
        base, k = _plan(size)
        check_range("model.generator", "z_dim", z_dim, 1)
        check_range("model.generator", "ngf", ngf, 1)
        self.z_dim, self.shape = z_dim, tuple(shape)
        self.conditional, self.num_classes = conditional, num_classes
        ch = ngf * 2 ** (k - 1)
        z_in = z_dim + z_extra(conditional, num_classes)
        layers = [ConvTranspose2d(z_in, ch, base, 1, 0, bias=False), batch_norm(ch, conditional, num_classes)]
        layers.append(nn.ReLU(True))
        for _ in range(k - 1):
            up = ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False)
            layers += [up, batch_norm(ch // 2, conditional, num_classes), nn.ReLU(True)]
            ch //= 2
        layers += [ConvTranspose2d(ch, c, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional is None:
            return self.net(z.view(z.shape[0], -1, 1, 1))
        z = g_input(z.view(z.shape[0], -1), y, self.conditional, self.num_classes)
        return run_layers(self.net, z.view(z.shape[0], -1, 1, 1), y)


class DCGANDiscriminator(Discriminator):
    """`features(x)` is the last conv block's output (feature matching); `forward` gives N x 1 logits."""

    def __init__(
        self,
        shape,
        ndf: int = 64,
        width: float = 1.0,
        dropout: float = 0.0,
        minibatch_std: bool = False,
        in_channels: int | None = None,
        conditional: str | None = None,
        num_classes: int = 0,
        label_slots: int = 1,
        batchnorm: bool = True,
    ):
        super().__init__()
        check_d_kwargs("model.discriminator", dropout, width)
        if not isinstance(batchnorm, bool):
            raise ConfigError(f"model.discriminator.batchnorm={batchnorm!r} is not a boolean; allowed true, false")
        check_range("model.discriminator", "ndf", ndf, 1)
        if len(shape) != 3:
            raise ConfigError(f"model=dcgan needs image data; got sample shape {tuple(shape)}")
        c = (in_channels or shape[0]) + DCondition.extra_inputs(conditional, num_classes, label_slots)
        base, k = _plan(shape[-1])
        ch = scaled(ndf, width)
        layers = [nn.Conv2d(c, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True), *dropout_layers(dropout)]
        for _ in range(k - 1):
            layers += [  # without batch norm (e.g. under spectral norm, as SNGAN's D) the convs get biases
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not batchnorm),
                *([nn.BatchNorm2d(ch * 2)] if batchnorm else []),
                nn.LeakyReLU(0.2, True),
                *dropout_layers(dropout),
            ]
            ch *= 2
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.head = nn.Sequential(nn.Conv2d(ch + int(minibatch_std), 1, base, 1, 0, bias=False), nn.Flatten())
        if conditional is not None:
            self.cond = DCondition(conditional, num_classes, label_slots, channels=ch, flat=ch * base * base, maps=True)
        dcgan_init(self)
