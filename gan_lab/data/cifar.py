"""CIFAR-10 / CIFAR-100 from the official python release (`data=cifar10`, `data=cifar100`).

    python -m gan_lab.train model=dcgan data=cifar10 data.root=~/data        # batches (x, y), 32 x 32 RGB

`root` is the downloaded `cifar-10-python.tar.gz` (`cifar-100-python.tar.gz`) itself, the extracted
`cifar-10-batches-py/` (`cifar-100-python/`) folder, or a folder holding either. Files are checked against
the published MD5s (`check_md5=false` for files built elsewhere). The batches are pickles: they are read
with a restricted unpickler that resolves only the numpy names the format uses, so a file that tries to
run code is refused instead of executed. Images stay uint8 (50,000 x 3 x 32 x 32 = 154 MB) and are
converted to [-1, 1] per batch; `size`/`channels` other than 32/3 resize each image once, with `resize`.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_lab.data import images as imgs
from gan_lab.data.base import InMemoryDataModule
from gan_lab.data.cache import UInt8Images
from gan_lab.errors import ConfigError, check_range


@dataclass(frozen=True)
class Release:
    name: str
    archive: str
    archive_md5: str
    folder: str
    files: dict  # split -> [(file name, md5)]
    meta: tuple  # (file name, md5, key of the class names)
    label_key: str
    num_classes: int


CIFAR10 = Release(
    "cifar10",
    "cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
    "cifar-10-batches-py",
    {
        "train": [
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ],
        "test": [("test_batch", "40351d587109b95175f43aff81a1287e")],
    },
    ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888", "label_names"),
    "labels",
    10,
)
CIFAR100 = Release(
    "cifar100",
    "cifar-100-python.tar.gz",
    "eb9058c3a382ffc7106e4002c42a8d85",
    "cifar-100-python",
    {"train": [("train", "16019d7e3df5f24257cddd939b257f8d")], "test": [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")]},
    ("meta", "7973b15100ade9c7d40fb424638fde48", "fine_label_names"),
    "fine_labels",
    100,
)

# The only globals a CIFAR batch needs (numpy arrays pickled by numpy 1.x or 2.x, Python 2 or 3, protocol 2-5).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR batch")
        if module.startswith("numpy._core") or module.startswith("numpy.core"):
            import importlib

            for mod in (module.replace("numpy.core", "numpy._core"), module.replace("numpy._core", "numpy.core")):
                try:
                    return getattr(importlib.import_module(mod), name)
                except (ImportError, AttributeError):
                    continue
        if module == "_codecs":
            import codecs

            return codecs.encode
        return getattr(np, name)


def restricted_load(data: bytes, label: str) -> dict:
    """A CIFAR batch dict (str keys) from pickle bytes; ConfigError for anything else."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as e:  # a refused global, a truncated or non-pickle file
        raise ConfigError(f"{label} is not a CIFAR python batch ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{label} is not a CIFAR python batch (a {type(obj).__name__}, expected a dict)")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _locate(root: Path, rel: Release, owner: str) -> tuple[str, Path]:
    """('archive', the .tar.gz) or ('folder', the batches folder)."""
    if root.is_file():
        if root.name.endswith((".tar.gz", ".tgz")):
            return "archive", root
        raise ConfigError(f"{owner}.root={str(root)!r} is a file but not the {rel.archive} archive")
    for kind, p in (("folder", root), ("folder", root / rel.folder), ("archive", root / rel.archive)):
        if (kind == "folder" and (p / rel.meta[0]).is_file()) or (kind == "archive" and p.is_file()):
            return kind, p
    raise ConfigError(
        f"{owner}.root={str(root)!r} holds neither {rel.folder}/ nor {rel.archive}; allowed the downloaded archive, "
        "the extracted folder, or a folder holding either"
    )


def read_release(root: str | Path, rel: Release, split: str, check_md5: bool = True, owner: str = "data"):
    """(N x 3 x 32 x 32 uint8, N int64 labels, class names) of a split of an official release."""
    root = Path(str(root)).expanduser()
    kind, path = _locate(root, rel, owner)
    wanted = [*rel.files[split], rel.meta[:2]]
    if kind == "archive":
        blob = path.read_bytes()
        if check_md5 and md5(blob) != rel.archive_md5:
            raise ConfigError(
                f"{owner}.root: {str(path)!r} has MD5 {md5(blob)}, the published {rel.archive} has {rel.archive_md5}; "
                f"download it again, or set {owner}.check_md5=false for a file built elsewhere"
            )
        try:
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                raw = {f: tar.extractfile(members[f]).read() for f, _ in wanted if f in members}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ConfigError(f"{owner}.root: {str(path)!r} is not a readable tar.gz archive ({e})") from None
    else:
        raw = {f: (path / f).read_bytes() for f, _ in wanted if (path / f).is_file()}
    missing = [f for f, _ in wanted if f not in raw]
    if missing:
        raise ConfigError(f"{owner}.root: {str(path)!r} lacks {', '.join(missing)} of the {rel.name} release")
    if kind == "folder" and check_md5:
        for f, expected in wanted:
            if md5(raw[f]) != expected:
                raise ConfigError(
                    f"{owner}.root: {str(path / f)!r} has MD5 {md5(raw[f])}, the published file has {expected}; "
                    f"download it again, or set {owner}.check_md5=false for a file built elsewhere"
                )
    xs, ys = [], []
    for f, _ in rel.files[split]:
        d = restricted_load(raw[f], f"{owner}.root: {f}")
        x, y = d.get("data"), d.get(rel.label_key)
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or y is None:
            raise ConfigError(
                f"{owner}.root: {f} does not have the CIFAR layout (data: uint8 N x 3072, {rel.label_key}: N ints)"
            )
        if len(y) != len(x):
            raise ConfigError(f"{owner}.root: {f} has {len(x)} images but {len(y)} labels")
        xs.append(x.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(y, dtype=np.int64))
    names = restricted_load(raw[rel.meta[0]], f"{owner}.root: {rel.meta[0]}").get(rel.meta[2])
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names else None
    return np.concatenate(xs), np.concatenate(ys), classes


class CIFARDataModule(InMemoryDataModule):
    """Batches are (images in [-1, 1], labels); `num_classes` and `classes` from the release's meta file."""

    release = CIFAR10

    def __init__(
        self,
        root: str = "data",
        split: str = "train",
        size: int = 32,
        channels: int = 3,
        resize: str = "lanczos",
        check_md5: bool = True,
        **kw,
    ):
        name = self.release.name
        super().__init__(name=name, **kw)
        owner = f"data.{name}"
        if split not in ("train", "test"):
            raise ConfigError(f"{owner}: split={split!r} is not known; allowed train, test")
        imgs.check_options(owner, channels, "center", resize, "white", size)
        check_range(owner, "size", size, 8, 1024)
        self.root, self.split, self.size, self.channels, self.resize = str(root), split, int(size), channels, resize
        self.check_md5 = bool(check_md5)
        self.shape = (channels, self.size, self.size)
        self.num_classes = self.release.num_classes
        self.classes: list[str] | None = None
        self.protocol: dict = {}

    def load(self):
        x, y, classes = read_release(self.root, self.release, self.split, self.check_md5, f"data.{self.name}")
        if self.size != 32 or self.channels != 3:
            x = np.stack(
                [
                    imgs.load_image(
                        Image.fromarray(im.transpose(1, 2, 0)), self.channels, self.size, "none", self.resize
                    )
                    for im in x
                ]
            ).transpose(0, 3, 1, 2)
        self.classes = classes or [str(k) for k in range(int(y.max()) + 1)]
        self.num_classes = len(self.classes)
        self.protocol = {
            "dataset": self.name,
            "split": self.split,
            "n_images": len(x),
            "size": self.size,
            "channels": self.channels,
            "crop": "none",
            "resize_filter": self.resize if self.size != 32 else "none",
            "num_classes": self.num_classes,
        }
        store, labels = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)
        perm = torch.randperm(len(store), generator=torch.Generator().manual_seed(self.split_seed))
        n_val = int(round(len(store) * self.val_fraction))
        val, train = perm[:n_val], perm[n_val:]
        if n_val == 0:
            return (UInt8Images(store), labels), (UInt8Images(store[:0]), labels[:0])
        return (UInt8Images(store, train), labels[train]), (UInt8Images(store, val), labels[val])
