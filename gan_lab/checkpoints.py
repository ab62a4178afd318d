"""The one loader of checkpoints and weights files: `torch.load(..., weights_only=True)`.

Every file gan_lab reads with torch goes through `load` (the package's only `torch.load`), or through `load_file`
for a file a user names in an option, which says in one line what is wrong with it. A file holding anything but
tensors and plain containers is refused (unpickling arbitrary objects can run code), whatever torch's default
or the TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD environment variable say. No error text suggests `weights_only=False`.
"""

from __future__ import annotations

import os
from pathlib import Path


def load(path: str | os.PathLike, *, mmap: bool = False, map_location="cpu"):
    """The tensors and plain containers of a torch.save file (`mmap`: map tensors instead of reading them)."""
    import torch

    return torch.load(Path(path), map_location=map_location, weights_only=True, mmap=mmap)


def load_file(path: str | os.PathLike, what: str, allowed: str, *, mmap: bool = False, map_location="cpu"):
    """`load` for a file a user names (`what`: the option, e.g. "model.init_from"; `allowed`: what it may be):
    a missing, truncated, foreign or refused file is one ConfigError line naming the option and the path."""
    from gan_lab.errors import ConfigError

    shown = str(path)
    if not Path(path).expanduser().is_file():
        raise ConfigError(f"{what}={shown!r} does not exist or is not a file; allowed {allowed}")
    try:
        return load(Path(path).expanduser(), mmap=mmap, map_location=map_location)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one line
        raise ConfigError(f"{what}={shown!r} cannot be loaded: {refusal_reason(e)}; allowed {allowed}") from None


RENAMED_HPARAMS = {"cond_shape": "condition_shape"}  # old name -> current, for checkpoints of earlier versions


def hyperparameters(state: dict) -> dict:
    """A loaded checkpoint's saved task arguments, with the names of earlier versions mapped to today's."""
    hp = dict(state.get("hyper_parameters") or {})
    for old, new in RENAMED_HPARAMS.items():
        if old in hp:
            hp.setdefault(new, hp.pop(old))
    return hp


def refusal_reason(exc: BaseException) -> str:
    """One short reason for a file `load` refused, without torch's advice to retry with weights_only=False."""
    text = str(exc)
    if "Weights only load failed" in text or "weights_only" in text or "Unsupported global" in text:
        import re

        found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"global[s]? ([\w.]+)", text)
        what = f" ({found.group(1)})" if found else ""
        return (
            f"it holds Python objects{what} besides tensors and plain containers, which gan_lab never unpickles "
            "(loading them could run code)"
        )
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {first}"
