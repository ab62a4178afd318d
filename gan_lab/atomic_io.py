"""The one atomic file writer: temporary file in the destination directory, fsync, rename, fsync directory.

Every file gan_lab writes that a user keeps (checkpoints through `callbacks.checkpoint_io.AtomicCheckpointIO`,
metrics.json, `gan-lab evaluate`'s JSON, the reproduce records, the FID statistics, the training's sample
pictures) goes through `atomic_write_bytes`: the final name holds either the previous complete file or the new
complete one, and a full disk or read-only directory is one `StorageError` line naming the path and the space
needed. (`gan-lab sample`, whose output can exceed memory, writes its folder or .npz under a temporary name and
renames it.) No Lightning import: metrics and the CLI use it too.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from gan_lab.errors import StorageError


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
