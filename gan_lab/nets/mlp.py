"""Goodfellow-2014 style fully connected generator and discriminator, for 2-D points or flattened images."""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_lab.errors import check_range
from gan_lab.nets.common import Discriminator, MinibatchStd, check_d_kwargs, dcgan_init, dropout_layers, scaled

INITS = ("default", "normal")  # torch's default init, or N(0, 0.02) weights and zero biases (PacGAN, DCGAN)


def init_weights(owner: str, net: nn.Module, init: str) -> None:
    if init not in INITS:
        from gan_lab.errors import ConfigError

        raise ConfigError(f"{owner}.init={init!r} is not known; allowed {', '.join(INITS)}")
    if init == "normal":
        dcgan_init(net)


class MLPGenerator(nn.Module):
    """`tanh=None` puts a Tanh on the output for image data (values in [-1, 1]) and none for points."""

    def __init__(
        self,
        shape,
        z_dim: int = 32,
        hidden=(256, 256),
        tanh: bool | None = None,
        batchnorm: bool = False,
        init: str = "default",
    ):
        super().__init__()
        check_range("model.generator", "z_dim", z_dim, 1)
        for h in hidden:
            check_range("model.generator", "hidden", h, 1)
        self.shape, self.z_dim = tuple(shape), z_dim
        layers, d = [], z_dim
        for h in hidden:
            layers += [nn.Linear(d, h)] + ([nn.BatchNorm1d(h)] if batchnorm else []) + [nn.ReLU(True)]
            d = h
        layers.append(nn.Linear(d, math.prod(self.shape)))
        if tanh or (tanh is None and len(self.shape) == 3):
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        init_weights("model.generator", self, init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class MLPDiscriminator(Discriminator):
    """`features(x)` gives the last hidden layer (feature matching), `head` maps it to one logit.
    `maxout=k` (k >= 2): LinearMaxout units of k pieces instead of Linear + LeakyReLU (PacGAN's 2-D D)."""

    def __init__(
        self,
        shape,
        hidden=(256, 256),
        width: float = 1.0,
        dropout: float = 0.0,
        minibatch_std: bool = False,
        maxout: int = 0,
        init: str = "default",
    ):
        super().__init__()
        check_d_kwargs("model.discriminator", dropout, width)
        for h in hidden:
            check_range("model.discriminator", "hidden", h, 1)
        if maxout:
            from gan_lab.nets.maxout import LinearMaxout
        layers, d = [nn.Flatten()], math.prod(shape)
        for h in hidden:
            h = scaled(h, width)
            unit = [LinearMaxout(d, h, maxout)] if maxout else [nn.Linear(d, h), nn.LeakyReLU(0.2, True)]
            layers += [*unit, *dropout_layers(dropout)]
            d = h
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.head = nn.Linear(d + int(minibatch_std), 1)
        init_weights("model.discriminator", self, init)
