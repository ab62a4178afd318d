"""Decode, crop and resize an image collection once into its prepared uint8 cache, and describe it.

    gan-lab prepare data=image_folder data.root=~/celeba data.size=64
    python -m gan_lab.prepare data=lmdb data.root=~/lsun/bedroom_train_lmdb data.limit=100000 data.workers=8

The arguments are the training overrides (the same `data.*` keys), so the cache made here is the one a
training run with those overrides finds. Prints the images, classes, skipped files with their reasons and
the sizes before resizing; training prepares automatically when the cache does not exist yet.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str] | None = None) -> int:
    from gan_lab.cli import run_command

    return run_command(_prepare, argv, __doc__.strip())


def _prepare(argv: list[str]) -> int:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gan_lab.build import build
    from gan_lab.config import CONF_DIR
    from gan_lab.data.cache import CachedImagesDataModule, summary

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=argv)
    dm = build(OmegaConf.to_container(cfg.data, resolve=True), "data")
    if not isinstance(dm, CachedImagesDataModule):
        print(f"data={dm.name or type(dm).__name__} is read straight into memory; there is nothing to prepare")
        return 0
    t0 = time.time()
    existed = dm.cache is None and _cache_exists(dm)
    cache = dm.prepare(progress=sys.stderr.isatty())
    for line in summary(cache):
        print(line)
    if existed:
        print("the cache was prepared earlier (same files, sizes, mtimes and settings): reused")
    else:
        n = cache.meta["shape"][0] + len(cache.meta["skipped"])
        dt = time.time() - t0
        print(f"prepared in {dt:.1f} s ({n / max(dt, 1e-9):.0f} files/s, {cache.meta['workers']} worker processes)")
    return 0


def _cache_exists(dm) -> bool:
    from gan_lab.data.cache import cache_path

    return (cache_path(dm.source(), dm.settings, dm.labels, dm.cache_dir) / "meta.json").exists()


if __name__ == "__main__":
    sys.exit(main())
