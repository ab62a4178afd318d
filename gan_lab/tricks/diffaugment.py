"""`trick=diffaugment`: Differentiable augmentation of all D inputs (Zhao 2020); image data only."""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import ConfigError
from gan_lab.tricks.base import Trick


class DiffAugment(Trick):
    """Differentiable augmentation of every D input, real and fake, in D and G steps (Zhao 2020).
    policy: comma-separated subset of color, translation, cutout."""

    name, paper = "diffaugment", "Zhao 2020 (Differentiable Augmentation)"
    resources = frozenset({"augment"})
    order = 10
    POLICIES = ("color", "translation", "cutout")
    ALLOWED = {"policy": "a comma-separated subset of color, translation, cutout"}  # for `gan-lab tricks`

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
