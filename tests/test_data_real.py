"""Real image data: the one decoder (gan_lab.data.images), image folders and zips through the prepared
uint8 cache, CIFAR python batches, LSUN-style LMDBs, `gan-lab prepare`, and DCGAN on these sets."""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, compose_cfg, needs_shared, run_cli, train_run
from PIL import Image

from gan_lab.data import images
from gan_lab.data.cache import FolderSource, Settings, UInt8Images, prepare
from gan_lab.errors import ConfigError

CBSD68 = SHARED_DATA / "sr" / "CBSD68"


def build_dm(*overrides: str):
    from omegaconf import OmegaConf

    from gan_lab.build import build

    cfg = compose_cfg(*overrides)
    return build(OmegaConf.to_container(cfg.data, resolve=True), "data")


def photo(seed: int = 0, w: int = 48, h: int = 36) -> np.ndarray:
    """A smooth colour test picture (H x W x 3 uint8) that differs per seed."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.random.default_rng(seed).uniform(0.5, 2.0, 3)
    img = np.stack([np.sin(xx / (4 * r[0])), np.cos(yy / (5 * r[1])), np.sin((xx + yy) / (6 * r[2]))], -1)
    return ((img + 1) * 127.5).round().astype(np.uint8)


def mixed_folder(root: Path) -> Path:
    """Class subfolders `cats`/`dogs` with every mode gan_lab converts, plus a zero-byte file and a text
    file named .png (both skipped) and a non-image file (not listed)."""
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "deeper").mkdir(parents=True)
    rgb = [photo(k) for k in range(6)]
    Image.fromarray(rgb[0]).save(root / "cats" / "rgb.png")
    Image.fromarray(rgb[1]).save(root / "cats" / "photo.jpg", quality=95)
    Image.fromarray(rgb[2]).convert("L").save(root / "cats" / "grey.bmp")
    Image.fromarray(rgb[3]).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "cats" / "palette.gif")
    rgba = np.dstack([rgb[4], np.full(rgb[4].shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "dogs" / "alpha.png")
    Image.fromarray(rgb[5][..., 0].astype(np.uint16) * 257).save(root / "dogs" / "deeper" / "sixteen.tif")
    Image.fromarray(rgb[0][::2, ::2]).convert("1").save(root / "dogs" / "bilevel.webp")
    Image.fromarray(np.dstack([rgb[1][..., 0], rgb[1][..., 1]]), "LA").save(root / "dogs" / "la.png")
    (root / "dogs" / "empty.jpg").write_bytes(b"")
    (root / "cats" / "notes.png").write_text("not an image")
    (root / "cats" / "readme.txt").write_text("not listed")
    return root


# ---- the decoder --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_ramp_maps_to_the_right_8bit_values(tmp_path, fmt):
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)  # 0, 257, ..., 65535
    ramp[0, 1] = 128  # 128 / 257 = 0.498 -> 0, and 129 -> 1 (rounding, not truncation or clipping)
    ramp[0, 2] = 129 + 257
    path = tmp_path / f"ramp.{fmt.lower()}"
    Image.fromarray(ramp).save(path, format=fmt)
    assert Image.open(path).mode.startswith("I")
    want = np.arange(256).reshape(16, 16)
    want[0, 1], want[0, 2] = 0, 2
    for channels in (1, 3):
        x = images.load_image(path, channels=channels)
        assert x.dtype == np.uint8 and x.shape == (16, 16, channels)
        assert np.array_equal(x[..., 0], want)
    as_int32 = images.load_image(Image.fromarray(ramp.astype(np.int32)), channels=1)  # mode "I"
    assert np.array_equal(as_int32[..., 0], want)


def test_modes_alpha_and_background():
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :3, 3] = 255  # left half opaque red, right half fully transparent
    im = Image.fromarray(rgba, "RGBA")
    white = images.load_image(im, 3, background="white")
    black = images.load_image(im, 3, background=0)
    assert (white[:, :3] == [200, 0, 0]).all() and (black[:, :3] == [200, 0, 0]).all()
    assert (white[:, 3:] == 255).all() and (black[:, 3:] == 0).all()
    grey = images.load_image(im, 1, background=100)
    assert grey.shape == (4, 6, 1) and (grey[:, 3:] == 100).all() and (grey[:, :3] == 60).all()  # 0.299 * 200
    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"):
        src = Image.fromarray(photo(3)).convert("RGBA" if mode == "LA" else "RGB")
        converted = src.convert("L").convert(mode) if mode in ("I;16", "I", "F", "1") else src.convert(mode)
        for c in (1, 3):
            assert images.load_image(converted, c, 16).shape == (16, 16, c), mode


def test_crop_pad_random_and_filters():
    img = np.zeros((10, 30, 3), np.uint8)
    img[:, :10] = [255, 0, 0]
    img[:, 10:20] = [0, 255, 0]
    img[:, 20:] = [0, 0, 255]
    centre = images.load_image(Image.fromarray(img), 3, 10, crop="center", resize_filter="box")
    assert (centre == [0, 255, 0]).all()  # the middle third
    padded = images.load_image(Image.fromarray(img), 3, 30, crop="pad", background="black")
    assert (padded[:10] == 0).all() and (padded[20:] == 0).all() and (padded[10:20] == img).all()
    crops = {
        images.load_image(Image.fromarray(img), 3, 10, "random", rng=np.random.default_rng(s))[0, 0, 0]
        for s in range(20)
    }
    assert crops == {255, 0}  # red and non-red left edges both occur
    stretched = images.load_image(Image.fromarray(img), 3, 6, crop="none", resize_filter="box")
    assert stretched.shape == (6, 6, 3) and (stretched[:, 0] == [255, 0, 0]).all()
    outs = {
        f: images.load_image(Image.fromarray(photo(1, 97, 97)), 3, 32, resize_filter=f) for f in images.RESIZE_FILTERS
    }
    assert all(o.shape == (32, 32, 3) for o in outs.values())
    assert not np.array_equal(outs["lanczos"], outs["bilinear"]) and not np.array_equal(outs["area"], outs["bicubic"])
    with pytest.raises(ConfigError, match="resize='nearest' is not known; allowed lanczos, bicubic"):
        images.check_options("data.image_folder", 3, "center", "nearest", "white")


def test_corrupt_inputs_raise_image_error(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    buf = io.BytesIO()
    Image.fromarray(photo()).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:200])
    for name in ("empty.png", "text.png", "cut.png", "missing.png"):
        with pytest.raises(images.ImageError, match=name):
            images.load_image(tmp_path / name)
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert abs(int(images.load_image(tmp_path / "anim.gif", 1).mean()) - 10) <= 2  # the first frame


# ---- image folders, zips and the prepared cache -------------------------------------------------------
def test_mixed_folder_labels_skips_and_run_files(tmp_path):
    root = mixed_folder(tmp_path / "pets")
    run = tmp_path / "run"
    m = train_run(
        run,
        "data=image_folder",
        f"data.root={root}",
        "data.size=16",
        "data.labels=folders",
        "data.batch_size=4",
        f"data.cache_dir={tmp_path / 'cache'}",
        "trainer.max_steps=2",
    )
    assert m["status"] == "completed"
    info = json.loads((run / "data.json").read_text())
    assert info["classes"] == ["cats", "dogs"]
    assert sorted(Path(name).name for name, _ in info["skipped"]) == ["empty.jpg", "notes.png"]
    assert all(why for _, why in info["skipped"])
    assert info["protocol"]["resize_filter"] == "lanczos" and info["protocol"]["crop"] == "center"

    dm = build_dm(
        "data=image_folder",
        f"data.root={root}",
        "data.size=16",
        "data.labels=folders",
        "data.batch_size=4",
        f"data.cache_dir={tmp_path / 'cache'}",
    )
    assert dm.num_classes == 2 and dm.classes == ["cats", "dogs"]
    dm.setup()
    x, y = dm.split_tensors("train")
    assert len(x) == 8 and x.store.dtype == torch.uint8 and x.store.shape == (8, 3, 16, 16)
    assert sorted(y.tolist()) == [0] * 4 + [1] * 4
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.dtype == torch.float32 and xb.shape == (4, 3, 16, 16) and -1 <= xb.min() and xb.max() <= 1
    names = dm.cache.names()
    sixteen = names.index("dogs/deeper/sixteen.tif")
    want = images.load_image(Image.fromarray(photo(5)[..., 0]), 3, 16)  # the 8-bit image it was made from
    assert np.abs(x.rows(sixteen).permute(1, 2, 0).numpy().astype(int) - want).max() <= 1

    with pytest.raises(ConfigError, match=r"cannot read image .*(empty\.jpg|notes\.png).*on_corrupt=skip"):
        build_dm(
            "data=image_folder",
            f"data.root={root}",
            "data.size=16",
            "data.on_corrupt=raise",
            f"data.cache_dir={tmp_path / 'c2'}",
        ).setup()
    assert not any((tmp_path / "c2").glob("folder-*")), "a refused preparation leaves no cache behind"


def test_zip_matches_folder_and_cache_is_reused(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for k in range(5):
        Image.fromarray(photo(k, 40 + k, 30)).save(root / f"{k}.png")
    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as z:
        for k in range(5):
            z.write(root / f"{k}.png", f"imgs/{k}.png")
    s = Settings(size=24)
    a = prepare(FolderSource(root), s, cache_dir=tmp_path / "cache", workers=1)
    from gan_lab.data.cache import open_source

    b = prepare(open_source(tmp_path / "flat.zip"), s, cache_dir=tmp_path / "cache", workers=1)
    assert a.path != b.path and np.array_equal(a.store(True).numpy(), b.store(True).numpy())
    assert a.meta["size_histogram"] == {"40x30": 1, "41x30": 1, "42x30": 1, "43x30": 1, "44x30": 1}
    stamp = (a.path / "images.u8").stat().st_mtime_ns
    assert prepare(FolderSource(root), s, cache_dir=tmp_path / "cache").path == a.path  # found, not redone
    assert (a.path / "images.u8").stat().st_mtime_ns == stamp
    assert prepare(FolderSource(root), Settings(size=24, resize="area"), cache_dir=tmp_path / "cache").path != a.path
    os.utime(root / "3.png", ns=(1, 1))  # a changed file: a new fingerprint
    assert prepare(FolderSource(root), s, cache_dir=tmp_path / "cache").path != a.path
    assert not list((tmp_path / "cache").glob(".*tmp*"))


def test_concurrent_preparations_leave_one_valid_cache(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path / "imgs"
    root.mkdir()
    for k in range(80):
        Image.fromarray(photo(k, 64, 48)).save(root / f"{k:03d}.png")

    def job(_):  # each job lists, decodes and renames on its own, like jobs of a sweep
        return str(prepare(FolderSource(root), Settings(size=32), cache_dir=tmp_path / "cache", workers=1).path)

    with ThreadPoolExecutor(3) as ex:
        paths = set(ex.map(job, range(3)))
    assert len(paths) == 1
    caches = list((tmp_path / "cache").iterdir())
    assert [c.name for c in caches] == [Path(paths.pop()).name]  # no temporary folder left
    meta = json.loads((caches[0] / "meta.json").read_text())
    assert meta["shape"] == [80, 3, 32, 32] and (caches[0] / "images.u8").stat().st_size == 80 * 3 * 32 * 32


def test_memmap_batches_equal_ram_batches(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for k in range(40):
        Image.fromarray(photo(k)).save(root / f"{k:02d}.png")
    common = [
        "data=image_folder",
        f"data.root={root}",
        "data.size=16",
        "data.batch_size=8",
        f"data.cache_dir={tmp_path / 'c'}",
    ]
    ram, mapped = build_dm(*common), build_dm(*common, "data.max_memory_gb=0")
    for dm in (ram, mapped):
        torch.manual_seed(3)
        dm.setup()
    assert ram.protocol["storage"] == "ram" and mapped.protocol["storage"] == "memmap"
    assert isinstance(mapped.split_tensors()[0].store.untyped_storage(), torch.UntypedStorage)
    for a, b in zip(ram.train_dataloader(), mapped.train_dataloader()):
        assert torch.equal(a, b)
    x = mapped.split_tensors()[0]
    idx = torch.tensor([5, 1, 30, 1])
    assert torch.equal(x[idx], x.rows(idx).float() / 127.5 - 1) and torch.equal(x[idx][1], x[1])


def test_folder_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a.txt").write_text("x")
    with zipfile.ZipFile(tmp_path / "none.zip", "w") as z:
        z.writestr("notes.txt", "no images")
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(photo()).save(flat / "a.png")
    cases = [
        (["data.root={t}/empty"], "holds no images (searched recursively)"),
        (["data.root={t}/a.txt"], "is a file, not a folder"),
        (["data.root={t}/none.zip"], "is a zip with no images"),
        (["data.root={t}/flat", "data.labels=folders"], "labels=folders needs class subfolders"),
        (["data.root={t}/flat", "data.resize=nearest"], "resize='nearest' is not known; allowed lanczos"),
        (["data.root={t}/flat", "data.crop=middle"], "crop='middle' is not known; allowed center, pad, random, none"),
        (["data.root={t}/flat", "data.channels=4"], "channels=4 is not supported; allowed 1, 3"),
        (["data.root={t}/flat", "data.on_corrupt=ignore"], "on_corrupt='ignore' is not known; allowed skip, raise"),
    ]
    for overrides, expected in cases:
        with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")) as e:
            build_dm("data=image_folder", *[o.format(t=tmp_path) for o in overrides]).setup()
        assert "\n" not in str(e.value)


@needs_shared
def test_cbsd68_and_cset14_through_prepare(tmp_path, capsys):
    from gan_lab.prepare import main

    args = ["data=image_folder", f"data.root={CBSD68}", "data.size=32", f"data.cache_dir={tmp_path}", "data.workers=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "68 images from" in out and "481x321: " in out and "skipped: 0" in out and "files/s" in out
    assert main(args) == 0 and "prepared earlier" in capsys.readouterr().out
    cset14 = SHARED_DATA / "sr" / "CSet14"
    dm = build_dm("data=image_folder", f"data.root={cset14}", "data.size=64", "data.channels=1", "data.batch_size=4",
                  f"data.cache_dir={tmp_path}")  # fmt: skip
    dm.setup()
    x = dm.split_tensors()[0]
    assert x.shape == (len(list(cset14.iterdir())), 1, 64, 64)
    assert main(["data=image_folder", f"data.root={tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_prepare_command_line(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for k in range(3):
        Image.fromarray(photo(k)).save(root / f"{k}.png")
    r = run_cli(
        "gan_lab.cli",
        "prepare",
        "data=image_folder",
        f"data.root={root}",
        "data.size=16",
        f"data.cache_dir={tmp_path / 'c'}",
    )
    assert r.returncode == 0, r.stderr
    assert "3 images from" in r.stdout and "48x36: 3" in r.stdout


# ---- models, tricks and metrics on a real folder ------------------------------------------------------
@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """scikit-image's lfw_subset (200 greyscale 25 x 25 faces) as PNG files in one folder."""
    import skimage.data

    root = tmp_path_factory.mktemp("lfw")
    for k, face in enumerate(skimage.data.lfw_subset()[:64]):
        Image.fromarray((face * 255).round().astype(np.uint8)).save(root / f"{k:03d}.png")
    return root


def _tricks() -> list[str]:
    from conftest import CONF

    return sorted(p.stem for p in (CONF / "trick").glob("*.yaml"))


@pytest.mark.parametrize("trick", _tricks())
def test_every_trick_runs_on_an_image_folder(faces, tmp_path, trick):
    m = train_run(
        tmp_path / "run", "model=dcgan", "data=image_folder", f"data.root={faces}", "data.size=32", "data.batch_size=8",
        f"data.cache_dir={tmp_path.parent / 'shared-cache'}", f"trick=[{trick}]", "trainer.max_steps=2",
    )  # fmt: skip
    assert m["status"] == "completed" and m["steps"] >= 1


@pytest.mark.parametrize("model", ["dcgan", "gan_mlp", "ae", "vae"])
def test_models_and_metrics_on_an_image_folder(faces, tmp_path, model):
    run = tmp_path / "run"
    m = train_run(
        run, f"model={model}", "data=image_folder", f"data.root={faces}", "data.size=32", "data.channels=1",
        "data.batch_size=8", f"data.cache_dir={tmp_path.parent / 'shared-cache'}", "data.val_fraction=0.25",
        "trainer.max_steps=3", "logger=none", "callbacks.progress=null", "trainer.enable_progress_bar=false",
        "callbacks.samples.every_n_steps=0", "metrics.every_n_steps=0", "metrics.n_samples=16",
        fast=False,
    )  # fmt: skip
    assert m["status"] == "completed"
    assert "protocol" in m  # the end-of-run evaluation ran on the folder (scores, or the reason it skipped them)
    assert list((run / "samples").glob("*final.png"))


@pytest.mark.parametrize("size,ok", [(32, True), (64, True), (128, True), (48, False), (100, False)])
def test_dcgan_sizes(size, ok):
    from gan_lab.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    if not ok:
        with pytest.raises(ConfigError, match=f"image size {size} is not supported"):
            DCGANGenerator((3, size, size), ngf=8)
        return
    g, d = DCGANGenerator((3, size, size), ngf=64), DCGANDiscriminator((3, size, size), ndf=64)
    x = g(torch.randn(2, 100))
    assert x.shape == (2, 3, size, size) and d(x).shape == (2, 1)


def test_dcgan64_folder_preset_composes(faces):
    cfg = compose_cfg("experiment=dcgan64_folder", f"data.root={faces}")
    assert cfg.model.generator.ngf == 64 and cfg.model.discriminator.ndf == 64
    assert cfg.data.size == 64 and cfg.data.batch_size == 128 and cfg.data._target_.endswith("ImageFolderDataModule")


# ---- CIFAR --------------------------------------------------------------------------------------------
def cifar_batch(n: int, seed: int, label_key: str) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "batch_label": f"batch {seed}",
        label_key: rng.integers(0, 10, n).tolist(),
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{seed}_{k}.png" for k in range(n)],
    }


def cifar10_release(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for k in range(1, 6):
        (folder / f"data_batch_{k}").write_bytes(pickle.dumps(cifar_batch(4, k, "labels"), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(cifar_batch(6, 9, "labels"), protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}, protocol=2))
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return folder


def test_cifar10_folder_and_archive(tmp_path):
    folder = cifar10_release(tmp_path / "dl")
    with pytest.raises(ConfigError, match=r"data_batch_1' has MD5 [0-9a-f]{32}, the published file has c99cafc1") as e:
        build_dm("data=cifar10", f"data.root={tmp_path / 'dl'}").setup()
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="the published cifar-10-python.tar.gz has c58f3010"):
        build_dm("data=cifar10", f"data.root={tmp_path / 'dl' / 'cifar-10-python.tar.gz'}").setup()
    want = np.concatenate([cifar_batch(4, k, "labels")["data"] for k in range(1, 6)]).reshape(-1, 3, 32, 32)
    for root in (folder, tmp_path / "dl" / "cifar-10-python.tar.gz"):
        dm = build_dm("data=cifar10", f"data.root={root}", "data.check_md5=false", "data.batch_size=5")
        dm.setup()
        x, y = dm.split_tensors("train")
        assert np.array_equal(x.store.numpy(), want) and x.store.dtype == torch.uint8
        assert y.tolist() == sum((cifar_batch(4, k, "labels")["labels"] for k in range(1, 6)), [])
        assert dm.num_classes == 10 and dm.classes[3] == "cat"
        xb, yb = next(iter(dm.train_dataloader()))
        assert xb.shape == (5, 3, 32, 32) and yb.shape == (5,)
    test = build_dm(
        "data=cifar10",
        f"data.root={folder}",
        "data.check_md5=false",
        "data.split=test",
        "data.size=64",
        "data.channels=1",
        "data.batch_size=6",
    )
    test.setup()
    assert test.split_tensors()[0].shape == (6, 1, 64, 64)


def test_cifar100_and_a_pickle_that_runs_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, n in (("train", 7), ("test", 3)):
        b = cifar_batch(n, n, "fine_labels")
        b["coarse_labels"] = [0] * n
        (folder / split).write_bytes(pickle.dumps(b, protocol=4))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{k}" for k in range(100)]}))
    dm = build_dm("data=cifar100", f"data.root={tmp_path}", "data.check_md5=false", "data.batch_size=7")
    dm.setup()
    assert dm.num_classes == 100 and dm.split_tensors()[1].tolist() == cifar_batch(7, 7, "fine_labels")["fine_labels"]

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / "train").write_bytes(pickle.dumps({"data": Evil(), "fine_labels": []}))
    with pytest.raises(
        ConfigError, match=r"train is not a CIFAR python batch .*global '(posix|os)\.system' is not allowed"
    ):
        build_dm("data=cifar100", f"data.root={tmp_path}", "data.check_md5=false").setup()
    assert not marker.exists()


# ---- LMDB ---------------------------------------------------------------------------------------------
def test_lmdb_database(tmp_path, monkeypatch):
    lmdb = pytest.importorskip("lmdb", reason="the lmdb extra is not installed (pip install gan_lab[lmdb])")
    db = tmp_path / "bedroom_train_lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for k in range(12):
            buf = io.BytesIO()
            Image.fromarray(photo(k, 40, 30)).save(buf, format="WEBP" if k % 2 else "PNG", lossless=True)
            txn.put(f"{k:040x}".encode(), buf.getvalue())
        txn.put(b"broken", b"not an image")
    env.close()
    dm = build_dm(
        "data=lmdb", f"data.root={db}", "data.size=16", "data.batch_size=4", f"data.cache_dir={tmp_path / 'c'}"
    )
    dm.setup()
    assert len(dm.split_tensors()[0]) == 12 and [k for k, _ in dm.cache.meta["skipped"]] == ["broken"]
    first = images.load_image(Image.fromarray(photo(0, 40, 30)), 3, 16)
    assert np.array_equal(dm.split_tensors()[0].rows(0).permute(1, 2, 0).numpy(), first)
    limited = build_dm(
        "data=lmdb", f"data.root={db}", "data.limit=5", "data.size=16", "data.batch_size=5",
        f"data.cache_dir={tmp_path / 'c'}",
    )
    limited.setup()
    assert len(limited.split_tensors()[0]) == 5

    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(ConfigError, match=r"needs the lmdb package.*pip install gan_lab\[lmdb\]"):
        build_dm("data=lmdb", f"data.root={db}")


def test_uint8_images_behave_like_float_tensors():
    store = torch.arange(2 * 1 * 2 * 2, dtype=torch.uint8).view(2, 1, 2, 2) * 60
    x = UInt8Images(store, index=torch.tensor([1, 0]))
    assert len(x) == 2 and x.shape == (2, 1, 2, 2) and x.numel() == 8
    assert torch.allclose(x[0], store[1].float() / 127.5 - 1) and torch.equal(x[:1], x[torch.tensor([0])])
    assert torch.equal(x.to("cpu")[1], x[1])
