"""The small DCGAN of Unrolled GAN's Stacked MNIST experiment (Metz et al. 2017, appendix; PacGAN Table 3).

G: z (256) -> linear 4 x 4 x 64 -> transposed convs 32, 16, 8 (`kernel` x `kernel`, stride 2; batch norm +
ReLU) -> a 3 x 3 conv to the data's channels, tanh. The image size sets the upsampling: 4 -> 8 -> 16 -> 32, or
4 -> 7 -> 14 -> 28 for MNIST's own size. D: three 3 x 3 stride-2 convs with `filters` channels each ([2, 4, 8]
is "D at 1/4 of G's size", [4, 8, 16] "1/2"), each followed by batch norm when `batch_norm` and LeakyReLU(0.3),
then a linear logit. Both N(0, 0.02)-initialised. The D is deliberately weak: how much of the 1000 modes a GAN
covers depends on it. The PacGAN authors' code for their Table 3 (fjxmlzn/PacGAN,
stacked_MNIST_experiments/unrolled_GAN_experiment/D=0.25G and D=0.5G, model.py) uses 28 x 28 images, 3 x 3
transposed convs and batch norm in D: `kernel=3`, `batch_norm=true`, as the experiment presets set them.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.errors import ConfigError, check_range
from gan_lab.nets.common import Discriminator, MinibatchStd, check_d_kwargs, dcgan_init, dropout_layers, scaled


def _sizes(size: int, n: int) -> list[int]:
    """The feature-map sizes from 4 x 4 up to `size` in n stride-2 steps (each the next one halved, rounded up)."""
    sizes = [size]
    for _ in range(n):
        sizes.insert(0, -(-sizes[0] // 2))
    return sizes


def _check_image(owner: str, shape, n: int) -> list[int]:
    sizes = _sizes(shape[-1], n)
    if len(shape) != 3 or shape[1] != shape[2] or sizes[0] != 4:
        allowed = [s for s in range(2 ** (n + 1) + 1, 2 ** (n + 2) + 1) if _sizes(s, n)[0] == 4]
        raise ConfigError(
            f"{owner}: the Unrolled-GAN DCGAN with {n} upsamplings makes square images of "
            f"{allowed[0]} to {allowed[-1]} px (data.size); got sample shape {tuple(shape)}"
        )
    return sizes


class UnrolledDCGANGenerator(nn.Module):
    def __init__(self, shape, z_dim: int = 256, filters=(32, 16, 8), kernel: int = 5):
        super().__init__()
        check_range("model.generator", "z_dim", z_dim, 1)
        for f in filters:
            check_range("model.generator", "filters", f, 1)
        if kernel not in (3, 5):
            raise ConfigError(f"model.generator.kernel={kernel!r}: allowed 3, 5")
        sizes = _check_image("model.generator", shape, len(filters))
        self.z_dim, self.shape = z_dim, tuple(shape)
        self.fc = nn.Sequential(nn.Linear(z_dim, 4 * 4 * 64), nn.BatchNorm1d(4 * 4 * 64), nn.ReLU(True))
        layers, ch = [], 64
        for f, n_in, n_out in zip(filters, sizes, sizes[1:]):
            # (n_in - 1) * 2 - 2 * (kernel // 2) + kernel = 2 * n_in - 1; output_padding makes up the rest
            up = nn.ConvTranspose2d(ch, f, kernel, 2, kernel // 2, output_padding=n_out - 2 * n_in + 1)
            layers += [up, nn.BatchNorm2d(f), nn.ReLU(True)]
            ch = f
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
        batch_norm: bool = False,
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
            conv = nn.Conv2d(ch, f, 3, 2, 1, bias=not batch_norm)  # a conv followed by batch norm needs no bias
            norm = [nn.BatchNorm2d(f)] if batch_norm else []
            layers += [conv, *norm, nn.LeakyReLU(0.3, True), *dropout_layers(dropout)]
            ch, size = f, (size + 1) // 2
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.head = nn.Sequential(nn.Flatten(), nn.Linear((ch + int(minibatch_std)) * size * size, 1))
        dcgan_init(self)
