"""The small DCGAN of Unrolled GAN's Stacked MNIST experiment (Metz et al. 2017, appendix; PacGAN Table 3).

G: z (256) -> linear 4 x 4 x 64 -> transposed convs 32, 16, 8 (5 x 5, stride 2; batch norm + ReLU) -> a 3 x 3
conv to the data's channels, tanh: 32 x 32 images. D: three 3 x 3 stride-2 convs with LeakyReLU(0.3) and
`filters` channels each ([2, 4, 8] is "D at 1/4 of G's size", [4, 8, 16] "1/2"), then a linear logit.
Both N(0, 0.02)-initialised. The D is deliberately weak: how much of the 1000 modes a GAN covers depends on it.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import ConfigError, check_range
from gan_lab.nets.common import Discriminator, MinibatchStd, check_d_kwargs, dcgan_init, dropout_layers, scaled


def _check_image(owner: str, shape) -> None:
    if len(shape) != 3 or tuple(shape[1:]) != (32, 32):
        raise ConfigError(f"{owner}: the Unrolled-GAN DCGAN makes 32 x 32 images; got sample shape {tuple(shape)}")


class UnrolledDCGANGenerator(nn.Module):
    def __init__(self, shape, z_dim: int = 256, filters=(32, 16, 8)):
        super().__init__()
        _check_image("model.generator", shape)
        check_range("model.generator", "z_dim", z_dim, 1)
        for f in filters:
            check_range("model.generator", "filters", f, 1)
        self.z_dim, self.shape = z_dim, tuple(shape)
        self.fc = nn.Sequential(nn.Linear(z_dim, 4 * 4 * 64), nn.BatchNorm1d(4 * 4 * 64), nn.ReLU(True))
        layers, ch = [], 64
        for f in filters:
            layers += [nn.ConvTranspose2d(ch, f, 5, 2, 2, output_padding=1), nn.BatchNorm2d(f), nn.ReLU(True)]
            ch = f
        size = 4 * 2 ** len(filters)
        if size != shape[-1]:
            raise ConfigError(
                f"model.generator.filters={list(filters)}: {len(filters)} upsamplings make {size} px, not 32"
            )
        layers += [nn.Conv2d(ch, shape[0], 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z.flatten(1)).view(-1, 64, 4, 4))


class UnrolledDCGANDiscriminator(Discriminator):
    def __init__(
        self,
        shape,
        filters=(2, 4, 8),
        width: float = 1.0,
        dropout: float = 0.0,
        minibatch_std: bool = False,
        in_channels: int | None = None,
    ):
        super().__init__()
        check_d_kwargs("model.discriminator", dropout, width)
        if len(shape) != 3:
            raise ConfigError(f"model.discriminator: image data needed; got sample shape {tuple(shape)}")
        layers, ch, size = [], in_channels or shape[0], shape[-1]
        for f in filters:
            check_range("model.discriminator", "filters", f, 1)
            f = scaled(f, width)
            layers += [nn.Conv2d(ch, f, 3, 2, 1), nn.LeakyReLU(0.3, True), *dropout_layers(dropout)]
            ch, size = f, (size + 1) // 2
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.head = nn.Sequential(nn.Flatten(), nn.Linear((ch + int(minibatch_std)) * size * size, 1))
        dcgan_init(self)
