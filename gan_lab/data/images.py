"""The one image decoder: files, zip members or bytes -> H x W x C uint8, the same way everywhere.

    from gan_lab.data import images
    files = images.list_images("~/celeba")                      # sorted, recursive, image suffixes only
    x = images.load_image(files[0], channels=3, size=64)        # 64 x 64 x 3 uint8 (centre crop, lanczos)
    x = images.load_image(raw_bytes, channels=1, size=None)      # decode only: H x W x 1 uint8

Steps, in order (each one is a public function):
1. decode (`open_image`): PIL, the first frame of animated files; a missing, empty or corrupt file raises
   `ImageError` (a ValueError) naming the file.
2. 8 bit (`to_8bit`): 16-bit and 32-bit integer greyscale (I;16, I;16B, I) are scaled by 255/65535 and
   rounded, so 65535 -> 255 and k * 257 -> k (PIL's own convert clips them instead); float images (F) are
   taken as [0, 1]. Palette, 1-bit, CMYK, YCbCr... become L/LA/RGB/RGBA.
3. channels (`to_channels`): alpha is composited over `background` (a grey level 0-255 or "white"/"black"),
   then 1 channel = PIL's ITU-R 601-2 luma, 3 channels = RGB (grey repeated).
4. square (`make_square`): crop="center" (largest centred square), "pad" (pad the short side with
   `background`), "random" (a uniformly placed square, from the `rng` given), "none" (keep the aspect;
   resize then stretches).
5. resize (`resize`) to size x size with a named filter (RESIZE_FILTERS): PIL's antialiased lanczos,
   bicubic, bilinear and box; "area" = torch's area interpolation (adaptive average pooling, as
   `F.interpolate(mode="area")`). The filter moves FID, so data modules record it in their `protocol`.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from gan_lab.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
RESIZE_FILTERS = ("lanczos", "bicubic", "bilinear", "box", "area")
CROPS = ("center", "pad", "random", "none")
_PIL_FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
}


class ImageError(ValueError):
    """A file that is not a readable image (missing, empty, truncated, not an image)."""


# listing -------------------------------------------------------------------------------------------------
def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not Path(name).name.startswith(".")


def list_images(root: str | Path, owner: str = "data.root") -> list[Path]:
    """Image files under a folder, searched recursively, sorted by their path relative to `root`.
    A missing root, a root that is a file, or a folder without images raise one-line ConfigErrors."""
    folder = Path(root).expanduser()
    if not folder.exists():
        raise ConfigError(f"{owner}={str(root)!r} does not exist; allowed a folder of images or a .zip of images")
    if not folder.is_dir():
        raise ConfigError(f"{owner}={str(root)!r} is a file, not a folder; allowed a folder of images or a .zip")
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and is_image_name(p.name)),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise ConfigError(
            f"{owner}={str(root)!r} holds no images (searched recursively); allowed suffixes "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    return files


def list_zip_images(path: str | Path, owner: str = "data.root") -> list[str]:
    """Image member names of a zip archive, sorted; ConfigError for a bad archive or one without images."""
    try:
        with zipfile.ZipFile(Path(path).expanduser()) as z:
            names = sorted(i.filename for i in z.infolist() if not i.is_dir() and is_image_name(i.filename))
    except (OSError, zipfile.BadZipFile) as e:
        raise ConfigError(
            f"{owner}={str(path)!r} is not a readable zip archive ({e}); allowed a .zip of images"
        ) from None
    if not names:
        raise ConfigError(
            f"{owner}={str(path)!r} is a zip with no images; allowed suffixes {', '.join(IMAGE_SUFFIXES)}"
        )
    return names


# decoding ------------------------------------------------------------------------------------------------
def open_image(src, name: str | None = None) -> Image.Image:
    """A decoded PIL image (first frame) from a path, bytes or a PIL image; ImageError if unreadable."""
    if isinstance(src, Image.Image):
        return src
    label = name or (str(src) if isinstance(src, (str, Path)) else "<bytes>")
    try:
        if isinstance(src, (bytes, bytearray, memoryview)):
            if len(src) == 0:
                raise ImageError(f"{label}: empty file")
            im = Image.open(io.BytesIO(bytes(src)))
        else:
            path = Path(src).expanduser()
            if path.stat().st_size == 0:
                raise ImageError(f"{label}: empty file")
            im = Image.open(path)
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        im.load()  # decode now: a truncated file fails here, not in the middle of a batch
        return im
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{label}: {type(e).__name__}: {e}") from None


def to_8bit(im: Image.Image) -> Image.Image:
    """An image in one of the 8-bit modes L, LA, RGB, RGBA, with high-bit-depth data scaled, not clipped."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N (16-bit) and I (32-bit int, used for 16-bit PNGs)
        a = np.asarray(im).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(a * (255.0 / 65535.0)), 0, 255).astype(np.uint8), "L")
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(np.nan_to_num(a) * 255.0), 0, 255).astype(np.uint8), "L")
    if mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode == "PA":
        return im.convert("RGBA")
    if mode == "1":
        return im.convert("L")
    if mode in ("La", "RGBa"):
        return im.convert(mode.upper())
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def background_level(background) -> int:
    """A background grey level 0-255 from an int or "white"/"black"."""
    if isinstance(background, str) and background in ("white", "black"):
        return 255 if background == "white" else 0
    if isinstance(background, bool) or not isinstance(background, int) or not 0 <= background <= 255:
        raise ConfigError(f"data.background={background!r} is not known; allowed white, black or a grey level 0-255")
    return background


def to_channels(im: Image.Image, channels: int, background=255) -> Image.Image:
    """L (channels=1) or RGB (channels=3) of an 8-bit image; alpha composited over `background`."""
    im = to_8bit(im)
    if im.mode in ("LA", "RGBA"):
        level = background_level(background)
        rgba = im.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (level, level, level, 255))
        im = Image.alpha_composite(base, rgba).convert("RGB")
    return im.convert("L" if channels == 1 else "RGB")


def make_square(im: Image.Image, crop: str = "center", background=255, rng=None) -> Image.Image:
    """The largest centred / randomly placed square, the image padded to a square, or the image as it is."""
    w, h = im.size
    if crop == "none" or w == h:
        return im
    s = min(w, h)
    if crop == "center":
        left, top = (w - s) // 2, (h - s) // 2
    elif crop == "random":
        rng = rng if rng is not None else np.random.default_rng()
        left, top = int(rng.integers(w - s + 1)), int(rng.integers(h - s + 1))
    elif crop == "pad":
        level = background_level(background)
        fill = level if im.mode == "L" else (level,) * 3
        return ImageOps.pad(im, (max(w, h),) * 2, color=fill, centering=(0.5, 0.5))
    else:
        raise ConfigError(f"data.crop={crop!r} is not known; allowed {', '.join(CROPS)}")
    return im.crop((left, top, left + s, top + s))


def resize(im: Image.Image, size: int, resize_filter: str = "lanczos") -> Image.Image:
    """`im` resized to size x size with the named filter (RESIZE_FILTERS); unchanged if already that size."""
    if im.size == (size, size):
        return im
    if resize_filter in _PIL_FILTERS:
        return im.resize((size, size), _PIL_FILTERS[resize_filter])
    if resize_filter == "area":
        import torch

        a = np.asarray(im, dtype=np.float32)
        t = torch.from_numpy(a.reshape(a.shape[0], a.shape[1], -1)).permute(2, 0, 1)[None]
        out = torch.nn.functional.interpolate(t, size=(size, size), mode="area")[0].permute(1, 2, 0)
        out = out.round().clamp(0, 255).to(torch.uint8).numpy()
        return Image.fromarray(out[..., 0] if im.mode == "L" else out, im.mode)
    raise ConfigError(f"data.resize={resize_filter!r} is not known; allowed {', '.join(RESIZE_FILTERS)}")


def check_options(owner: str, channels, crop, resize_filter, background, size=None) -> None:
    """ConfigError (one line) for settings load_image does not accept."""
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ConfigError(f"{owner}: channels={channels!r} is not supported; allowed 1, 3")
    if crop not in CROPS:
        raise ConfigError(f"{owner}: crop={crop!r} is not known; allowed {', '.join(CROPS)}")
    if resize_filter not in RESIZE_FILTERS:
        raise ConfigError(f"{owner}: resize={resize_filter!r} is not known; allowed {', '.join(RESIZE_FILTERS)}")
    try:
        background_level(background)
    except ConfigError:
        raise ConfigError(
            f"{owner}: background={background!r} is not known; allowed white, black or a grey level 0-255"
        ) from None
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 4 <= size <= 4096):
        raise ConfigError(f"{owner}: size={size!r} is out of range; allowed an integer in [4, 4096]")


def load_image(
    src,
    channels: int = 3,
    size: int | None = None,
    crop: str = "center",
    resize_filter: str = "lanczos",
    background=255,
    rng=None,
    name: str | None = None,
) -> np.ndarray:
    """H x W x C uint8 (C = channels) of a path, bytes or PIL image: decoded, scaled to 8 bit, converted,
    then (with `size`) made square by `crop` and resized to size x size by `resize_filter`. ImageError for
    an unreadable file."""
    return load_image_sizes(src, (size,), channels, crop, resize_filter, background, rng, name)[0]


def load_image_sizes(
    src,
    sizes: tuple[int | None, ...],
    channels: int = 3,
    crop: str = "center",
    resize_filter: str = "lanczos",
    background=255,
    rng=None,
    name: str | None = None,
) -> list[np.ndarray]:
    """`load_image` at each of `sizes` (None: as stored), the file decoded and made square once."""
    im = to_channels(open_image(src, name), channels, background)
    square, out = None, []
    for size in sizes:
        if size is not None:
            square = make_square(im, crop, background, rng) if square is None else square
        a = np.asarray(im if size is None else resize(square, size, resize_filter), dtype=np.uint8)
        out.append(a[..., None] if a.ndim == 2 else a)
    return out


def image_size(src, name: str | None = None) -> tuple[int, int]:
    """(width, height) as stored, without decoding the pixels; ImageError if it is not an image."""
    try:
        with Image.open(io.BytesIO(src) if isinstance(src, bytes) else Path(src).expanduser()) as im:
            return im.size
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name or src}: {type(e).__name__}: {e}") from None
