"""Inpainting holes and the inpainting data module. Masks are float N x 1 x S x S, 1 = hole.

m = center_mask(32, 16)                          # Pathak 2016's centre square (1 x 1 x 32 x 32)
m = random_rect_masks(64, 32, 8, 16, g)          # one random rectangle per mask
m = free_form_masks(64, 32, generator=g)         # random thick brush strokes (Yu 2019 style)
dm = InpaintingDataModule(source="digits", size=32, mask="center")   # batches (image, mask)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from gan_lab.data.base import InMemoryDataModule, split_train_val
from gan_lab.data.digits import load_digits_images
from gan_lab.data.paired import check_choice, load_photos, random_patches, to_tensor
from gan_lab.errors import check_range

MASK_KINDS = ("center", "random_rect", "free_form")


def center_mask(size: int, hole: int, n: int = 1) -> torch.Tensor:
    """n copies of a centred hole x hole square."""
    check_range("data.inpainting", "hole", hole, 1, size - 1)
    m = torch.zeros(n, 1, size, size)
    top = (size - hole) // 2
    m[:, :, top : top + hole, top : top + hole] = 1
    return m


def random_rect_masks(
    n: int, size: int, min_hole: int, max_hole: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One rectangle per mask, height and width uniform in [min_hole, max_hole], uniform position."""
    check_range("data.inpainting", "max_hole", max_hole, 1, size - 1)
    check_range("data.inpainting", "min_hole", min_hole, 1, max_hole)
    hw = torch.randint(min_hole, max_hole + 1, (n, 2), generator=generator)
    top = (torch.rand(n, 2, generator=generator) * (size - hw + 1)).long()  # in [0, size - hw]
    r = torch.arange(size)
    rows = (r >= top[:, :1]) & (r < top[:, :1] + hw[:, :1])  # n x size
    cols = (r >= top[:, 1:]) & (r < top[:, 1:] + hw[:, 1:])
    return (rows[:, :, None] & cols[:, None, :]).float().unsqueeze(1)


def free_form_masks(
    n: int,
    size: int,
    max_strokes: int = 4,
    max_vertices: int = 6,
    max_width: int | None = None,
    max_length: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random brush strokes (DeepFill v2 style): 1..max_strokes polylines of 1..max_vertices segments
    (random start, heading turning by up to +-45 deg per segment, length in [0.3, 1] * max_length,
    default size / 4), drawn with round joints and caps, width in [max_width / 3, max_width] (default
    size / 4), clipped to the image. With the defaults a hole covers 18% of the image on average (5% of
    the masks under 4%, 5% over 37%)."""
    owner = "data.inpainting"
    max_width = max(2, size // 4) if max_width is None else max_width
    max_length = size / 4 if max_length is None else max_length
    check_range(owner, "max_strokes", max_strokes, 1)
    check_range(owner, "max_vertices", max_vertices, 1)
    check_range(owner, "max_width", max_width, 1, size)
    check_range(owner, "max_length", max_length, 0.0, low_open=True)
    g, s, v = generator, max_strokes, max_vertices

    def rand(*shape):
        return torch.rand(n, *shape, generator=g)

    n_strokes = torch.randint(1, s + 1, (n,), generator=g).tolist()
    n_vertices = torch.randint(1, v + 1, (n, s), generator=g).tolist()
    width = (max_width / 3 + rand(s) * (max_width * 2 / 3)).round().clamp_min(1).int().tolist()
    angle = rand(s, 1) * 2 * math.pi + ((rand(s, v) - 0.5) * math.pi / 2).cumsum(2)
    step = (0.3 + 0.7 * rand(s, v)) * max_length
    start = rand(s, 1, 2) * size
    moves = torch.stack([angle.cos(), angle.sin()], -1) * step.unsqueeze(-1)
    path = torch.cat([start, start + moves.cumsum(2)], 2)  # n x s x (v + 1) x 2 polyline vertices
    out = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n):  # PIL draws the polylines (round joints and caps); coordinates beyond the image clip
        im = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(im)
        for k in range(n_strokes[i]):
            pts = [tuple(p) for p in path[i, k, : n_vertices[i][k] + 1].tolist()]
            w = width[i][k]
            draw.line(pts, fill=1, width=w, joint="curve")
            for x, y in (pts[0], pts[-1]):
                draw.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=1)
        out[i] = np.asarray(im)
    return torch.from_numpy(out).float().unsqueeze(1)


def make_masks(kind: str, n: int, size: int, hole: int, min_hole: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "center":
        return center_mask(size, hole, n)
    if kind == "random_rect":
        return random_rect_masks(n, size, min_hole, hole, g)
    return free_form_masks(n, size, max_width=hole, generator=g)


class InpaintingDataModule(InMemoryDataModule):
    """Batches are (image C x size x size in [-1, 1], mask 1 x size x size, 1 = hole).

    source: "digits" (the embedded 8x8 digits, upscaled; 1 channel), "skimage" (random crops of the
    scikit-image photos; 3 channels) or a folder of images (random crops). `hole`: centre square side
    (mask="center"), largest rectangle side (random_rect, smallest `min_hole`, default hole // 2), or
    largest brush width (free_form); default size // 2 (size // 4 for free_form). Masks are drawn once,
    seeded by `mask_seed`: one per training image (a fixed bank) and a different fixed set for val.
    """

    def __init__(
        self,
        source: str = "digits",
        size: int = 32,
        mask: str = "center",
        hole: int | None = None,
        min_hole: int | None = None,
        n_patches: int = 1000,
        patch_seed: int = 0,
        mask_seed: int = 0,
        on_corrupt: str = "skip",
        **kw,
    ):
        super().__init__(name="inpainting", **kw)
        owner = "data.inpainting"
        check_range(owner, "size", size, 8, 1024)
        check_choice(owner, "mask", mask, MASK_KINDS)
        check_choice(owner, "on_corrupt", on_corrupt, ("skip", "error"))
        check_range(owner, "n_patches", n_patches, 1)
        self.size, self.mask = int(size), mask
        default = max(2, size // 4) if mask == "free_form" else size // 2
        self.hole = default if hole is None else hole
        check_range(owner, "hole", self.hole, 1, self.size - 1)
        self.min_hole = max(1, self.hole // 2) if min_hole is None else min_hole
        check_range(owner, "min_hole", self.min_hole, 1, self.hole)
        self.source, self.n_patches, self.on_corrupt = str(source), int(n_patches), on_corrupt
        self.patch_seed, self.mask_seed = patch_seed, mask_seed
        self.shape = (1 if self.source == "digits" else 3, self.size, self.size)

    def images(self) -> torch.Tensor:
        if self.source == "digits":
            return load_digits_images(self.size)[0]
        owner = "data.inpainting"
        photos = load_photos(self.source, owner, self.on_corrupt)
        return to_tensor(random_patches(photos, self.n_patches, self.size, self.patch_seed, owner))

    def load(self):
        (train,), (val,) = split_train_val((self.images(),), self.val_fraction, self.split_seed)

        def masks(n, seed):
            return make_masks(self.mask, n, self.size, self.hole, self.min_hole, seed)

        return (train, masks(len(train), self.mask_seed)), (val, masks(len(val), self.mask_seed + 1))
