"""Paired image-quality metrics: PSNR/SSIM on the Y channel with a border crop (the SR protocol),
generic L1/L2/PSNR, and masked variants for inpainting.

Inputs are N x C x H x W float tensors; `value_range` says what they hold: (-1, 1) (the framework's
images, the default), (0, 1) or (0, 255). Per-image values are averaged over the batch
(`reduction="mean"`) or returned (`reduction="none"`), as the papers average per-image PSNR.

SR protocol (SRCNN/VDSR/SRGAN...): Y of MATLAB `rgb2ycbcr` (Y = 16 + 65.481 R + 128.553 G + 24.966 B
for RGB in [0, 1], so Y in [16, 235]), not rounded, `border` = scale pixels cropped on each side,
PSNR with peak 255, SSIM of Wang 2004 (11 x 11 gaussian window, sigma 1.5, K1 0.01, K2 0.03, no
downsampling, 'valid' filtering as Wang's ssim_index.m). Images flagged `grey` (greyscale files:
`load_sr_eval_set(...)[i].grey`) and 1-channel inputs are compared on their grey values in [0, 255]
instead of Y, as the MATLAB scripts do for Set14's bridge.png (an 'L' file; man.png is stored RGB
with equal channels and goes through rgb2ycbcr, so the flag cannot be read off the pixels).
With this, bicubic x4 (MATLAB imresize, `gan_lab.data.sr`) gives the published PSNR-Y 28.43 dB on
Set5 and 25.99 dB on Set14 (SRGAN Table 2); SSIM-Y 0.8111 / 0.7029 (VDSR reports 0.8104 / 0.7027;
SRGAN's 0.8211 / 0.7486 come from another SSIM implementation).

    psnr_y(sr, hr, border=4)                       # images in [-1, 1]
    ssim_y(sr, hr, border=4, value_range=(0, 255))
    ssim(out, target)                              # SSIM over all channels, images in [-1, 1]
    masked_psnr(out, target, mask)                 # PSNR inside the hole (mask 1 = hole)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Range = tuple[float, float]


def to_unit(x: torch.Tensor, value_range: Range = (-1.0, 1.0)) -> torch.Tensor:
    """Map values from value_range to [0, 1] (no clamping)."""
    lo, hi = value_range
    if hi <= lo:
        raise ValueError(f"value_range={value_range} must be (low, high) with low < high")
    return (x - lo) / (hi - lo)


def rgb_to_y(x: torch.Tensor, value_range: Range = (-1.0, 1.0)) -> torch.Tensor:
    """BT.601 Y of N x 3 x H x W RGB images as MATLAB rgb2ycbcr: N x 1 x H x W in [16, 235] (of 255)."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"rgb_to_y expects N x 3 x H x W; got {tuple(x.shape)}")
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return 16.0 + (to_unit(x, value_range) * w).sum(1, keepdim=True)


def _reduce(v: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return v.mean()
    if reduction == "none":
        return v
    raise ValueError(f"reduction={reduction!r} is not known; allowed mean, none")


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(
            f"expected two N x C x H x W tensors of the same shape; got {tuple(a.shape)}, {tuple(b.shape)}"
        )


def y_channel_pair(
    sr: torch.Tensor,
    hr: torch.Tensor,
    border: int = 0,
    value_range: Range = (-1.0, 1.0),
    grey: bool | torch.Tensor = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The SR protocol's compared channel of both images, N x 1 x h x w float64 in [0, 255]: Y of
    RGB images, grey values of 1-channel images and of the images flagged by `grey` (a bool or N
    bools), whose Y is mapped back to [0, 255]; `border` px cropped on each side."""
    _check_pair(sr, hr)
    sr, hr = sr.double(), hr.double()
    if sr.shape[1] == 1:
        ys, yh = to_unit(sr, value_range) * 255, to_unit(hr, value_range) * 255
    elif sr.shape[1] == 3:
        ys, yh = rgb_to_y(sr, value_range), rgb_to_y(hr, value_range)
        g = torch.as_tensor(grey, device=sr.device).view(-1, 1, 1, 1)
        ys = torch.where(g, (ys - 16) * (255 / 219), ys)  # 65.481 + 128.553 + 24.966 = 219
        yh = torch.where(g, (yh - 16) * (255 / 219), yh)
    else:
        raise ValueError(f"expected 1 or 3 channels; got {sr.shape[1]}")
    if border:
        if 2 * border >= min(sr.shape[-2:]):
            raise ValueError(f"border={border} leaves nothing of {tuple(sr.shape[-2:])} images")
        ys, yh = ys[..., border:-border, border:-border], yh[..., border:-border, border:-border]
    return ys, yh


def ssim(x: torch.Tensor, y: torch.Tensor, value_range: Range = (-1.0, 1.0), reduction: str = "mean"):
    """SSIM of Wang 2004 (ssim_index.m): gaussian window 11 x 11, sigma 1.5, K = (0.01, 0.03), data
    range = the width of value_range, 'valid' filtering, mean over the map and the channels, per image;
    x, y N x C x H x W with H, W >= 11. 1 when identical."""
    _check_pair(x, y)
    if min(x.shape[-2:]) < 11:
        raise ValueError(f"ssim needs images of at least 11 x 11 pixels; got {tuple(x.shape[-2:])}")
    x, y = to_unit(x.double(), value_range), to_unit(y.double(), value_range)
    c = x.shape[1]
    g = torch.exp(-((torch.arange(11, dtype=torch.float64, device=x.device) - 5) ** 2) / (2 * 1.5**2))
    g = (g / g.sum()).view(1, 1, 1, 11).repeat(5 * c, 1, 1, 1)

    def blur(t):  # separable 'valid' gaussian filter of the 5 stacked moments
        return F.conv2d(F.conv2d(t, g, groups=5 * c), g.transpose(2, 3), groups=5 * c)

    m = blur(torch.cat([x, y, x * x, y * y, x * y], 1)).split(c, 1)
    mx, my = m[0], m[1]
    vx, vy, cov = m[2] - mx * mx, m[3] - my * my, m[4] - mx * my
    c1, c2 = 0.01**2, 0.03**2  # (K L)^2 with L = 1 after to_unit
    smap = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return _reduce(smap.mean((1, 2, 3)), reduction)


def _psnr_from_mse(mse: torch.Tensor, peak: float) -> torch.Tensor:
    return 10 * torch.log10(peak**2 / mse)  # mse 0 -> inf


def psnr_y(
    sr: torch.Tensor,
    hr: torch.Tensor,
    border: int = 0,
    value_range: Range = (-1.0, 1.0),
    reduction: str = "mean",
    grey: bool | torch.Tensor = False,
) -> torch.Tensor:
    """PSNR (dB) on Y (grey values where `grey`), `border` px cropped, peak 255; inf when identical."""
    ys, yh = y_channel_pair(sr, hr, border, value_range, grey)
    return _reduce(_psnr_from_mse(((ys - yh) ** 2).mean((1, 2, 3)), 255.0), reduction)


def ssim_y(
    sr: torch.Tensor,
    hr: torch.Tensor,
    border: int = 0,
    value_range: Range = (-1.0, 1.0),
    reduction: str = "mean",
    grey: bool | torch.Tensor = False,
) -> torch.Tensor:
    """SSIM (Wang 2004) on Y (grey values where `grey`), `border` px cropped; 1 when identical."""
    ys, yh = y_channel_pair(sr, hr, border, value_range, grey)
    return ssim(ys, yh, (0.0, 255.0), reduction)


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over all elements (in the inputs' units)."""
    _check_pair(x, y)
    return (x - y).abs().mean()


def l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared difference (MSE) over all elements (in the inputs' units)."""
    _check_pair(x, y)
    return ((x - y) ** 2).mean()


def psnr(x: torch.Tensor, y: torch.Tensor, value_range: Range = (-1.0, 1.0), reduction: str = "mean"):
    """Per-image PSNR (dB) over all channels, peak = the width of value_range; inf when identical."""
    _check_pair(x, y)
    mse = ((to_unit(x.double(), value_range) - to_unit(y.double(), value_range)) ** 2).mean((1, 2, 3))
    return _reduce(_psnr_from_mse(mse, 1.0), reduction)


def _masked_mean(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean of v (N x C x H x W) over the pixels where mask (N x 1 x H x W) is 1."""
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != v.shape[0] or mask.shape[2:] != v.shape[2:]:
        raise ValueError(f"mask must be N x 1 x H x W matching {tuple(v.shape)}; got {tuple(mask.shape)}")
    area = mask.sum((1, 2, 3)) * v.shape[1]
    if (area == 0).any():
        raise ValueError("mask is empty for some image: nothing to measure")
    return (v * mask).sum((1, 2, 3)) / area


def masked_l1(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference inside the mask (1 = measured, e.g. the hole), averaged over images."""
    _check_pair(x, y)
    return _masked_mean((x - y).abs(), mask.to(x.dtype)).mean()


def masked_l2(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared difference inside the mask, averaged over images."""
    _check_pair(x, y)
    return _masked_mean((x - y) ** 2, mask.to(x.dtype)).mean()


def masked_psnr(
    x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, value_range: Range = (-1.0, 1.0), reduction: str = "mean"
) -> torch.Tensor:
    """Per-image PSNR (dB) of the pixels inside the mask, peak = the width of value_range."""
    _check_pair(x, y)
    d = to_unit(x.double(), value_range) - to_unit(y.double(), value_range)
    return _reduce(_psnr_from_mse(_masked_mean(d**2, mask.double()), 1.0), reduction)
