"""ResNet generator (Johnson 2016), CycleGAN's image-to-image translator (Zhu 2017): a 7x7 stem, `n_down`
stride-2 convs, `n_blocks` residual blocks at the bottleneck and mirrored transposed convs.

    g = ResnetGenerator(in_channels=1, out_channels=1, size=32, ngf=16)   # 9 blocks at 8 x 8 x 64
    y = g(x)                                                              # N x 1 x 32 x 32 in [-1, 1]

With ngf=64, n_blocks=9 this is the paper's c7s1-64, d128, d256, R256 x 9, u128, u64, c7s1-3: reflection
padding, instance norm (no affine parameters) and ReLU after every conv but the last, Tanh at the end;
each residual block is pad-conv3x3-norm-ReLU-pad-conv3x3-norm plus the input. Convs are biased only
where no affine norm follows (as the official code: `use_bias = norm is instance`).
"""

from __future__ import annotations

from torch import nn

from gan_lab.errors import ConfigError, check_range
from gan_lab.nets.common import dcgan_init

NORMS = ("instance", "batch", "none")


def norm_2d(kind: str, channels: int) -> nn.Module:
    """The normalisation layer of a conv block: instance (Ulyanov 2016, no affine parameters, no running
    statistics, as CycleGAN), batch, or none."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm={kind!r} is not known; allowed {', '.join(NORMS)}")


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str, dropout: float, bias: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_2d(norm, channels),
            nn.ReLU(True),
            *([nn.Dropout(dropout)] if dropout > 0 else []),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_2d(norm, channels),
        )

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        size: int | None = None,
        ngf: int = 64,
        n_blocks: int = 9,
        n_down: int = 2,
        norm: str = "instance",
        dropout: float = 0.0,
    ):
        super().__init__()
        owner = "model.generator"
        check_range(owner, "in_channels", in_channels, 1)
        check_range(owner, "out_channels", out_channels, 1)
        check_range(owner, "ngf", ngf, 1)
        check_range(owner, "n_blocks", n_blocks, 0, 64)
        check_range(owner, "n_down", n_down, 0, 6)
        check_range(owner, "dropout", dropout, 0.0, 1.0, high_open=True)
        if norm not in NORMS:
            raise ConfigError(f"{owner}: norm={norm!r} is not known; allowed {', '.join(NORMS)}")
        if size is not None and size % (2**n_down):
            raise ConfigError(
                f"{owner}: image size {size} is not divisible by 2^n_down = {2**n_down}; "
                f"allowed sizes are multiples of {2**n_down} (or a smaller n_down)"
            )
        bias = norm != "batch"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias), norm_2d(norm, ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(n_down):
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1, bias=bias), norm_2d(norm, ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch, norm, dropout, bias) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=bias),
                norm_2d(norm, ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)  # N(0, 0.02) conv weights, as the official init_type=normal

    def forward(self, x):
        return self.net(x)
