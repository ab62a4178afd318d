"""Tricks that change the discriminator's architecture or its input."""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import ConfigError
from gan_lab.tricks.base import Trick


class DDropout(Trick):
    name, paper = "d_dropout", "Srivastava 2014; Goodfellow 2014 (dropout in D)"
    resources = frozenset({"d_dropout"})

    def __init__(self, rate: float = 0.3):
        self.rate = self.check("rate", rate, 0.0, 1.0, high_open=True)

    def discriminator_kwargs(self, kw):
        return {**kw, "dropout": self.rate}


class DWidth(Trick):
    """Scale D's filter (or hidden unit) counts; the parameter count scales by about factor^2."""

    name, paper = "d_width", "Radford 2015 (capacity balance); Goodfellow 2016 tutorial"
    resources = frozenset({"d_width"})

    def __init__(self, factor: float = 0.5):
        self.factor = self.check("factor", factor, 0.0, 16.0, low_open=True)

    def discriminator_kwargs(self, kw):
        return {**kw, "width": kw.get("width", 1.0) * self.factor}


class SpectralNorm(Trick):
    name, paper = "spectral_norm", "Miyato 2018"
    resources = frozenset({"spectral_norm"})

    def __init__(self, n_power_iterations: int = 1):
        self.n_power_iterations = int(self.check("n_power_iterations", n_power_iterations, 1, 100))

    def wrap_discriminator(self, d: nn.Module) -> nn.Module:
        from torch.nn.utils.parametrizations import spectral_norm

        for m in list(d.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
                spectral_norm(m, n_power_iterations=self.n_power_iterations)
        return d


class MinibatchStdDev(Trick):
    name, paper = "minibatch_std", "Karras 2018 (ProGAN), after Salimans 2016 minibatch discrimination"
    resources = frozenset({"minibatch_std"})

    def discriminator_kwargs(self, kw):
        return {**kw, "minibatch_std": True}


class PacGAN(Trick):
    """D judges `m` samples packed along the channel (feature) axis: N x C x ... -> N/m x mC x ..."""

    name, paper = "pacgan", "Lin 2018 (PacGAN)"
    resources = frozenset({"packing"})
    order = 100  # packing is the last thing done to D's input

    def __init__(self, m: int = 2):
        self.m = int(self.check("m", m, 1, 16))

    def discriminator_kwargs(self, kw):
        if kw.get("in_channels"):
            return {**kw, "in_channels": kw["in_channels"] * self.m}
        shape = list(kw["shape"])
        return {**kw, "shape": [shape[0] * self.m, *shape[1:]]}

    def d_input(self, x, step):
        n = x.shape[0]
        if n % self.m:
            raise ConfigError(
                f"trick.pacgan: batch of {n} is not divisible by m={self.m}; choose data.batch_size "
                f"as a multiple of {self.m}"
            )
        return x.reshape(n // self.m, self.m * x.shape[1], *x.shape[2:])


class InstanceNoise(Trick):
    """Gaussian noise on every D input, std annealed linearly from `std` to 0 over `anneal_steps`."""

    name, paper = "instance_noise", "Sonderby 2017; Arjovsky & Bottou 2017"
    resources = frozenset({"instance_noise"})
    order = 50

    def __init__(self, std: float = 0.1, anneal_steps: int = 2000):
        self.std = self.check("std", std, 0.0)
        self.anneal_steps = int(self.check("anneal_steps", anneal_steps, 0))

    def std_at(self, step: int) -> float:
        if self.anneal_steps == 0:
            return self.std
        return self.std * max(0.0, 1.0 - step / self.anneal_steps)

    def d_input(self, x, step):
        s = self.std_at(step)
        return x + s * torch.randn_like(x) if s > 0 else x


class DiffAugment(Trick):
    """Differentiable augmentation of every D input, real and fake, in D and G steps (Zhao 2020).
    policy: comma-separated subset of color, translation, cutout."""

    name, paper = "diffaugment", "Zhao 2020 (Differentiable Augmentation)"
    resources = frozenset({"augment"})
    order = 10
    POLICIES = ("color", "translation", "cutout")

    def __init__(
        self, policy: str = "color,translation,cutout", translation_ratio: float = 0.125, cutout_ratio: float = 0.5
    ):
        self.policy = [p.strip() for p in policy.split(",") if p.strip()]
        for p in self.policy:
            if p not in self.POLICIES:
                raise ConfigError(f"trick.diffaugment: policy {p!r} is not known; allowed {', '.join(self.POLICIES)}")
        self.translation_ratio = self.check("translation_ratio", translation_ratio, 0.0, 1.0)
        self.cutout_ratio = self.check("cutout_ratio", cutout_ratio, 0.0, 1.0)

    def setup(self, task):
        if task.data_shape is None or len(task.data_shape) != 3:
            raise ConfigError(f"trick=diffaugment needs image data; the data samples have shape {task.data_shape}")

    def d_input(self, x, step):
        for p in self.policy:
            x = getattr(self, p)(x)
        return x

    @staticmethod
    def color(x):
        n = x.shape[0]
        x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)
        if x.shape[1] > 1:
            m = x.mean(1, keepdim=True)
            x = (x - m) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + m
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - m) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + m

    def translation(self, x):
        n, _, h, w = x.shape
        sh, sw = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        if sh == 0 and sw == 0:
            return x
        tx = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
        ty = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
        gi, gj = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
        gi = (gi.unsqueeze(0) + tx + 1).clamp(0, h + 1)
        gj = (gj.unsqueeze(0) + ty + 1).clamp(0, w + 1)
        padded = nn.functional.pad(x, (1, 1, 1, 1))
        idx = (gi * (w + 2) + gj).flatten(1)
        return padded.flatten(2).gather(2, idx.unsqueeze(1).expand(-1, x.shape[1], -1)).view_as(x)

    def cutout(self, x):
        n, _, h, w = x.shape
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        if ch == 0 or cw == 0:
            return x
        oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
        ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
        gi, gj = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
        inside = ((gi - oy + ch // 2).clamp(0, None) < ch) & ((gi - oy + ch // 2) >= 0)
        inside &= ((gj - ox + cw // 2) >= 0) & ((gj - ox + cw // 2) < cw)
        return x * (~inside).unsqueeze(1).to(x.dtype)
