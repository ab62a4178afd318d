"""Image metrics of paired tasks compare the outputs with the TARGETS of the data, never with the conditions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lab.data.digits import DigitsDataModule
from gan_lab.data.masks import InpaintingDataModule
from gan_lab.data.paired import ColorizeDataModule, Edges2DigitsDataModule, PairedFolderDataModule
from gan_lab.data.sr import SRFolderDataModule
from gan_lab.metrics.evaluate import compute_metrics


def _ab_folder(root, n=4):
    """A|B images: A half red, B half blue."""
    ab = np.zeros((16, 32, 3), dtype=np.uint8)
    ab[:, :16, 0], ab[:, 16:, 2] = 255, 255
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(ab).save(root / split / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "make, target",
    [
        (lambda tmp: Edges2DigitsDataModule(size=16, batch_size=4), 1),
        (lambda tmp: ColorizeDataModule("skimage", patch=16, n_patches=20, batch_size=4), 1),
        (lambda tmp: SRFolderDataModule("skimage", scale=2, hr_patch=16, n_patches=20, batch_size=4), 1),
        (lambda tmp: PairedFolderDataModule(str(_ab_folder(tmp / "ab")), size=8, batch_size=2), 1),
        (lambda tmp: PairedFolderDataModule(str(_ab_folder(tmp / "ba")), direction="BtoA", size=8, batch_size=2), 1),
        (lambda tmp: InpaintingDataModule(size=16, batch_size=4), 0),  # (image, mask): the image
        (lambda tmp: DigitsDataModule(size=16, batch_size=4), 0),  # (x, y): the images
    ],
)
def test_real_images_are_the_data_a_generator_produces(make, target, tmp_path):
    dm = make(tmp_path)
    for split in ("train", "val"):
        tensors = dm.split_tensors(split)
        assert dm.real_images(split) is tensors[target]
        assert tuple(tensors[target].shape[1:]) == tuple(dm.shape)  # `shape` is the generated sample's
    if isinstance(dm, PairedFolderDataModule):  # the target is B for AtoB, A for BtoA: blue, then red
        red, blue = torch.tensor([1.0, -1.0, -1.0]), torch.tensor([-1.0, -1.0, 1.0])
        mean = dm.real_images("train").mean((0, 2, 3))
        assert torch.allclose(mean, blue if dm.direction == "AtoB" else red, atol=1e-3)


def test_edges2digits_fid_compares_outputs_with_the_digits_not_the_edge_maps():
    """Perfect outputs (the true target digits) score FID ~0 against the reference; the edge maps (the
    conditions) do not. Before targets were declared, the reference was the edge maps themselves."""
    dm = Edges2DigitsDataModule(size=32, batch_size=8)
    edges, digits = dm.split_tensors("train")
    kw = dict(n_real=300, feature_net="digits", names=["fid"])
    perfect, protocol = compute_metrics(digits[:300], dm, **kw)
    conditions, _ = compute_metrics(edges[:300], dm, **kw)
    assert protocol["n_reference"] == 300
    assert perfect["fid"] == pytest.approx(0.0, abs=1e-3)
    assert conditions["fid"] > 1.0
