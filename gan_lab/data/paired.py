"""Paired image-to-image data: batches are (condition, target), both N x C x H x W in [-1, 1].

- `Edges2DigitsDataModule`: edge map of a digit -> the digit (embedded data, no files).
- `PairedFolderDataModule`: the pix2pix format, each file holds A | B side by side, in
  `<root>/train`, `<root>/val`, `<root>/test` (e.g. facades, maps, edges2shoes).
- `ColorizeDataModule`: grey (BT.601 luma) -> colour random patches of photos.

Also the image-file helpers the other image data modules share (`list_images`, `read_image`,
`load_photos`, `random_patches`). Besides `shape` (the target sample), the modules set
`condition_shape` (one condition sample) and `real_index = 1`: the target is what metrics compare a
generator's outputs with (`real_images(split)`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_lab.data.base import InMemoryDataModule, split_train_val
from gan_lab.data.digits import load_digits_images
from gan_lab.data.images import ImageError, load_image
from gan_lab.errors import ConfigError, check_range

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "immunohistochemistry")


# image files ---------------------------------------------------------------------------------------
def check_choice(owner: str, name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{owner}: {name}={value!r} is not known; allowed {', '.join(map(str, allowed))}")


def list_images(folder: str | Path, owner: str) -> list[Path]:
    """Sorted image files of a folder; ConfigError when it is missing or holds none."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{owner}: folder {str(folder)!r} does not exist; expected a folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(
            f"{owner}: folder {str(folder)!r} holds no images; allowed suffixes {', '.join(IMAGE_SUFFIXES)}"
        )
    return files


def read_image(path: str | Path, owner: str, on_corrupt: str = "skip") -> np.ndarray | None:
    """H x W x 3 uint8 RGB (greyscale converted); a corrupt or truncated file gives None and a warning
    naming it (on_corrupt="skip") or a ConfigError (on_corrupt="error")."""
    try:  # gan_lab.data.images: 16-bit files scaled (not clipped) to 8 bit, alpha over white
        return load_image(path, channels=3)
    except ImageError as e:  # missing, empty, truncated or not an image
        msg = f"{owner}: cannot read image {str(path)!r} ({str(e).removeprefix(str(path) + ': ')})"
        if on_corrupt == "error":
            raise ConfigError(msg + "; set on_corrupt=skip to skip it") from None
        warnings.warn(msg + "; skipped", stacklevel=2)
        return None


def read_images(files, owner: str, on_corrupt: str) -> list[np.ndarray]:
    """Readable images of `files`; skipped ones are warned about only when some could be read (otherwise
    one error says that none could)."""
    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")
        images = [im for im in (read_image(p, owner, on_corrupt) for p in files) if im is not None]
    if not images:
        first = str(skipped[0].message) if skipped else "no readable image"
        raise ConfigError(
            f"{owner}: none of the {len(files)} images in {str(Path(files[0]).parent)!r} could be read; first: {first}"
        )
    for w in skipped:
        warnings.warn(str(w.message), stacklevel=2)
    return images


def _skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    return skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()


def load_photos(source: str, owner: str, on_corrupt: str = "skip") -> list[np.ndarray]:
    """H x W x 3 uint8 photos: "skimage" = scikit-image's embedded colour photos (SKIMAGE_PHOTOS, no
    download), else every image file of the folder `source`."""
    if source == "skimage":
        return [_skimage_photo(n) for n in SKIMAGE_PHOTOS]
    return read_images(list_images(source, owner), owner, on_corrupt)


def random_patches(images: list[np.ndarray], n: int, patch: int, seed: int, owner: str) -> np.ndarray:
    """n random patch x patch crops (N x patch x patch x C uint8): a uniformly drawn image, then a
    uniform position; images smaller than the patch are left out."""
    big = [im for im in images if min(im.shape[:2]) >= patch]
    if not big:
        sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images})
        raise ConfigError(
            f"{owner}: patch={patch} is larger than every image ({', '.join(sizes)}); "
            f"allowed at most {max(min(im.shape[:2]) for im in images)}"
        )
    rng = np.random.default_rng(seed)
    out = np.empty((n, patch, patch, big[0].shape[2]), dtype=np.uint8)
    for k, i in enumerate(rng.integers(len(big), size=n)):
        h, w = big[i].shape[:2]
        y, x = rng.integers(h - patch + 1), rng.integers(w - patch + 1)
        out[k] = big[i][y : y + patch, x : x + patch]
    return out


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """N x H x W x C (or one H x W x C) uint8 -> float N x C x H x W in [-1, 1]."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float32))
    x = x.unsqueeze(0) if x.dim() == 3 else x
    return (x.permute(0, 3, 1, 2) / 127.5 - 1).contiguous()


def rgb_to_grey(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma 0.299 R + 0.587 G + 0.114 B of N x 3 x H x W images (any range) -> N x 1 x H x W."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


# edges2digits --------------------------------------------------------------------------------------
def edge_map(x: torch.Tensor, kind: str = "sobel") -> torch.Tensor:
    """Edges of N x 1 x H x W images in [-1, 1], in [-1, 1]: "sobel" = gradient magnitude divided by
    each image's maximum, "canny" = kornia's binary Canny edges (thresholds 0.1 / 0.2)."""
    import kornia

    x01 = (x + 1) / 2
    if kind == "sobel":
        e = kornia.filters.sobel(x01)
        e = e / e.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    elif kind == "canny":
        e = kornia.filters.canny(x01)[1]
    else:
        raise ConfigError(f"data.edges2digits: edge={kind!r} is not known; allowed sobel, canny")
    return e * 2 - 1


class Edges2DigitsDataModule(InMemoryDataModule):
    """Batches are (edge map, digit), both 1 x size x size in [-1, 1]. Canny takes ~5 s at load."""

    real_index = 1  # metrics compare outputs with the digits, not the edge maps

    def __init__(self, size: int = 32, edge: str = "sobel", **kw):
        super().__init__(name="edges2digits", **kw)
        check_range("data.edges2digits", "size", size, 8, 256)
        check_choice("data.edges2digits", "edge", edge, ("sobel", "canny"))
        self.size, self.edge = int(size), edge
        self.shape = self.condition_shape = (1, self.size, self.size)

    def load(self):
        x, _ = load_digits_images(self.size)
        return split_train_val((edge_map(x, self.edge).contiguous(), x), self.val_fraction, self.split_seed)


# pix2pix folders -----------------------------------------------------------------------------------
def load_ab_folder(folder: Path, size: int, owner: str, on_corrupt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) as N x 3 x size x size in [-1, 1] from A|B side-by-side images (each half resized with
    PIL bicubic; no random jitter/flip: in-memory batches are fixed)."""
    a, b = [], []
    for path in list_images(folder, owner):
        im = read_image(path, owner, on_corrupt)
        if im is None:
            continue
        half = im.shape[1] // 2
        for side, out in ((im[:, :half], a), (im[:, half : 2 * half], b)):
            out.append(np.asarray(Image.fromarray(side).resize((size, size), Image.BICUBIC)))
    if not a:
        raise ConfigError(f"{owner}: no image of {str(folder)!r} could be read")
    return to_tensor(np.stack(a)), to_tensor(np.stack(b))


class PairedFolderDataModule(InMemoryDataModule):
    """pix2pix data: batches are (condition, target) = (A, B) for direction AtoB, (B, A) for BtoA.

    `val_split=None` (or "") splits the training folder by `val_fraction` instead of reading a folder.
    Images are held as float32: 256 x 256 pairs take 1.5 MB each.
    """

    real_index = 1  # metrics compare outputs with the targets, not the inputs

    def __init__(
        self,
        root: str,
        direction: str = "AtoB",
        size: int = 256,
        train_split: str = "train",
        val_split: str | None = "val",
        on_corrupt: str = "skip",
        **kw,
    ):
        super().__init__(name="paired", **kw)
        owner = "data.paired"
        check_choice(owner, "direction", direction, ("AtoB", "BtoA"))
        check_choice(owner, "on_corrupt", on_corrupt, ("skip", "error"))
        check_range(owner, "size", size, 8, 1024)
        self.root, self.direction, self.size = Path(str(root)).expanduser(), direction, int(size)
        self.train_split, self.val_split, self.on_corrupt = train_split, val_split, on_corrupt
        if not self.root.is_dir():
            raise ConfigError(
                f"{owner}: root={str(root)!r} is not a directory; expected a folder with "
                f"{train_split}/ and {val_split}/ subfolders of A|B images"
            )
        self.shape = self.condition_shape = (3, self.size, self.size)

    def _pairs(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = load_ab_folder(self.root / split, self.size, "data.paired", self.on_corrupt)
        return (a, b) if self.direction == "AtoB" else (b, a)

    def load(self):
        train = self._pairs(self.train_split)
        if not self.val_split:
            return split_train_val(train, self.val_fraction, self.split_seed)
        return train, self._pairs(self.val_split)


# colourisation -------------------------------------------------------------------------------------
class ColorizeDataModule(InMemoryDataModule):
    """Batches are (grey 1 x patch x patch, colour 3 x patch x patch) in [-1, 1]: `n_patches` random
    crops (seeded by `patch_seed`) of the scikit-image photos (source="skimage") or of the images of
    the folder `source` (e.g. a folder of BSD68 photos), split by `val_fraction`."""

    real_index = 1  # metrics compare outputs with the colour patches, not the grey inputs

    def __init__(
        self,
        source: str = "skimage",
        patch: int = 64,
        n_patches: int = 1000,
        patch_seed: int = 0,
        on_corrupt: str = "skip",
        **kw,
    ):
        super().__init__(name="colorize", **kw)
        owner = "data.colorize"
        check_range(owner, "patch", patch, 8, 1024)
        check_range(owner, "n_patches", n_patches, 1)
        check_choice(owner, "on_corrupt", on_corrupt, ("skip", "error"))
        self.source, self.patch, self.n_patches = str(source), int(patch), int(n_patches)
        self.patch_seed, self.on_corrupt = patch_seed, on_corrupt
        self.shape = (3, self.patch, self.patch)
        self.condition_shape = (1, self.patch, self.patch)

    def load(self):
        owner = "data.colorize"
        photos = load_photos(self.source, owner, self.on_corrupt)
        colour = to_tensor(random_patches(photos, self.n_patches, self.patch, self.patch_seed, owner))
        return split_train_val((rgb_to_grey(colour).contiguous(), colour), self.val_fraction, self.split_seed)
