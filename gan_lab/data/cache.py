"""Prepared uint8 image caches: decode, crop and resize a collection once, then memory-map it.

    src = FolderSource("~/celeba")                       # or ZipSource("ffhq.zip"), lmdb.LmdbSource(...)
    cache = prepare(src, Settings(size=64), labels="none")   # decodes in parallel once; later calls reuse it
    x = cache.images()                                   # UInt8Images: x[idx] -> float N x C x 64 x 64 in [-1, 1]

A cache is a folder `<cache_dir>/<kind>-<fingerprint>/` holding `images.u8` (N x C x S x S uint8, raw) and
`meta.json` (shape, labels, classes, skipped files with reasons, the size histogram before resizing, the
settings). The fingerprint hashes the file list with sizes and mtimes and the preprocessing settings, so an
edited folder or another size/crop/filter gets a new cache, and an unchanged one is found again by every
run and sweep job. It is written under a temporary name and renamed into place: concurrent jobs never see
a half-written cache (when two prepare the same one, the second rename fails and its copy is dropped).

`CachedImagesDataModule` is the data module on top: images stay uint8 (in RAM when the cache is at most
`max_memory_gb`, memory-mapped otherwise) and batches are converted to [-1, 1] as they are sliced, through
the in-memory modules' batching (`EpochBatches`: resume-exact order, DDP sharding).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
import warnings
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gan_lab.data import images as imgs
from gan_lab.data.base import InMemoryDataModule
from gan_lab.errors import ConfigError, check_range

log = logging.getLogger("gan_lab")
FORMAT_VERSION = 1
LABEL_MODES = ("none", "folders")
ON_CORRUPT = ("skip", "raise")


def default_cache_dir() -> Path:
    """`$GAN_LAB_CACHE/prepared` (default ~/.cache/gan_lab/prepared)."""
    return Path(os.environ.get("GAN_LAB_CACHE", "~/.cache/gan_lab")).expanduser() / "prepared"


# sources -------------------------------------------------------------------------------------------------
class FolderSource:
    """Image files of a folder, recursively; names are paths relative to the root (posix)."""

    kind = "folder"

    def __init__(self, root: str | Path, owner: str = "data.root"):
        self.root = Path(root).expanduser()
        files = imgs.list_images(self.root, owner)
        self.names = [p.relative_to(self.root).as_posix() for p in files]

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def fingerprint_items(self) -> list:
        out = []
        for n in self.names:
            st = (self.root / n).stat()
            out.append((n, st.st_size, st.st_mtime_ns))
        return out

    def describe(self) -> str:
        return str(self.root)


class ZipSource:
    """Image members of a zip archive (the stylegan2-ada dataset format); one handle per process."""

    kind = "zip"

    def __init__(self, path: str | Path, owner: str = "data.root"):
        self.path = Path(path).expanduser()
        self.names = imgs.list_zip_images(self.path, owner)
        self._zip, self._pid = None, None

    def read(self, name: str) -> bytes:
        if self._zip is None or self._pid != os.getpid():  # a forked worker opens its own handle
            self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zip.read(name)

    def fingerprint_items(self) -> list:
        with zipfile.ZipFile(self.path) as z:
            info = {i.filename: (i.file_size, i.CRC) for i in z.infolist()}
        return [(n, *info[n]) for n in self.names]

    def describe(self) -> str:
        return str(self.path)

    def __getstate__(self):
        return {**self.__dict__, "_zip": None, "_pid": None}


class PreparedSource:
    """A prepared cache folder given as the root (e.g. one `gan-lab prepare` made, copied to another
    machine): used as it is; its preprocessing settings are the ones it was made with."""

    kind = "prepared"

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.meta = json.loads((self.path / "meta.json").read_text())
        self.names: list[str] = []

    def describe(self) -> str:
        return str(self.path)

    def check(self, settings: Settings, labels: str, owner: str) -> PreparedCache:
        _, c, size, _ = self.meta["shape"]
        if (settings.size, settings.channels) != (size, c):
            raise ConfigError(
                f"{owner}.root={str(self.path)!r} is a prepared cache of {size}x{size}x{c} images; "
                f"size={settings.size} channels={settings.channels} do not match; allowed size={size} channels={c}"
            )
        if labels == "folders" and not self.meta.get("classes"):
            raise ConfigError(
                f"{owner}.labels=folders: the prepared cache {str(self.path)!r} has no labels; allowed labels=none"
            )
        return PreparedCache(self.path)


def is_prepared(path: Path) -> bool:
    return path.is_dir() and (path / "meta.json").is_file() and (path / "images.u8").is_file()


def open_source(root: str | Path, owner: str = "data.root"):
    """FolderSource for a folder, ZipSource for a .zip file, PreparedSource for a prepared cache folder;
    one-line errors for anything else."""
    p = Path(str(root)).expanduser()
    if p.is_file() and p.suffix.lower() == ".zip":
        return ZipSource(p, owner)
    if is_prepared(p):
        return PreparedSource(p)
    return FolderSource(p, owner)


# settings and preparation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Preprocessing that goes into the fingerprint (and into the metrics protocol)."""

    size: int = 64
    channels: int = 3
    crop: str = "center"
    resize: str = "lanczos"
    background: int | str = "white"
    crop_seed: int = 0  # crop="random": image i is cropped with rng(crop_seed, i), once, when preparing

    def check(self, owner: str) -> None:
        imgs.check_options(owner, self.channels, self.crop, self.resize, self.background, self.size)


def class_of(name: str) -> str | None:
    """The class of an image: its top-level folder under the root (None for a file directly in the root)."""
    return name.split("/", 1)[0] if "/" in name else None


def fingerprint(source, settings: Settings, labels: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([FORMAT_VERSION, source.kind, asdict(settings), labels], default=str).encode())
    for item in source.fingerprint_items():
        h.update(json.dumps(item).encode())
    return h.hexdigest()


def cache_path(source, settings: Settings, labels: str, cache_dir: str | Path | None = None) -> Path:
    """Where the cache of `source` under `settings` lives (it exists when its meta.json does)."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / f"{source.kind}-{fingerprint(source, settings, labels)[:20]}"


_WORKER_SOURCE = None


def _init_worker(source) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source
    torch.set_num_threads(1)


def _decode(args):
    """(index, uint8 C x S x S or None, (w, h) before resizing or None, error or None)."""
    i, name, s = args
    source = _WORKER_SOURCE
    try:
        im = imgs.open_image(source.read(name), name)
        wh = im.size
        rng = np.random.default_rng([s.crop_seed, i]) if s.crop == "random" else None
        a = imgs.load_image(im, s.channels, s.size, s.crop, s.resize, imgs.background_level(s.background), rng, name)
        return i, np.ascontiguousarray(a.transpose(2, 0, 1)), wh, None
    except (imgs.ImageError, OSError, KeyError) as e:
        return i, None, None, str(e) if isinstance(e, imgs.ImageError) else f"{name}: {type(e).__name__}: {e}"


class PreparedCache:
    """A finished cache folder: `meta`, `images()` (uint8 store as UInt8Images), `labels()`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.meta = json.loads((self.path / "meta.json").read_text())

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.meta["shape"]))

    def store(self, in_ram: bool) -> torch.Tensor:
        shape = tuple(self.meta["shape"])
        if shape[0] == 0:
            return torch.empty(shape, dtype=torch.uint8)
        mm = np.memmap(self.path / "images.u8", dtype=np.uint8, mode="c" if not in_ram else "r", shape=shape)
        return torch.from_numpy(np.array(mm) if in_ram else mm)

    def labels(self) -> torch.Tensor:
        """Label k = meta["classes"][k] of every image (empty when unlabelled)."""
        path = self.path / "labels.npy"
        return torch.from_numpy(np.load(path)) if path.exists() else torch.empty(0, dtype=torch.int64)

    def names(self) -> list[str]:
        """The source name (relative path, zip member, key) of every image, in cache order."""
        path = self.path / "names.txt"
        return path.read_text().splitlines() if path.exists() else []


def prepare(
    source,
    settings: Settings,
    labels: str = "none",
    cache_dir: str | Path | None = None,
    on_corrupt: str = "skip",
    workers: int | None = None,
    progress: bool = False,
    owner: str = "data",
) -> PreparedCache:
    """The cache of `source` under `settings`: found by fingerprint, or decoded now (in `workers` processes,
    default all cores up to 8) into a temporary folder that is renamed into place."""
    settings.check(owner)
    if isinstance(source, PreparedSource):
        return source.check(settings, labels, owner)
    names = source.names
    classes = None
    if labels == "folders":
        flat = [n for n in names if class_of(n) is None]
        if flat:
            raise ConfigError(
                f"{owner}.labels=folders needs class subfolders, but {source.describe()!r} holds {len(flat)} "
                f"image(s) directly (e.g. {flat[0]!r}); allowed labels=none for a flat folder"
            )
        classes = sorted({class_of(n) for n in names})
    elif labels != "none":
        raise ConfigError(f"{owner}: labels={labels!r} is not known; allowed {', '.join(LABEL_MODES)}")
    final = cache_path(source, settings, labels, cache_dir)
    fp, root = final.name.split("-", 1)[1], final.parent
    if (final / "meta.json").exists():
        return PreparedCache(final)

    t0 = time.time()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        c, s = settings.channels, settings.size
        out = np.memmap(tmp / "images.u8", dtype=np.uint8, mode="w+", shape=(max(1, len(names)), c, s, s))
        kept, skipped, sizes = [], [], Counter()
        jobs = [(i, n, settings) for i, n in enumerate(names)]
        workers = workers or min(os.cpu_count() or 1, 8)
        for i, arr, wh, err in _run(jobs, source, workers, progress, len(names)):
            if arr is None:
                if on_corrupt == "raise":
                    raise ConfigError(f"{owner}: cannot read image {err}; set {owner}.on_corrupt=skip to skip it")
                skipped.append([names[i], err])
                continue
            out[len(kept)] = arr
            kept.append(i)
            sizes[f"{wh[0]}x{wh[1]}"] += 1
        out.flush()
        del out
        if not kept:
            first = skipped[0][1] if skipped else "no file"
            raise ConfigError(
                f"{owner}.root={source.describe()!r}: none of the {len(names)} images could be read; first: {first}"
            )
        os.truncate(tmp / "images.u8", len(kept) * c * s * s)
        meta = {
            "format": FORMAT_VERSION,
            "fingerprint": fp,  # the first 20 hex digits of the sha256
            "source": source.describe(),
            "kind": source.kind,
            "settings": asdict(settings),
            "shape": [len(kept), c, s, s],
            "labels_mode": labels,
            "classes": classes,
            "class_counts": dict(Counter(class_of(names[i]) for i in kept)) if classes else None,
            "skipped": skipped,
            "size_histogram": dict(sizes.most_common()),
            "seconds": round(time.time() - t0, 2),
            "workers": workers,
        }
        if classes:
            np.save(tmp / "labels.npy", np.array([classes.index(class_of(names[i])) for i in kept], dtype=np.int64))
        (tmp / "names.txt").write_text("".join(names[i] + "\n" for i in kept))
        (tmp / "meta.json").write_text(json.dumps(meta))  # last: a folder with meta.json is complete
        try:
            os.rename(tmp, final)
        except OSError:  # another job renamed the same cache into place first: use that one
            if not (final / "meta.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("prepared %d images of %s in %.1f s: %s", len(kept), source.describe(), time.time() - t0, final)
    return PreparedCache(final)


def _run(jobs, source, workers: int, progress: bool, total: int):
    """Decode results in job order, in a pool of `workers` processes (in-process for 1 or few files)."""
    from rich.progress import track

    if workers <= 1 or len(jobs) < 64:
        _init_worker(source)
        results = map(_decode, jobs)
        pool = None
    else:
        import multiprocessing as mp

        # Not "fork": a process that has run torch (OpenMP pools) or Lightning (threads) can deadlock its forked
        # children. The fork server is started clean, imports this module once, and forks the workers from it.
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["gan_lab.data.cache"])
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(source,))
        results = pool.imap(_decode, jobs, chunksize=16)
    try:
        yield from track(results, total=total, description="decoding", disable=not progress, transient=True)
    finally:
        if pool is not None:
            pool.terminate()


def summary(cache: PreparedCache, top: int = 8) -> list[str]:
    """Lines describing a cache: images, classes, skipped files with reasons, sizes before resizing."""
    m = cache.meta
    n, c, s, _ = m["shape"]
    st = m["settings"]
    lines = [
        f"{n} images from {m['source']} -> {s}x{s}x{c} uint8 ({n * c * s * s / 1e6:.1f} MB) in {cache.path}",
        f"preprocessing: crop={st['crop']} resize={st['resize']} channels={c} background={st['background']}",
    ]
    if m["classes"]:
        counts = m.get("class_counts") or {}
        shown = ", ".join(f"{name}={counts.get(name, 0)}" for name in m["classes"][:top])
        more = f", ... ({len(m['classes'])} in all)" if len(m["classes"]) > top else ""
        lines.append(f"classes (labels in sorted folder-name order): {shown}{more}")
    hist = list(m["size_histogram"].items())
    rest = sum(v for _, v in hist[top:])
    lines.append(
        "sizes before resizing (WxH: images): "
        + ", ".join(f"{k}: {v}" for k, v in hist[:top])
        + (f", {len(hist) - top} other sizes: {rest}" if rest else "")
    )
    lines.append(f"skipped: {len(m['skipped'])}")
    lines += [f"  {name}: {why}" for name, why in m["skipped"]]
    return lines


# uint8 images seen as floats -----------------------------------------------------------------------------
class UInt8Images:
    """N x C x H x W uint8 images (RAM or memory-mapped store, optionally a subset `index`) that index like
    a float tensor in [-1, 1]: `x[idx]` converts just those rows. `len`, `shape`, `device`, `numel()` and
    `to(device)` (a uint8 copy on that device) are there for the batching and metric code."""

    dtype = torch.float32

    def __init__(self, store: torch.Tensor, index: torch.Tensor | None = None, mapped: bool = False):
        self.store, self.index, self.mapped = store, index, mapped

    def __len__(self) -> int:
        return len(self.index) if self.index is not None else len(self.store)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.store.shape[1:]))

    @property
    def device(self) -> torch.device:
        return self.store.device

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def dim(self) -> int:
        return 4

    def rows(self, idx) -> torch.Tensor:
        """The uint8 rows at idx (int, slice, sequence or tensor of positions)."""
        if isinstance(idx, int):
            return self.rows(torch.tensor([idx]))[0]
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        idx = torch.as_tensor(idx, dtype=torch.int64)
        if self.index is not None:
            idx = self.index.to(idx.device)[idx]
        return self.store[idx.to(self.store.device)]  # memory-mapped: pages come from the OS page cache

    def __getitem__(self, idx) -> torch.Tensor:
        return self.rows(idx).float().div_(127.5).sub_(1.0)

    def to(self, device) -> UInt8Images:
        device = torch.device(device)
        if device == self.device and not self.mapped:
            return self
        return UInt8Images(self.rows(slice(None)).to(device))

    def float(self) -> torch.Tensor:
        return self[slice(None)]


# data module ---------------------------------------------------------------------------------------------
class CachedImagesDataModule(InMemoryDataModule):
    """Images from a prepared cache; batches are images in [-1, 1], or (images, labels) when labelled.

    Subclasses implement `source()`. `protocol` (size, crop, resize filter, channels, background,
    fingerprint...) and, when labelled, `classes` and `num_classes` are set when the data is set up;
    the run directory gets `data.json` with the protocol, classes and skipped files.
    """

    def __init__(
        self,
        size: int = 64,
        channels: int = 3,
        crop: str = "center",
        resize: str = "lanczos",
        background: int | str = "white",
        crop_seed: int = 0,
        labels: str = "none",
        on_corrupt: str = "skip",
        max_memory_gb: float = 1.0,
        cache_dir: str | None = None,
        workers: int | None = None,
        name: str = "images",
        **kw,
    ):
        super().__init__(name=name, **kw)
        owner = f"data.{name}"
        self.settings = Settings(size, channels, crop, resize, background, crop_seed)
        self.settings.check(owner)
        if labels not in LABEL_MODES:
            raise ConfigError(f"{owner}: labels={labels!r} is not known; allowed {', '.join(LABEL_MODES)}")
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"{owner}: on_corrupt={on_corrupt!r} is not known; allowed {', '.join(ON_CORRUPT)}")
        check_range(owner, "max_memory_gb", max_memory_gb, 0.0)
        if workers is not None:
            check_range(owner, "workers", workers, 1)
        self.labels, self.on_corrupt, self.max_memory_gb = labels, on_corrupt, float(max_memory_gb)
        self.cache_dir, self.workers = cache_dir, workers
        self.shape = (channels, size, size)
        self.classes: list[str] | None = None
        self.num_classes: int | None = None
        self.protocol: dict = {}
        self.cache: PreparedCache | None = None
        self._written = False

    def source(self):
        raise NotImplementedError

    def set_classes(self, names: list[str]) -> None:
        """`classes` / `num_classes` from the listing (labels=folders), before anything is decoded."""
        if self.labels == "folders" and isinstance(self.source(), PreparedSource):
            self.classes = self.source().meta.get("classes") or None
            self.num_classes = len(self.classes) if self.classes else None
        elif self.labels == "folders":
            self.classes = sorted({c for c in map(class_of, names) if c is not None})
            self.num_classes = len(self.classes)

    def prepare(self, progress: bool = False) -> PreparedCache:
        """The prepared cache (found or made now)."""
        if self.cache is None:
            self.cache = prepare(
                self.source(),
                self.settings,
                self.labels,
                self.cache_dir,
                self.on_corrupt,
                self.workers,
                progress,
                f"data.{self.name}",
            )
        return self.cache

    def load(self):
        import sys

        cache = self.prepare(progress=sys.stderr.isatty())  # the first run on a new set decodes it here
        m = cache.meta
        if m["skipped"] and self.on_corrupt == "raise":
            name, why = m["skipped"][0]
            raise ConfigError(
                f"data.{self.name}: cannot read image {why}; set data.{self.name}.on_corrupt=skip to skip it"
            )
        if m["skipped"]:
            warnings.warn(
                f"data.{self.name}: {len(m['skipped'])} unreadable file(s) skipped (first: {m['skipped'][0][1]}); "
                "the list is in the run directory's data.json",
                stacklevel=2,
            )
        in_ram = cache.nbytes <= self.max_memory_gb * 1e9
        store = cache.store(in_ram)
        if m["classes"]:
            self.classes, self.num_classes = list(m["classes"]), len(m["classes"])
        self.protocol = {
            "dataset": self.name,
            "source": m["source"],
            "n_images": m["shape"][0],
            **{k: v for k, v in m["settings"].items() if k not in ("resize", "crop_seed")},
            "resize_filter": m["settings"]["resize"],
            **({"crop_seed": m["settings"]["crop_seed"]} if m["settings"]["crop"] == "random" else {}),
            "labels": self.labels,
            "num_classes": self.num_classes,
            "fingerprint": m["fingerprint"],
            "storage": "ram" if in_ram else "memmap",
        }
        n = len(store)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        n_val = int(round(n * self.val_fraction))
        splits = []
        labels = cache.labels() if self.classes else None
        for idx in (perm[n_val:], perm[:n_val]):
            idx = None if n_val == 0 and len(idx) == n else idx
            x = UInt8Images(store, idx, mapped=not in_ram)
            if labels is None:
                splits.append((x,))
            else:
                splits.append((x, labels if idx is None else labels[idx]))
        return splits[0], splits[1]

    def train_dataloader(self):
        loader = super().train_dataloader()
        trainer = self.trainer
        if trainer is not None and trainer.is_global_zero and not self._written:
            self.write_run_info(Path(trainer.default_root_dir))
        return loader

    def write_run_info(self, run_dir: Path) -> None:
        """`data.json` in the run directory: protocol, classes (label k = classes[k]) and skipped files."""
        m = self.prepare().meta
        info = {
            "protocol": self.protocol,
            "classes": self.classes,
            "skipped": m["skipped"],
            "cache": str(self.cache.path),
        }
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "data.json").write_text(json.dumps(info, indent=2))
        self._written = True
