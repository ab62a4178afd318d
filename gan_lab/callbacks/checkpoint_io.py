"""Atomic checkpoint writes on any filesystem (a Lightning CheckpointIO plugin).

Lightning's default writer stages a checkpoint through fsspec in the system's temporary directory and then
moves it; across filesystems (cluster scratch, NFS, tmpfs) that move is a copy, so a kill during it leaves a
truncated file under the final name and an orphan in /tmp. Here a checkpoint is serialised in memory, written
to a hidden temporary file in the destination directory, flushed to disk (fsync) and renamed over the final
name (`os.replace`, atomic within one directory), and the directory entry is synced: the final name always
holds either the previous complete checkpoint or the new complete one. A full disk or a read-only directory
gives one `StorageError` line naming the path and the space needed; the previous checkpoint is kept.

The writer itself is `gan_lab.atomic_io.atomic_write_bytes`, which the other kept files use too. Remote URLs
(s3://, gs://, ...) go to Lightning's own writer. Loading goes through gan_lab.checkpoints.load
(weights_only=True). The class is a plain CheckpointIO, so Lightning's AsyncCheckpointIO can wrap it.
"""

from __future__ import annotations

import io

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from gan_lab.atomic_io import atomic_write_bytes


def _local(path) -> bool:
    text = str(path)
    return "://" not in text or text.startswith("file://")


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
