"""Goodfellow-2014 style fully connected generator and discriminator, for 2-D points or flattened images."""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_lab.errors import check_range
from gan_lab.nets.common import Discriminator, MinibatchStd, check_d_kwargs, dcgan_init, dropout_layers, scaled
from gan_lab.nets.conditioning import DCondition, batch_norm, g_input, run_layers, z_extra

INITS = ("default", "normal")  # torch's default init, or N(0, 0.02) weights and zero biases (PacGAN, DCGAN)


def init_weights(owner: str, net: nn.Module, init: str) -> None:
    if init not in INITS:
        from gan_lab.errors import ConfigError

        raise ConfigError(f"{owner}.init={init!r} is not known; allowed {', '.join(INITS)}")
    if init == "normal":
        dcgan_init(net)


class MLPGenerator(nn.Module):
    """`tanh=None` puts a Tanh on the output for image data (values in [-1, 1]) and none for points.
    `conditional` (nets/conditioning.py): concat/acgan feed z ++ one-hot(y); projection puts a
    class-conditional batch norm after every hidden layer (whatever `batchnorm` says).

    A hidden Linear followed by a batch norm has no bias (as PacGAN's generator, `use_bias=False`, and DCGAN's
    convolutions): the norm subtracts it again, so its gradient is 0 up to rounding, which Adam's normalised
    steps would turn into a random walk of lr-sized steps (seed-parallel members would then differ from their
    single runs by more than rounding). Checkpoints with such a bias load with it folded into the norm's
    running mean, which gives the same outputs in both modes (`_fold_bias_before_norm`)."""

    def __init__(
        self,
        shape,
        z_dim: int = 32,
        hidden=(256, 256),
        tanh: bool | None = None,
        batchnorm: bool = False,
        init: str = "default",
        conditional: str | None = None,
        num_classes: int = 0,
    ):
        super().__init__()
        check_range("model.generator", "z_dim", z_dim, 1)
        for h in hidden:
            check_range("model.generator", "hidden", h, 1)
        self.shape, self.z_dim = tuple(shape), z_dim
        self.conditional, self.num_classes = conditional, num_classes
        layers, d = [], z_dim + z_extra(conditional, num_classes)
        for h in hidden:
            bn = [batch_norm(h, conditional, num_classes, dim=1)] if batchnorm or conditional == "projection" else []
            layers += [nn.Linear(d, h, bias=not bn), *bn, nn.ReLU(True)]
            d = h
        layers.append(nn.Linear(d, math.prod(self.shape)))
        if tanh or (tanh is None and len(self.shape) == 3):
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        init_weights("model.generator", self, init)
        self.register_load_state_dict_pre_hook(_fold_bias_before_norm)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional is None:
            return self.net(z).view(-1, *self.shape)
        return run_layers(self.net, g_input(z, y, self.conditional, self.num_classes), y).view(-1, *self.shape)


def _fold_bias_before_norm(module: MLPGenerator, state_dict, prefix, *args) -> None:
    """Load hook: a stored bias of a Linear that now has none (it is followed by a batch norm) is subtracted from
    the norm's running mean instead. In training mode the norm removes any bias; in evaluation mode
    (x W + b - mean) equals (x W - (mean - b)), so outputs are unchanged."""
    for i, layer in enumerate(module.net):
        key = f"{prefix}net.{i}.bias"
        if isinstance(layer, nn.Linear) and layer.bias is None and key in state_dict:
            bias = state_dict.pop(key)
            norm = module.net[i + 1]
            inner = "bn." if hasattr(norm, "bn") else ""  # class-conditional batch norm: its inner norm
            mean = f"{prefix}net.{i + 1}.{inner}running_mean"
            if mean in state_dict:
                state_dict[mean] = state_dict[mean] - bias


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
        conditional: str | None = None,
        num_classes: int = 0,
        label_slots: int = 1,
    ):
        super().__init__()
        check_d_kwargs("model.discriminator", dropout, width)
        for h in hidden:
            check_range("model.discriminator", "hidden", h, 1)
        if maxout:
            from gan_lab.nets.maxout import LinearMaxout
        layers, d = [nn.Flatten()], math.prod(shape) + DCondition.extra_inputs(conditional, num_classes, label_slots)
        for h in hidden:
            h = scaled(h, width)
            unit = [LinearMaxout(d, h, maxout)] if maxout else [nn.Linear(d, h), nn.LeakyReLU(0.2, True)]
            layers += [*unit, *dropout_layers(dropout)]
            d = h
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.head = nn.Linear(d + int(minibatch_std), 1)
        if conditional is not None:
            self.cond = DCondition(conditional, num_classes, label_slots, channels=d, flat=d, maps=False)
        init_weights("model.discriminator", self, init)
