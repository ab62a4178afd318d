"""Image-to-image data: edges2digits, pix2pix folders, colourisation, SR pairs and MATLAB imresize,
inpainting masks. Folder cases use tiny PNGs written to tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lab.data.masks import InpaintingDataModule, center_mask, free_form_masks, random_rect_masks
from gan_lab.data.paired import (
    ColorizeDataModule,
    Edges2DigitsDataModule,
    PairedFolderDataModule,
    edge_map,
    rgb_to_grey,
)
from gan_lab.data.sr import SRFolderDataModule, imresize_matlab, imresize_tensor, load_sr_eval_set, make_lr
from gan_lab.errors import ConfigError


def write_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)
    return path


def noise_image(h, w, seed, channels=3):
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape)


def write_truncated(path):
    write_png(path, noise_image(16, 32, 99))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def check_pair_batches(dm, condition_shape, target_shape):
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        cond, target = next(iter(loader))
        assert cond.shape[1:] == condition_shape and target.shape[1:] == target_shape
        assert cond.dtype == target.dtype == torch.float32
        for t in (cond, target):
            assert t.min() >= -1 and t.max() <= 1
    assert dm.shape == target_shape and dm.condition_shape == condition_shape
    return dm


# edges2digits ---------------------------------------------------------------------------------------
def test_edges2digits_sobel():
    dm = check_pair_batches(Edges2DigitsDataModule(size=32, batch_size=16), (1, 32, 32), (1, 32, 32))
    edges, digits = dm.split_tensors("train")
    assert len(edges) == 1617 and edges.amax((1, 2, 3)).eq(1).all()  # each map scaled to full range
    assert not torch.allclose(edges, digits)


def test_edge_maps():
    from gan_lab.data.digits import load_digits_images

    x = load_digits_images(16)[0][:8]
    canny = edge_map(x, "canny")
    assert canny.shape == x.shape and set(canny.unique().tolist()) <= {-1.0, 1.0} and (canny == 1).any()
    sobel = edge_map(x, "sobel")
    assert sobel.min() >= -1 and sobel.max() <= 1
    with pytest.raises(ConfigError, match="edge='laplace'.*allowed sobel, canny"):
        Edges2DigitsDataModule(edge="laplace")


# pix2pix folders ------------------------------------------------------------------------------------
def make_ab_folder(root, n_train=3, n_val=2):
    """A|B images: A half red (255, 0, 0), B half blue (0, 0, 255)."""
    ab = np.zeros((20, 40, 3), dtype=np.uint8)
    ab[:, :20, 0] = 255
    ab[:, 20:, 2] = 255
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            write_png(root / split / f"{i}.png", ab)
    return root


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_paired_folder_directions(tmp_path, direction):
    root = make_ab_folder(tmp_path / "facades")
    dm = check_pair_batches(PairedFolderDataModule(root, direction=direction, size=16, batch_size=2),
                            (3, 16, 16), (3, 16, 16))
    cond, target = dm.split_tensors("train")
    assert len(cond) == 3 and len(dm.split_tensors("val")[0]) == 2
    red, blue = torch.tensor([1.0, -1.0, -1.0]), torch.tensor([-1.0, -1.0, 1.0])
    a, b = (cond, target) if direction == "AtoB" else (target, cond)
    assert torch.allclose(a.mean((0, 2, 3)), red, atol=1e-3)
    assert torch.allclose(b.mean((0, 2, 3)), blue, atol=1e-3)


def test_paired_folder_split_without_val_folder(tmp_path):
    root = make_ab_folder(tmp_path / "d", n_train=10, n_val=0)
    dm = PairedFolderDataModule(root, size=8, val_split=None, val_fraction=0.2, batch_size=2)
    dm.setup()
    assert len(dm.split_tensors("train")[0]) == 8 and len(dm.split_tensors("val")[0]) == 2


def test_paired_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="root=.*nope.* is not a directory"):
        PairedFolderDataModule(tmp_path / "nope")
    with pytest.raises(ConfigError, match="direction='AtoC'.*allowed AtoB, BtoA"):
        PairedFolderDataModule(tmp_path, direction="AtoC")
    with pytest.raises(ConfigError, match="on_corrupt='ignore'"):
        PairedFolderDataModule(tmp_path, on_corrupt="ignore")
    with pytest.raises(ConfigError, match="size=4"):
        PairedFolderDataModule(tmp_path, size=4)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="train' holds no images") as e:
        PairedFolderDataModule(tmp_path, size=8).setup()
    assert "\n" not in str(e.value)
    write_png(tmp_path / "train" / "0.png", noise_image(8, 16, 0))
    with pytest.raises(ConfigError, match="val' does not exist"):
        PairedFolderDataModule(tmp_path, size=8, batch_size=1).setup()


def test_paired_folder_corrupt_file(tmp_path):
    root = make_ab_folder(tmp_path / "d")
    bad = write_truncated(root / "train" / "bad.png")
    dm = PairedFolderDataModule(root, size=8, batch_size=1)
    with pytest.warns(UserWarning, match="bad.png"):
        dm.setup()
    assert len(dm.split_tensors("train")[0]) == 3
    with pytest.raises(ConfigError, match="cannot read image .*bad.png.*on_corrupt=skip"):
        PairedFolderDataModule(root, size=8, batch_size=1, on_corrupt="error").setup()
    (root / "train" / "junk.jpg").write_bytes(b"not a jpeg at all")
    with pytest.warns(UserWarning, match="junk.jpg"):
        PairedFolderDataModule(root, size=8, batch_size=1).setup()
    assert bad.exists()


# colourisation --------------------------------------------------------------------------------------
def test_colorize_folder(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"{i}.png", noise_image(40, 50, i))
    write_png(tmp_path / "small.png", noise_image(10, 10, 5))  # smaller than a patch: not used
    dm = check_pair_batches(ColorizeDataModule(str(tmp_path), patch=16, n_patches=30, batch_size=4),
                            (1, 16, 16), (3, 16, 16))
    grey, colour = dm.split_tensors("train")
    assert len(grey) == 27
    assert torch.allclose(grey, rgb_to_grey(colour), atol=1e-6)
    again = ColorizeDataModule(str(tmp_path), patch=16, n_patches=30, batch_size=4)
    again.setup()
    assert torch.equal(again.split_tensors("train")[1], colour)  # seeded crops


def test_colorize_skimage_and_errors(tmp_path):
    check_pair_batches(ColorizeDataModule("skimage", patch=32, n_patches=20, batch_size=4),
                       (1, 32, 32), (3, 32, 32))
    write_png(tmp_path / "a.png", noise_image(10, 10, 0))
    with pytest.raises(ConfigError, match="patch=16 is larger than every image"):
        ColorizeDataModule(str(tmp_path), patch=16, n_patches=2, batch_size=1).setup()
    with pytest.raises(ConfigError, match="does not exist"):
        ColorizeDataModule(str(tmp_path / "none"), batch_size=1).setup()


# MATLAB imresize ------------------------------------------------------------------------------------
def test_imresize_shapes_dtypes_and_constants():
    x = noise_image(37, 53, 0).astype(np.uint8)
    for s, shape in ((0.5, (19, 27)), (1 / 3, (13, 18)), (0.25, (10, 14)), (2, (74, 106)), (4, (148, 212))):
        y = imresize_matlab(x, s)
        assert y.shape == (*shape, 3) and y.dtype == np.uint8
    assert imresize_matlab(x.astype(np.float32), 0.5).dtype == np.float64
    assert np.array_equal(imresize_matlab(x, 1.0), x)
    c = np.full((20, 24), 77, dtype=np.uint8)
    assert (imresize_matlab(c, 0.25) == 77).all() and (imresize_matlab(c, 3) == 77).all()


def test_imresize_pixel_grid_on_a_ramp():
    """Cubic convolution reproduces linear functions: checks MATLAB's coordinate mapping
    u = x / s + 0.5 (1 - 1 / s) and the antialiasing kernel away from the borders."""
    ramp = np.tile(np.arange(32, dtype=np.float64), (6, 1))  # value = column index
    down = imresize_matlab(ramp, 0.5)[0]  # output pixel i covers input pixels 2i, 2i+1
    np.testing.assert_allclose(down[3:-3], np.arange(16)[3:-3] * 2 + 0.5, atol=1e-9)
    up = imresize_matlab(ramp, 2)[0]  # output pixel j sits at input coordinate j / 2 - 0.25
    np.testing.assert_allclose(up[4:-4], (np.arange(64) / 2 - 0.25)[4:-4], atol=1e-9)
    quarter = imresize_matlab(ramp, 0.25)[0]
    np.testing.assert_allclose(quarter[2:-2], (np.arange(8) * 4 + 1.5)[2:-2], atol=1e-9)


def test_imresize_tensor_matches_numpy():
    x = torch.rand(2, 3, 12, 16) * 2 - 1
    y = imresize_tensor(x, 4)
    assert y.shape == (2, 3, 48, 64) and y.dtype == x.dtype
    ref = imresize_matlab(x[1].permute(1, 2, 0).double().numpy(), 4)
    np.testing.assert_allclose(y[1].permute(1, 2, 0).numpy(), ref, atol=1e-6)


# SR data --------------------------------------------------------------------------------------------
def test_sr_folder_skimage_patches():
    dm = check_pair_batches(SRFolderDataModule("skimage", scale=4, hr_patch=32, n_patches=20, batch_size=4),
                            (3, 8, 8), (3, 32, 32))
    lr, hr = dm.split_tensors("train")
    hr8 = ((hr + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    expected = make_lr(hr8, 4)
    assert np.array_equal(((lr + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy(), expected)
    assert np.array_equal(expected[0], imresize_matlab(hr8[0], 0.25))


def test_sr_folder_val_root_and_scale3(tmp_path):
    for i in range(2):
        write_png(tmp_path / "train" / f"{i}.png", noise_image(30, 40, i))
        write_png(tmp_path / "val" / f"{i}.jpg", noise_image(30, 30, 10 + i))
    dm = SRFolderDataModule(str(tmp_path / "train"), scale=3, hr_patch=12, n_patches=10,
                            val_root=str(tmp_path / "val"), val_fraction=0.3, batch_size=2)
    check_pair_batches(dm, (3, 4, 4), (3, 12, 12))
    assert len(dm.split_tensors("train")[0]) == 10 and len(dm.split_tensors("val")[0]) == 3


@pytest.mark.parametrize("kw, words", [
    ({"scale": 5}, "scale=5 is not supported; allowed 2, 3, 4"),
    ({"scale": 4, "hr_patch": 30}, "hr_patch=30 is not a multiple of scale=4"),
    ({"n_patches": 0}, "n_patches=0"),
    ({"on_corrupt": "retry"}, "on_corrupt='retry'"),
])
def test_sr_folder_bad_arguments(kw, words):
    with pytest.raises(ConfigError, match=words):
        SRFolderDataModule(**kw)


def test_load_sr_eval_set_modcrop_and_grey(tmp_path):
    write_png(tmp_path / "a_grey.png", noise_image(37, 41, 0, channels=1), mode="L")
    write_png(tmp_path / "b_rgb.png", noise_image(24, 20, 1))
    pairs = load_sr_eval_set(tmp_path, 4)
    assert [p.name for p in pairs] == ["a_grey.png", "b_rgb.png"] and [p.grey for p in pairs] == [True, False]
    (lr, hr), (lr2, hr2) = pairs
    assert hr.shape == (3, 36, 40) and lr.shape == (3, 9, 10)
    assert torch.equal(hr[0], hr[1]) and torch.equal(hr[1], hr[2])
    assert hr2.shape == (3, 24, 20) and lr2.shape == (3, 6, 5)
    with pytest.raises(ConfigError, match="does not exist"):
        load_sr_eval_set(tmp_path / "missing", 4)
    with pytest.raises(ConfigError, match="scale=8"):
        load_sr_eval_set(tmp_path, 8)


# masks ----------------------------------------------------------------------------------------------
def test_center_mask():
    m = center_mask(32, 16, n=3)
    assert m.shape == (3, 1, 32, 32) and m.sum() == 3 * 256
    assert m[0, 0, 8:24, 8:24].eq(1).all()
    with pytest.raises(ConfigError, match="hole=32"):
        center_mask(32, 32)


def test_random_rect_masks_are_rectangles_in_range():
    m = random_rect_masks(200, 32, 6, 12, torch.Generator().manual_seed(0))
    assert m.shape == (200, 1, 32, 32) and set(m.unique().tolist()) == {0.0, 1.0}
    rows, cols = m[:, 0].amax(2), m[:, 0].amax(1)  # which rows / columns the hole touches
    h, w = rows.sum(1), cols.sum(1)
    assert h.min() >= 6 and h.max() <= 12 and w.min() >= 6 and w.max() <= 12
    assert torch.equal(m.sum((1, 2, 3)), h * w)  # filled rectangle
    assert torch.equal(m, random_rect_masks(200, 32, 6, 12, torch.Generator().manual_seed(0)))
    with pytest.raises(ConfigError, match="min_hole=13"):
        random_rect_masks(1, 32, 13, 12)


def test_free_form_masks():
    m = free_form_masks(300, 32, generator=torch.Generator().manual_seed(0))
    frac = m.mean((1, 2, 3))
    assert m.shape == (300, 1, 32, 32) and set(m.unique().tolist()) == {0.0, 1.0}
    assert (frac > 0).all() and 0.12 < frac.mean() < 0.25 and frac.max() < 0.7
    assert torch.equal(m, free_form_masks(300, 32, generator=torch.Generator().manual_seed(0)))
    assert free_form_masks(2, 256, generator=torch.Generator().manual_seed(1)).shape == (2, 1, 256, 256)


@pytest.mark.parametrize("mask", ["center", "random_rect", "free_form"])
def test_inpainting_digits(mask):
    dm = InpaintingDataModule("digits", size=32, mask=mask, batch_size=8)
    dm.setup()
    image, m = next(iter(dm.train_dataloader()))
    assert image.shape == (8, 1, 32, 32) and m.shape == (8, 1, 32, 32) and dm.shape == (1, 32, 32)
    assert image.min() >= -1 and image.max() <= 1 and set(m.unique().tolist()) <= {0.0, 1.0}
    train_masks, val_masks = dm.split_tensors("train")[1], dm.split_tensors("val")[1]
    if mask == "center":
        assert train_masks.mean() == 0.25 and torch.equal(train_masks[0], val_masks[0])
    else:
        assert not torch.equal(train_masks[0], train_masks[1])  # one mask per sample
    again = InpaintingDataModule("digits", size=32, mask=mask)
    again.setup()
    assert torch.equal(again.split_tensors("val")[1], val_masks)  # fixed validation masks


def test_inpainting_photos_and_errors():
    dm = InpaintingDataModule("skimage", size=16, mask="random_rect", hole=8, n_patches=20, batch_size=4)
    dm.setup()
    image, m = next(iter(dm.val_dataloader()))
    assert image.shape == (2, 3, 16, 16) and m.shape == (2, 1, 16, 16) and dm.shape == (3, 16, 16)
    with pytest.raises(ConfigError, match="mask='circle'.*allowed center, random_rect, free_form"):
        InpaintingDataModule(mask="circle")
    with pytest.raises(ConfigError, match="hole=40"):
        InpaintingDataModule(size=32, hole=40)
    with pytest.raises(ConfigError, match="min_hole=9"):
        InpaintingDataModule(size=32, hole=8, min_hole=9, mask="random_rect")
