"""Architectures of the image-to-image tasks: shapes, ranges, receptive fields, dropout, kwargs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_lab.errors import ConfigError
from gan_lab.nets.context_encoder import ContextDiscriminator, ContextEncoder
from gan_lab.nets.patchgan import PatchGANDiscriminator, patchgan_receptive_field
from gan_lab.nets.srresnet import SRDiscriminator, SRResNet
from gan_lab.nets.unet import UNetGenerator


def count(module: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


# U-Net ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, n_down", [(32, 5), (256, 8)])
def test_unet_shapes_range_and_depth(size, n_down):
    g = UNetGenerator(3, 2, size, ngf=4)
    assert g.n_down == n_down and len(g.downs) == n_down and len(g.ups) == n_down
    y = g(torch.randn(2, 3, size, size) * 3)
    assert y.shape == (2, 2, size, size)
    assert y.min() >= -1 and y.max() <= 1


def test_unet_paper_size_and_params():
    g = UNetGenerator(3, 3, 256)  # pix2pix's 256 x 256 U-Net: 54.4 M parameters as the official code
    assert sum(p.numel() for p in g.parameters()) == pytest.approx(54.4e6, rel=0.01)


def test_unet_dropout_in_first_decoder_blocks_only():
    g = UNetGenerator(1, 1, 32, ngf=4, n_dropout=3)
    has = [count(up, nn.Dropout) for up in g.ups]
    assert has == [1, 1, 1, 0, 0]
    assert all(m.p == 0.5 for m in g.modules() if isinstance(m, nn.Dropout))
    assert count(g.downs, nn.Dropout) == 0
    assert count(UNetGenerator(1, 1, 32, ngf=4, n_dropout=0), nn.Dropout) == 0
    assert count(UNetGenerator(1, 1, 32, ngf=4, dropout=0.0), nn.Dropout) == 0
    g.eval()
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(g(x), g(x))  # eval: deterministic; train mode keeps the dropout noise
    g.train()
    assert not torch.equal(g(x), g(x))


def test_unet_skips_concatenate_mirrored_encoder_blocks():
    g = UNetGenerator(1, 1, 32, ngf=4)
    convs_t = [m for m in g.ups.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.in_channels for c in convs_t] == [32, 64, 32, 16, 8]  # doubled: skip concatenated
    g.eval()
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    g(x)[0, 0, 5, 5].backward()
    reached = x.grad[0, 0].abs() > 0
    assert reached[5, 5] and reached.float().mean() > 0.5  # the 1x1 bottleneck sees the whole image


@pytest.mark.parametrize("kw, word", [
    ({"size": 24}, "size=24"), ({"size": 4}, "size=4"), ({"size": 2048}, "size=2048"),
    ({"size": 32, "n_down": 6}, "n_down=6"), ({"size": 32, "n_dropout": 5}, "n_dropout=5"),
    ({"size": 32, "dropout": 1.0}, "dropout=1.0"),
])
def test_unet_bad_arguments(kw, word):
    with pytest.raises(ConfigError, match=word) as e:
        UNetGenerator(1, 1, **kw)
    assert "allowed" in str(e.value) and "\n" not in str(e.value)


# PatchGAN -------------------------------------------------------------------------------------------
def test_patchgan_receptive_field_numbers():
    assert [patchgan_receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_measured(n_layers):
    """The gradient of the centre logit reaches exactly a receptive_field-wide square of the input."""
    d = PatchGANDiscriminator(2, ndf=4, n_layers=n_layers).eval()
    x = torch.randn(1, 2, 128, 128, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad.abs().sum((0, 1, 3)).nonzero()
    cols = x.grad.abs().sum((0, 1, 2)).nonzero()
    side = patchgan_receptive_field(n_layers)
    assert int(rows.max() - rows.min() + 1) == int(cols.max() - cols.min() + 1) == side


def test_patchgan_output_maps():
    d = PatchGANDiscriminator(6, ndf=4)
    assert d(torch.randn(2, 6, 256, 256)).shape == (2, 1, 30, 30)  # the paper's 30 x 30 map
    assert d(torch.randn(2, 6, 32, 32)).shape == (2, 1, 2, 2)
    assert PatchGANDiscriminator(2, ndf=4, n_layers=2)(torch.randn(2, 2, 32, 32)).shape == (2, 1, 6, 6)
    d = PatchGANDiscriminator(6)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert count(d, nn.BatchNorm2d) == 3


def test_patchgan_width_and_dropout():
    d = PatchGANDiscriminator(2, ndf=64, width=0.25, dropout=0.3)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 1]
    assert count(d, nn.Dropout) == count(d, nn.LeakyReLU) == 4
    assert count(PatchGANDiscriminator(2, width=0.001), nn.Dropout) == 0  # width floors at 1 channel
    with pytest.raises(ConfigError, match="width"):
        PatchGANDiscriminator(2, width=0.0)
    with pytest.raises(ConfigError, match="dropout"):
        PatchGANDiscriminator(2, dropout=1.5)


@pytest.mark.parametrize("make, x", [
    (lambda **kw: PatchGANDiscriminator(2, ndf=4, n_layers=2, **kw), torch.randn(4, 2, 32, 32)),
    (lambda **kw: SRDiscriminator(n_feats=4, **kw), torch.randn(4, 3, 16, 16)),
    (lambda **kw: ContextDiscriminator(3, 16, ndf=4, **kw), torch.randn(4, 3, 16, 16)),
])
def test_discriminators_take_trick_kwargs(make, x):
    """The tricks' hooks: width, dropout, minibatch_std kwargs and `features` for feature matching."""
    plain, mbstd = make(), make(minibatch_std=True, width=2.0, dropout=0.1)
    assert plain(x).shape == mbstd(x).shape
    assert plain.features(x).shape[0] == 4 and mbstd.features(x).shape[1] == 2 * plain.features(x).shape[1]
    assert mbstd.mbstd is not None


def test_dcgan_init():
    d = PatchGANDiscriminator(3)
    w = torch.cat([m.weight.flatten() for m in d.modules() if isinstance(m, nn.Conv2d)])
    assert abs(float(w.mean())) < 1e-3 and float(w.std()) == pytest.approx(0.02, rel=0.05)


# SRResNet / SRGAN D ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srresnet_scales(scale):
    g = SRResNet(scale=scale, n_blocks=2, n_feats=8)
    assert g(torch.randn(2, 3, 6, 7)).shape == (2, 3, 6 * scale, 7 * scale)
    assert count(g, nn.PixelShuffle) == (2 if scale == 4 else 1)


def test_srresnet_structure_and_bad_scale():
    g = SRResNet()
    assert len(g.blocks) == 16 and g.head[0].kernel_size == (9, 9) and g.tail.kernel_size == (9, 9)
    assert sum(p.numel() for p in g.parameters()) == pytest.approx(1.55e6, rel=0.02)  # SRResNet's 1.5 M
    for bad in (1, 5, 8, 2.5):
        with pytest.raises(ConfigError, match=f"scale={bad}.*allowed 2, 3, 4"):
            SRResNet(scale=bad)


@pytest.mark.parametrize("size", [16, 24, 96])
def test_sr_discriminator_any_patch(size):
    d = SRDiscriminator(n_feats=8)
    assert d(torch.randn(3, 3, size, size)).shape == (3, 1)
    assert d.features(torch.randn(3, 3, size, size)).shape == (3, 64)


def test_sr_discriminator_width_dropout():
    d = SRDiscriminator(n_feats=64, width=0.5, dropout=0.2)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128, 256, 256]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert d.head[0].out_features == 512
    assert count(d, nn.Dropout) == count(d, nn.LeakyReLU) == 9


# Context encoder ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64])
def test_context_encoder_shapes(size):
    g = ContextEncoder(3, size, size // 2, nbf=8, bottleneck=16)
    mask = torch.zeros(2, 1, size, size)
    y = g(torch.randn(2, 3, size, size), mask)
    assert y.shape == (2, 3, size, size) and y.min() >= -1 and y.max() <= 1
    assert g.encoder[0].in_channels == 4
    assert ContextEncoder(3, size, 8, nbf=8, use_mask_channel=False).encoder[0].in_channels == 3
    assert ContextEncoder(1, 64, 32).encoder[-3].out_channels == 512  # default bottleneck


def test_context_encoder_never_sees_the_hole():
    g = ContextEncoder(1, 32, 16, nbf=8, bottleneck=16).eval()
    from gan_lab.data.masks import center_mask

    mask = center_mask(32, 16, n=2)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    x2 = torch.where(mask.bool(), torch.rand_like(x), x)
    assert torch.equal(g(x, mask), g(x2, mask))
    with pytest.raises(ValueError, match="mask"):
        g(x, mask.expand(2, 3, 32, 32))


def test_context_encoder_bad_sizes():
    with pytest.raises(ConfigError, match="size=48"):
        ContextEncoder(3, 48, 16)
    with pytest.raises(ConfigError, match="hole_size=32"):
        ContextEncoder(3, 32, 32)


@pytest.mark.parametrize("size", [16, 32])
def test_context_discriminator(size):
    d = ContextDiscriminator(3, size, ndf=8, width=0.5, dropout=0.1)
    assert d(torch.randn(2, 3, size, size)).shape == (2, 1)
    assert count(d, nn.Dropout) > 0
    assert next(m for m in d.modules() if isinstance(m, nn.Conv2d)).out_channels == 4
