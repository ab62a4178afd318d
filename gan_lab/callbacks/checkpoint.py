"""Lightning's ModelCheckpoint, following its run directory when the directory is moved or copied.

A checkpoint keeps the callback's absolute paths (its directory, last.ckpt, the top-k files). Continuing a
run directory that was moved or copied (`cp -r`, rsync to a cluster) made Lightning warn "The dirpath has
changed", forget the last/top-k files and keep `best_model_path` pointing into the *original* directory.
Here, when every file the saved state names exists at the same place under the new directory, the state is
read as if it had been saved there. Otherwise (the checkpoint directory was really changed by an override)
Lightning's own behaviour and warning stand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint

_PATHS = ("best_model_path", "kth_best_model_path", "last_model_path")


def _moved(path: str, old: str, new: str) -> str | None:
    """`path` under `old` re-rooted under `new`; None when it is not under `old`."""
    try:
        return str(Path(new) / Path(path).relative_to(old))
    except ValueError:
        return None


def follow_moved_dir(state: dict[str, Any], new_dir: str) -> dict[str, Any] | None:
    """The callback state `state` (saved with another `dirpath`) with its paths re-rooted under `new_dir`, or
    None when some named file is not under the old directory or is missing under the new one."""
    old = state.get("dirpath")
    if not old or not new_dir or os.path.normpath(old) == os.path.normpath(new_dir):
        return None
    out = dict(state, dirpath=new_dir)
    for key in _PATHS:
        if state.get(key):
            moved = _moved(state[key], old, new_dir)
            if moved is None or not os.path.isfile(moved):
                return None
            out[key] = moved
    best = {}
    for path, score in (state.get("best_k_models") or {}).items():
        moved = _moved(path, old, new_dir)
        if moved is None or not os.path.isfile(moved):
            return None
        best[moved] = score
    out["best_k_models"] = best
    return out


class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose saved paths follow a moved or copied run directory (see the module docstring)."""

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's key: checkpoints load into either class, and older runs resume their state."""
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        moved = follow_moved_dir(state_dict, self.dirpath) if self.dirpath else None
        super().load_state_dict(moved if moved is not None else state_dict)
