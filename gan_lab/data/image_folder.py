"""Your own images: a folder (searched recursively) or a .zip of images, any size and mode.

    python -m gan_lab.train model=dcgan data=image_folder data.root=~/celeba data.size=64
    python -m gan_lab.train model=dcgan data=image_folder data.root=~/pets data.labels=folders   # (x, y) batches
    gan-lab prepare data=image_folder data.root=~/celeba data.size=64                      # the cache, ahead

Every image is decoded by `gan_lab.data.images` (mode -> `channels`, alpha over `background`, `crop` to a
square, `resize` filter to `size`) once, into a prepared uint8 cache (`gan_lab.data.cache`) that later runs
reuse. `labels=folders`: label k is the k-th top-level subfolder in sorted name order (`classes`).
"""

from __future__ import annotations

from gan_lab.data.cache import CachedImagesDataModule, open_source


class ImageFolderDataModule(CachedImagesDataModule):
    def __init__(self, root: str = "???", **kw):
        super().__init__(name="image_folder", **kw)
        self.root = str(root)
        self._source = open_source(self.root, "data.root")  # bad roots fail here, before anything is written
        self.set_classes(self._source.names)

    def source(self):
        return self._source
