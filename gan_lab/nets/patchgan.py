"""PatchGAN discriminator (Isola 2017): a fully convolutional net whose output map holds one real/fake
logit per overlapping image patch. n_layers=3 is the 70x70 PatchGAN C64-C128-C256-C512:

    Conv(c, 64, 4, s2) LReLU | Conv 128 s2 BN LReLU | Conv 256 s2 BN LReLU | Conv 512 s1 BN LReLU | Conv 1 s1

`in_channels` is condition + target channels (the task concatenates them); the output is raw logits
N x 1 x h x w (30 x 30 for 256 x 256 inputs, 2 x 2 for 32 x 32). `norm`: batch (pix2pix), instance (CycleGAN) or none.
"""

from __future__ import annotations

from torch import nn

from gan_lab.errors import ConfigError, check_range
from gan_lab.nets.common import Discriminator, MinibatchStd, check_d_kwargs, dcgan_init, dropout_layers, scaled


def patchgan_receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch one output logit sees: 70 for n_layers=3, 34 for 2, 16 for 1."""
    check_range("model.discriminator", "n_layers", n_layers, 1)
    rf = 1
    for kernel, stride in [(4, 1), (4, 1)] + [(4, 2)] * n_layers:  # walked from the output back
        rf = (rf - 1) * stride + kernel
    return rf


class PatchGANDiscriminator(Discriminator):
    """`features(x)` is the last hidden block's map (feature matching); `forward` the logit map.
    `minibatch_std` appends the minibatch standard-deviation channel before the last conv (the trick)."""

    def __init__(
        self,
        in_channels: int,
        ndf: int = 64,
        n_layers: int = 3,
        dropout: float = 0.0,
        width: float = 1.0,
        minibatch_std: bool = False,
        norm: str = "batch",
    ):
        from gan_lab.nets.resnet_generator import NORMS, norm_2d

        super().__init__()
        owner = "model.discriminator"
        check_d_kwargs(owner, dropout, width)
        if norm not in NORMS:
            raise ConfigError(f"{owner}: norm={norm!r} is not known; allowed {', '.join(NORMS)}")
        check_range(owner, "in_channels", in_channels, 1)
        check_range(owner, "n_layers", n_layers, 1)

        ch = [scaled(ndf * min(2**i, 8), width) for i in range(n_layers + 1)]
        layers = [nn.Conv2d(in_channels, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True), *dropout_layers(dropout)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(ch[i - 1], ch[i], 4, stride, 1, bias=norm == "none"),
                norm_2d(norm, ch[i]),
                nn.LeakyReLU(0.2, True),
                *dropout_layers(dropout),
            ]
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.head = nn.Conv2d(ch[-1] + int(minibatch_std), 1, 4, 1, 1)
        self.receptive_field = patchgan_receptive_field(n_layers)
        dcgan_init(self)
