"""Goodfellow-2014 style fully connected generator and discriminator, for 2-D points or flattened images."""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_lab.errors import check_range
from gan_lab.nets.common import Discriminator, MinibatchStd, check_d_kwargs, dropout_layers, scaled


class MLPGenerator(nn.Module):
    """`tanh=None` puts a Tanh on the output for image data (values in [-1, 1]) and none for points."""

    def __init__(self, shape, z_dim: int = 32, hidden=(256, 256), tanh: bool | None = None, batchnorm: bool = False):
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

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class MLPDiscriminator(Discriminator):
    """`features(x)` gives the last hidden layer (feature matching), `head` maps it to one logit."""

    def __init__(self, shape, hidden=(256, 256), width: float = 1.0, dropout: float = 0.0, minibatch_std: bool = False):
        super().__init__()
        check_d_kwargs("model.discriminator", dropout, width)
        for h in hidden:
            check_range("model.discriminator", "hidden", h, 1)
        layers, d = [nn.Flatten()], math.prod(shape)
        for h in hidden:
            h = scaled(h, width)
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2, True), *dropout_layers(dropout)]
            d = h
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.head = nn.Linear(d + int(minibatch_std), 1)
