"""Atomic checkpoint writes on any filesystem (a Lightning CheckpointIO plugin).

Lightning's default writer stages a checkpoint through fsspec in the system's temporary directory and then
moves it; across filesystems (cluster scratch, NFS, tmpfs) that move is a copy, so a kill during it leaves a
truncated file under the final name and an orphan in /tmp. Here a checkpoint is serialised in memory, written
to a hidden temporary file in the destination directory, flushed to disk (fsync) and renamed over the final
name (`os.replace`, atomic within one directory), and the directory entry is synced: the final name always
holds either the previous complete checkpoint or the new complete one. A full disk or a read-only directory
gives one `StorageError` line naming the path and the space needed; the previous checkpoint is kept.

Remote URLs (s3://, gs://, ...) go to Lightning's own writer. Loading goes through gan_lab.checkpoints.load
(weights_only=True). The class is a plain CheckpointIO, so Lightning's AsyncCheckpointIO can wrap it.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from gan_lab.errors import StorageError


def _local(path) -> bool:
    text = str(path)
    return "://" not in text or text.startswith("file://")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def atomic_write_bytes(path: str | os.PathLike, data: bytes, what: str = "file") -> None:
    """Write `data` to `path` atomically: temporary file in the same directory, fsync, rename, fsync dir."""
    path = Path(str(path).removeprefix("file://"))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise StorageError(storage_message(e, path, len(data), what)) from None
    try:  # the rename itself survives a power cut only once the directory is synced
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some filesystems (and Windows) cannot open/fsync a directory: the rename is done anyway
        pass


def storage_message(e: OSError, path: Path, size: int, what: str) -> str:
    """One line for a failed write: the path, why, and (disk full) the space needed versus free."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = 0
        then = (
            "free space or move the run directory, then resume with ckpt_path=last (the previous checkpoint is intact)"
            if what == "checkpoint"
            else "free space and run again (a previous file of that name is intact)"
        )
        return (
            f"cannot write {what} {str(path)!r}: no space left on its filesystem (needs {_mb(size)}, {_mb(free)} "
            f"free); {then}"
        )
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"cannot write {what} {str(path)!r}: the directory is not writable ({os.strerror(e.errno)}); "
            "allowed: a writable directory (for a run: hydra.run.dir=...)"
        )
    return f"cannot write {what} {str(path)!r}: {os.strerror(e.errno) if e.errno else e}"


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose saves are temp-in-destination + fsync + rename (see the module docstring)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if not _local(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"storage_options are not supported by {type(self).__name__}")
        import torch

        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getbuffer(), "checkpoint")

    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only=None):
        if not _local(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        from gan_lab.checkpoints import load

        return load(str(path).removeprefix("file://"), map_location=map_location)
