"""Paired image metrics: known values, ranges, masks, and the SR benchmark protocol on Set5/Set14."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, needs_shared

from gan_lab.metrics import image_quality as iq


def test_rgb_to_y_matches_matlab_rgb2ycbcr():
    rgb = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    x = rgb.T.reshape(1, 3, 5, 1)
    y = iq.rgb_to_y(x, value_range=(0, 1)).flatten().tolist()
    assert y == pytest.approx([16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966])
    assert iq.rgb_to_y(x * 2 - 1).flatten().tolist() == pytest.approx(y)  # default range [-1, 1]
    assert iq.rgb_to_y(x * 255, value_range=(0, 255)).flatten().tolist() == pytest.approx(y)
    with pytest.raises(ValueError, match="N x 3"):
        iq.rgb_to_y(torch.zeros(1, 1, 4, 4))


def test_psnr_known_values():
    x = torch.zeros(2, 3, 8, 8)
    assert torch.isinf(iq.psnr(x, x)) and iq.psnr(x, x) > 0
    y = x + 0.2  # [-1, 1]: error 0.1 of the range -> MSE 0.01 -> 20 dB
    assert float(iq.psnr(x, y)) == pytest.approx(20.0)
    assert float(iq.psnr(x, x + 0.1, value_range=(0, 1))) == pytest.approx(20.0)
    assert float(iq.psnr(x, x + 25.5, value_range=(0, 255))) == pytest.approx(20.0)
    y[1] += 0.2  # second image: error 0.2 -> 13.98 dB; mean of the per-image values
    per = iq.psnr(x, y, reduction="none")
    assert per.shape == (2,) and per.tolist() == pytest.approx([20.0, 20 - 20 * math.log10(2)])
    assert float(iq.psnr(x, y)) == pytest.approx(float(per.mean()))
    assert float(iq.l1(x, y)) == pytest.approx(0.3) and float(iq.l2(x, y)) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="same shape"):
        iq.psnr(x, x[:1])


def test_psnr_y_border_and_grey():
    hr = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    sr = hr + 10 / 219  # every channel +10/219 of [0, 1] -> Y + 10 of 255
    assert float(iq.psnr_y(sr, hr, value_range=(0, 1))) == pytest.approx(10 * math.log10(255**2 / 100))
    grey = float(iq.psnr_y(sr, hr, value_range=(0, 1), grey=True))  # grey values: + 10 * 255 / 219
    assert grey == pytest.approx(10 * math.log10(219**2 / 100))
    per = iq.psnr_y(sr, hr, value_range=(0, 1), grey=torch.tensor([True, False]), reduction="none")
    assert float(per[0]) == pytest.approx(grey) and per[1] > per[0]  # grey: errors scaled by 255 / 219
    edge = hr.clone()
    edge[..., :3, :] = 0  # errors only within a 3-px border
    assert torch.isinf(iq.psnr_y(edge, hr, border=3, value_range=(0, 1)))
    assert not torch.isinf(iq.psnr_y(edge, hr, border=2, value_range=(0, 1)))
    one = iq.psnr_y(sr[:, :1], hr[:, :1], value_range=(0, 1))  # 1 channel: grey values in [0, 255]
    assert float(one) == pytest.approx(10 * math.log10(219**2 / 100))
    with pytest.raises(ValueError, match="border=8"):
        iq.psnr_y(sr, hr, border=8)


def test_ssim_identity_and_reference():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 40, 36, generator=g) * 2 - 1
    sr = (hr + 0.2 * torch.randn(hr.shape, generator=g)).clamp(-1, 1)
    assert float(iq.ssim(hr, hr)) == pytest.approx(1.0)
    assert float(iq.ssim_y(hr, hr, border=4)) == pytest.approx(1.0)
    ys, yh = iq.y_channel_pair(sr, hr, border=4)
    ref = [structural_similarity(ys[i, 0].numpy(), yh[i, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255) for i in range(2)]
    assert iq.ssim_y(sr, hr, border=4, reduction="none").tolist() == pytest.approx(ref, abs=1e-9)
    u, v = (sr[0].numpy() + 1) / 2, (hr[0].numpy() + 1) / 2
    ref_rgb = np.mean([structural_similarity(u[c], v[c], gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, data_range=1.0) for c in range(3)])
    assert float(iq.ssim(sr[:1], hr[:1])) == pytest.approx(ref_rgb, abs=1e-6)
    assert 0 < float(iq.ssim(sr, hr)) < 1
    with pytest.raises(ValueError, match="11 x 11"):
        iq.ssim(hr[..., :10, :10], hr[..., :10, :10])


def test_masked_metrics():
    x = torch.zeros(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 1
    y = x + 0.5 * (1 - mask)  # errors only outside the hole
    assert float(iq.masked_l1(x, y, mask)) == 0 and torch.isinf(iq.masked_psnr(x, y, mask))
    y = x + 0.2 * mask  # errors only inside the hole
    assert float(iq.masked_l1(x, y, mask)) == pytest.approx(0.2)
    assert float(iq.masked_l2(x, y, mask)) == pytest.approx(0.04)
    assert float(iq.masked_psnr(x, y, mask)) == pytest.approx(20.0)
    assert float(iq.psnr(x, y)) > 20.0  # diluted by the unchanged pixels
    with pytest.raises(ValueError, match="empty"):
        iq.masked_l1(x, y, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        iq.masked_l1(x, y, mask.expand(2, 3, 8, 8))


def bicubic_benchmark(name: str, scale: int = 4) -> tuple[float, float]:
    """Mean PSNR-Y / SSIM-Y of MATLAB-bicubic upscaling of the MATLAB-bicubic downscaled images."""
    from gan_lab.metrics.sr_benchmark import benchmark_sr

    r = benchmark_sr(None, SHARED_DATA / "sr" / name, scale)
    return r["psnr_y"], r["ssim_y"]


@needs_shared
def test_set5_bicubic_x4_matches_published_psnr():
    psnr, ssim = bicubic_benchmark("CSet5")
    assert psnr == pytest.approx(28.43, abs=0.05)  # SRGAN (Ledig 2017) Table 2: bicubic 28.43 dB
    assert ssim == pytest.approx(0.8104, abs=0.002)  # VDSR's bicubic SSIM (measured 0.8111)


@needs_shared
def test_set14_bicubic_x4_matches_published_psnr():
    psnr, ssim = bicubic_benchmark("CSet14")
    assert psnr == pytest.approx(25.99, abs=0.05)  # SRGAN Table 2: bicubic 25.99 dB
    assert ssim == pytest.approx(0.7027, abs=0.002)  # VDSR's bicubic SSIM (measured 0.7029)


@needs_shared
def test_sr_benchmark_scores_a_model_like_the_baseline_it_computes():
    """A 'model' that is float bicubic upscaling scores what the uint8 bicubic baseline scores (the model path
    quantizes its output to 8 bits as a saved PNG); a model of the wrong output size is refused."""
    from gan_lab.data.sr import imresize_tensor
    from gan_lab.metrics.sr_benchmark import benchmark_sr

    class Bicubic(torch.nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, x):
            return imresize_tensor(x, self.scale)

    folder = SHARED_DATA / "sr" / "CSet5"
    base = benchmark_sr(None, folder, 4)
    model = benchmark_sr(Bicubic(4), folder, 4)
    assert model["n_images"] == base["n_images"] == 5
    assert model["psnr_y"] == pytest.approx(base["psnr_y"], abs=0.05)
    assert model["ssim_y"] == pytest.approx(base["ssim_y"], abs=0.002)
    with pytest.raises(ValueError, match="the model made"):
        benchmark_sr(Bicubic(2), folder, 4)
