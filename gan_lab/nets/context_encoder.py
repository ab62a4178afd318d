"""Context Encoder (Pathak 2016) for inpainting, and its DCGAN-style discriminator.

    g = ContextEncoder(in_channels=3, size=64, hole_size=32)
    out = g(image, mask)        # N x 3 x 64 x 64 in [-1, 1]; mask N x 1 x 64 x 64, 1 = hole

The net blanks the hole itself (`image * (1 - mask)`, so the hole content can never leak in) and,
with `use_mask_channel`, appends the mask as an extra input channel. Encoder: 4x4 stride-2 convs
(LeakyReLU 0.2, BatchNorm except the first) from `size` down to 4x4, then a 4x4 conv to a
`bottleneck`-channel 1x1 code (the paper's 4000; 512 by default to stay CPU-sized). Decoder: a 4x4
transposed conv back to 4x4, stride-2 transposed convs (BN, ReLU) up to the full image, Tanh. The
task composites: only the output's hole region replaces the input (`hole_size` is kept for it and
for sizing the discriminator of Pathak's centre-hole setting).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_lab.errors import check_range
from gan_lab.nets.common import ConvTranspose2d, dcgan_init
from gan_lab.nets.dcgan import DCGANDiscriminator
from gan_lab.nets.unet import check_power_of_two


def _block(conv: nn.Module, channels: int, act: nn.Module) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(channels), act]


class ContextEncoder(nn.Module):
    def __init__(
        self,
        in_channels: int,
        size: int,
        hole_size: int,
        nbf: int = 64,
        bottleneck: int = 512,
        use_mask_channel: bool = True,
    ):
        super().__init__()
        owner = "model.generator"
        check_power_of_two(owner, "size", size)
        check_range(owner, "in_channels", in_channels, 1)
        check_range(owner, "hole_size", hole_size, 1, size - 1)
        check_range(owner, "nbf", nbf, 1)
        check_range(owner, "bottleneck", bottleneck, 1)
        self.size, self.hole_size, self.use_mask_channel = size, hole_size, bool(use_mask_channel)
        n = int(math.log2(size)) - 2  # stride-2 stages between size and 4
        ch = [nbf * min(2**i, 8) for i in range(n)]
        enc = [nn.Conv2d(in_channels + int(self.use_mask_channel), ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for i in range(1, n):
            enc += _block(nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=False), ch[i], nn.LeakyReLU(0.2, True))
        enc += _block(nn.Conv2d(ch[-1], bottleneck, 4, 1, 0, bias=False), bottleneck, nn.LeakyReLU(0.2, True))
        self.encoder = nn.Sequential(*enc)
        dec = _block(ConvTranspose2d(bottleneck, ch[-1], 4, 1, 0, bias=False), ch[-1], nn.ReLU(True))
        for i in range(n - 1, 0, -1):
            dec += _block(ConvTranspose2d(ch[i], ch[i - 1], 4, 2, 1, bias=False), ch[i - 1], nn.ReLU(True))
        dec += [ConvTranspose2d(ch[0], in_channels, 4, 2, 1), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)
        dcgan_init(self)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.shape[1] != 1 or mask.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"mask must be N x 1 x H x W matching the image; got {tuple(mask.shape)}")
        x = image * (1 - mask)
        if self.use_mask_channel:
            x = torch.cat([x, mask], 1)
        return self.decoder(self.encoder(x))


class ContextDiscriminator(DCGANDiscriminator):
    """DCGAN discriminator on `size` x `size` inputs (the hole region or the whole image): N x 1 logits.
    Sizes 4*2^k or 7*2^k (8, 14, 16, 28, 32, 64, ...); `features(x)` as in DCGANDiscriminator."""

    def __init__(
        self,
        in_channels: int,
        size: int,
        ndf: int = 64,
        width: float = 1.0,
        dropout: float = 0.0,
        minibatch_std: bool = False,
    ):
        super().__init__((in_channels, size, size), ndf=ndf, width=width, dropout=dropout, minibatch_std=minibatch_std)
