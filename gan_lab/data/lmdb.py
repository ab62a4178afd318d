"""LSUN-style LMDB databases (key -> encoded image), e.g. the LSUN bedroom/church downloads.

    pip install gan_lab[lmdb]
    python -m gan_lab.train model=dcgan data=lmdb data.root=~/lsun/bedroom_train_lmdb data.size=64 data.limit=100000

`root` is the database folder (holding data.mdb). Values are decoded by `gan_lab.data.images` (any format
PIL reads: LSUN stores webp) into the prepared uint8 cache of `gan_lab.data.cache`; `limit` keeps the
first N keys in the database's order (0 = all). The cache fingerprint uses the database file's size and
mtime and the number of keys, not every key.
"""

from __future__ import annotations

import os
from pathlib import Path

from gan_lab.data.cache import CachedImagesDataModule
from gan_lab.errors import ConfigError, check_range


def _lmdb():
    try:
        import lmdb
    except ImportError:
        raise ConfigError(
            "data=lmdb needs the lmdb package, which is not installed; pip install gan_lab[lmdb]"
        ) from None
    return lmdb


_ENVS: dict = {}  # (path, pid) -> read-only environment: LMDB allows one per database and process


def _env(root: Path):
    key = (str(root.resolve()), os.getpid())  # handles must not cross a fork: one per process
    if key not in _ENVS:
        _ENVS[key] = _lmdb().open(key[0], readonly=True, lock=False, readahead=False, meminit=False, max_readers=256)
    return _ENVS[key]


class LmdbSource:
    """Keys of an LMDB (latin-1 decoded, in the database's order) and their values as bytes."""

    kind = "lmdb"

    def __init__(self, root: str | Path, limit: int = 0, owner: str = "data.root"):
        lmdb = _lmdb()
        self.root = Path(str(root)).expanduser()
        if not (self.root / "data.mdb").is_file():
            raise ConfigError(
                f"{owner}={str(root)!r} is not an LMDB folder (no data.mdb); allowed a folder holding data.mdb"
            )
        try:
            with _env(self.root).begin() as txn:
                keys = []
                for k in txn.cursor().iternext(keys=True, values=False):
                    keys.append(bytes(k).decode("latin-1"))
                    if limit and len(keys) >= limit:
                        break
        except lmdb.Error as e:
            raise ConfigError(f"{owner}={str(root)!r} cannot be opened as an LMDB ({e})") from None
        if not keys:
            raise ConfigError(f"{owner}={str(root)!r} is an LMDB with no entries; allowed a database of encoded images")
        self.names, self.limit = keys, limit

    def read(self, name: str) -> bytes:
        with _env(self.root).begin() as txn:
            value = txn.get(name.encode("latin-1"))
        if value is None:
            raise KeyError(f"key {name!r} is not in the database")
        return bytes(value)

    def fingerprint_items(self) -> list:
        st = (self.root / "data.mdb").stat()
        return [("data.mdb", st.st_size, st.st_mtime_ns, len(self.names), self.limit)]

    def describe(self) -> str:
        return str(self.root)


class LmdbDataModule(CachedImagesDataModule):
    """Batches are images in [-1, 1] (LSUN has no labels inside a database: one database is one class)."""

    def __init__(self, root: str = "???", limit: int = 0, **kw):
        super().__init__(name="lmdb", **kw)
        check_range("data.lmdb", "limit", limit, 0)
        if self.labels != "none":
            raise ConfigError(f"data.lmdb: labels={self.labels!r} is not available for an LMDB; allowed none")
        self.root = str(root)
        self._source = LmdbSource(self.root, int(limit), "data.root")

    def source(self):
        return self._source
