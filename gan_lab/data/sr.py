"""Super-resolution data: HR images -> (LR, HR) pairs, with MATLAB's bicubic `imresize`.

The SR papers (SRCNN, VDSR, SRGAN, EDSR...) make LR images with MATLAB `imresize(hr, 1/scale,
'bicubic')`, which antialiases when downscaling (the cubic kernel is stretched by 1/scale) and
mirrors at the borders. PIL's BICUBIC and torch's interpolate(antialias=True) are close but not
equal, and the published numbers move by tenths of a dB with the kernel, so `imresize_matlab` is a
numpy port of MATLAB's algorithm (Keys cubic a = -0.5, symmetric padding, rows then columns, uint8
rounded after each pass like imresizemex). With it, bicubic x4 on Set5 gives the published
PSNR-Y 28.43 dB (see tests/test_image_quality.py). The data module uses the same kernel for LR.

    dm = SRFolderDataModule(root="skimage", scale=4, hr_patch=96)    # batches (lr, hr) in [-1, 1]
    pairs = load_sr_eval_set("<your data>/sr/CSet5", scale=4)  # full images for benchmarks
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_lab.data.base import InMemoryDataModule, split_train_val
from gan_lab.data.paired import check_choice, list_images, load_photos, random_patches, read_image, to_tensor
from gan_lab.errors import ConfigError, check_range


# MATLAB imresize ------------------------------------------------------------------------------------
def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys (1981) cubic convolution kernel with a = -0.5, as MATLAB's imresize."""
    a = np.abs(x)
    a2, a3 = a * a, a * a * a
    return (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2))


def _weight_matrix(n_in: int, n_out: int, scale: float, antialiasing: bool) -> np.ndarray:
    """n_out x n_in matrix of MATLAB imresize's `contributions` (weights of mirrored taps summed)."""
    width = 4.0
    if scale < 1 and antialiasing:  # stretch the kernel: interpolate and low-pass in one step
        width /= scale

        def kernel(x):
            return scale * _cubic(scale * x)
    else:
        kernel = _cubic
    u = np.arange(1, n_out + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)  # 1-based input coords
    left = np.floor(u - width / 2)
    idx = left[:, None] + np.arange(int(math.ceil(width)) + 2)[None, :]
    w = kernel(u[:, None] - idx)
    w /= w.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])  # symmetric padding
    idx = mirror[np.mod(idx.astype(np.int64) - 1, len(mirror))]
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), idx.shape[1]), idx.ravel()), w.ravel())
    return m


def _resize_axes(img: np.ndarray, scale: float, axes: tuple[int, int], antialiasing: bool) -> np.ndarray:
    uint8 = img.dtype == np.uint8
    out = torch.from_numpy(np.asarray(img, dtype=np.float64))
    for ax in axes:  # equal scales: MATLAB resizes rows (dim 1) first
        n_in = out.shape[ax]
        m = torch.from_numpy(_weight_matrix(n_in, int(math.ceil(n_in * scale)), scale, antialiasing))
        moved = out.movedim(ax, 0)
        out = (m @ moved.reshape(n_in, -1)).reshape(len(m), *moved.shape[1:]).movedim(0, ax)
        if uint8:  # MATLAB's imresizemex returns the input class after each pass
            out = out.round().clamp(0, 255)
    return out.numpy().astype(np.uint8) if uint8 else out.numpy()


def imresize_matlab(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """MATLAB `imresize(img, scale, 'bicubic')` of an H x W or H x W x C array; output size
    ceil(scale * H) x ceil(scale * W). uint8 in -> uint8 out (rounded after each axis, as MATLAB);
    float in -> float64 out, not clipped."""
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize_matlab expects H x W or H x W x C; got shape {img.shape}")
    if scale <= 0:
        raise ValueError(f"imresize_matlab: scale={scale} must be > 0")
    return _resize_axes(img, scale, (0, 1), antialiasing)


def imresize_tensor(x: torch.Tensor, scale: float) -> torch.Tensor:
    """`imresize_matlab` of float N x C x H x W tensors (any value range, no quantisation), e.g. the
    bicubic baseline of an SR model: imresize_tensor(lr, 4)."""
    out = _resize_axes(x.detach().cpu().double().numpy(), scale, (2, 3), antialiasing=True)
    return torch.from_numpy(out).to(x.dtype).to(x.device)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H x W [x C] to multiples of `scale` (bottom/right), as the SR benchmark scripts."""
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    return img[:h, :w]


def _check_scale(owner: str, scale) -> int:
    if isinstance(scale, bool) or scale not in (2, 3, 4):
        raise ConfigError(f"{owner}: scale={scale!r} is not supported; allowed 2, 3, 4")
    return int(scale)


# benchmarks -----------------------------------------------------------------------------------------
class EvalPair(tuple):
    """An (lr, hr) pair that also carries the file's `name` and whether it was a greyscale file
    (`grey`: pass it to psnr_y/ssim_y for the published protocol)."""

    def __new__(cls, lr: torch.Tensor, hr: torch.Tensor, name: str = "", grey: bool = False):
        pair = super().__new__(cls, (lr, hr))
        pair.name, pair.grey = name, grey
        return pair


def load_sr_eval_set(folder: str | Path, scale: int) -> list[EvalPair]:
    """Full images of a benchmark folder (Set5, Set14, ...) in file-name order, as (lr, hr) pairs of
    3 x h x w / 3 x H x W float tensors in [-1, 1]: HR mod-cropped to a multiple of `scale`
    (greyscale files become RGB with equal channels, flagged `.grey`), LR = imresize_matlab(HR uint8,
    1/scale)."""
    owner = "data.sr_eval"
    scale = _check_scale(owner, scale)
    pairs = []
    for path in list_images(folder, owner):
        hr = modcrop(read_image(path, owner, on_corrupt="error"), scale)
        with Image.open(path) as im:
            grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
        lr = imresize_matlab(hr, 1 / scale)
        pairs.append(EvalPair(to_tensor(lr)[0], to_tensor(hr)[0], path.name, grey))
    return pairs


# training data --------------------------------------------------------------------------------------
def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR versions (N x h x w x C uint8) of N x H x W x C uint8 HR patches, MATLAB bicubic."""
    return _resize_axes(hr, 1 / scale, (1, 2), antialiasing=True)


class SRFolderDataModule(InMemoryDataModule):
    """Batches are (lr 3 x p/s x p/s, hr 3 x p x p) in [-1, 1], p = hr_patch, s = scale.

    `n_patches` random HR crops (seeded by `patch_seed`) of the images in `root` (or of the scikit-image
    photos when root="skimage"); LR by MATLAB-style bicubic downscaling (`imresize_matlab`), the same
    kernel as the benchmarks. Validation: a `val_fraction` split of those patches, or, with `val_root`,
    round(n_patches * val_fraction) (at least 1) crops of the images of that folder.
    """

    real_index = 1  # metrics compare outputs with the HR patches, not the LR inputs

    def __init__(
        self,
        root: str = "skimage",
        scale: int = 4,
        hr_patch: int = 96,
        n_patches: int = 1000,
        val_root: str | None = None,
        patch_seed: int = 0,
        on_corrupt: str = "skip",
        **kw,
    ):
        super().__init__(name="sr", **kw)
        owner = "data.sr"
        self.scale = _check_scale(owner, scale)
        check_range(owner, "hr_patch", hr_patch, 4 * self.scale, 1024)
        if hr_patch % self.scale:
            low = hr_patch - hr_patch % self.scale
            raise ConfigError(
                f"{owner}: hr_patch={hr_patch} is not a multiple of scale={self.scale}; "
                f"allowed e.g. {low} or {low + self.scale}"
            )
        check_range(owner, "n_patches", n_patches, 1)
        check_choice(owner, "on_corrupt", on_corrupt, ("skip", "error"))
        if root is None or not str(root).strip():  # a preset that needs the user's photos
            raise ConfigError(
                f"{owner}: root={root!r} is not set; allowed a folder of photos (data.root=<dir>) or skimage"
            )
        self.root, self.val_root = str(root), (str(val_root) if val_root else None)
        self.hr_patch, self.n_patches = int(hr_patch), int(n_patches)
        self.patch_seed, self.on_corrupt = patch_seed, on_corrupt
        self.shape = (3, self.hr_patch, self.hr_patch)
        self.condition_shape = (3, self.hr_patch // self.scale, self.hr_patch // self.scale)

    def _pairs(self, source: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        photos = load_photos(source, "data.sr", self.on_corrupt)
        hr = random_patches(photos, n, self.hr_patch, seed, "data.sr")
        return to_tensor(make_lr(hr, self.scale)), to_tensor(hr)

    def load(self):
        train = self._pairs(self.root, self.n_patches, self.patch_seed)
        if self.val_root is None:
            return split_train_val(train, self.val_fraction, self.split_seed)
        n_val = max(1, round(self.n_patches * self.val_fraction))
        return train, self._pairs(self.val_root, n_val, self.patch_seed + 1)
