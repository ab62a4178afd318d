"""Encoder x (d = C*H*W values) -> R^out_dim and decoder R^p -> pre-activation x, fully connected or convolutional.

The decoder returns logits in data space (no output activation): the task maps them to [-1, 1] with tanh
(MSE) or 2*sigmoid - 1 (BCE, computed on the logits for stability). `build_autoencoder(arch, ...)` picks
the pair: "mlp" works on any shape, "conv" on images whose sides halve `len(hidden)` times (or fewer).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_lab.errors import ConfigError
from gan_lab.nets.common import ConvTranspose2d

DEFAULT_HIDDEN = {"mlp": (512, 256), "conv": (32, 64, 128)}


class MLPEncoder(nn.Module):
    def __init__(self, shape, out_dim: int, hidden=DEFAULT_HIDDEN["mlp"]):
        super().__init__()
        layers, d = [nn.Flatten()], math.prod(shape)
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2, True)]
            d = h
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """`hidden` is given in encoder order and mirrored (512, 256 -> decoder 256, 512)."""

    def __init__(self, shape, latent_dim: int, hidden=DEFAULT_HIDDEN["mlp"]):
        super().__init__()
        self.shape = tuple(shape)
        layers, d = [], latent_dim
        for h in reversed(tuple(hidden)):
            layers += [nn.Linear(d, h), nn.ReLU(True)]
            d = h
        layers.append(nn.Linear(d, math.prod(self.shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


def conv_stages(shape, hidden) -> int:
    """How many stride-2 stages fit: both sides stay even and at least 4 after each halving."""
    if len(shape) != 3:
        raise ConfigError(
            f"model.arch=conv needs image data (C x H x W); got sample shape {tuple(shape)}; use arch=mlp"
        )
    h, w, k = shape[1], shape[2], 0
    while k < len(hidden) and h % 2 == 0 and w % 2 == 0 and h >= 8 and w >= 8:
        h, w, k = h // 2, w // 2, k + 1
    if k == 0:
        raise ConfigError(f"model.arch=conv: image size {shape[1]}x{shape[2]} cannot be halved; use arch=mlp")
    return k


class ConvEncoder(nn.Module):
    """Stride-2 4x4 convs (LeakyReLU 0.2) with channels `hidden[:k]`, then a linear layer to out_dim."""

    def __init__(self, shape, out_dim: int, hidden=DEFAULT_HIDDEN["conv"]):
        super().__init__()
        k = conv_stages(shape, hidden)
        layers, c = [], shape[0]
        for ch in hidden[:k]:
            layers += [nn.Conv2d(c, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            c = ch
        flat = c * (shape[1] >> k) * (shape[2] >> k)
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: linear to hidden[k-1] x H/2^k x W/2^k, stride-2 transposed convs (BN + ReLU)."""

    def __init__(self, shape, latent_dim: int, hidden=DEFAULT_HIDDEN["conv"]):
        super().__init__()
        k = conv_stages(shape, hidden)
        chans = list(hidden[:k])[::-1]
        self.start = (chans[0], shape[1] >> k, shape[2] >> k)
        self.fc = nn.Linear(latent_dim, math.prod(self.start))
        layers = [nn.ReLU(True)]
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers.append(ConvTranspose2d(chans[-1], shape[0], 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, *self.start))


ARCHS = {"mlp": (MLPEncoder, MLPDecoder), "conv": (ConvEncoder, ConvDecoder)}


def build_autoencoder(arch: str, shape, latent_dim: int, enc_out: int, hidden=None) -> tuple[nn.Module, nn.Module]:
    """(encoder x -> R^enc_out, decoder R^latent_dim -> logits of shape `shape`) for arch mlp | conv."""
    if arch not in ARCHS:
        raise ConfigError(f"model.arch={arch!r} is not known; allowed {', '.join(ARCHS)}")
    hidden = tuple(DEFAULT_HIDDEN[arch] if hidden is None else hidden)
    if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ConfigError(f"model.hidden={list(hidden)!r} must be a non-empty list of positive integers")
    enc_cls, dec_cls = ARCHS[arch]
    return enc_cls(shape, enc_out, hidden), dec_cls(shape, latent_dim, hidden)
