"""GPU options of the nets: `model.channels_last` (NHWC memory order) and `model.compile` (torch.compile).

Applied to the nets in the task's `configure_model`, before Lightning moves the task to its device and
builds the optimizers; with channels_last each batch is converted as the training step starts.
"""

from __future__ import annotations

import os
import shutil

import torch

from gan_lab._lightning_compat import dynamo_supported
from gan_lab.errors import ConfigError


def gpu_options_check(model: str, channels_last, compile, data_shape) -> tuple[bool, bool | str]:
    """Validate `model.channels_last` (true, false or "auto") / `model.compile` (false, true or "step") before
    anything is built (one-line ConfigError). `auto`: on for image data when no GPU is present, where oneDNN's
    convolutions run NHWC natively (measured in docs/performance.md)."""
    images = data_shape is not None and len(data_shape) == 3
    if channels_last == "auto":
        channels_last = images and not torch.cuda.is_available()
    if not isinstance(channels_last, bool):
        raise ConfigError(f"model.channels_last={channels_last!r} is not allowed; allowed true, false, auto")
    if not (isinstance(compile, bool) or compile == "step"):
        raise ConfigError(
            f"model.compile={compile!r} is not allowed; allowed false, true (G's and D's forward), step (also the "
            "optimizer steps)"
        )
    if channels_last and not images:
        raise ConfigError(
            f"model.channels_last=true needs image data (C x H x W samples); model={model} has samples of shape "
            f"{tuple(data_shape) if data_shape is not None else None}; allowed model.channels_last=false"
        )
    if compile:
        if not dynamo_supported():
            raise ConfigError(
                f"model.compile={str(compile).lower()}: torch.compile is not supported with this Python/torch "
                f"({torch.__version__}); "
                "allowed model.compile=false"
            )
        if not torch.cuda.is_available():  # CPU code generation (inductor) compiles C++
            cxx = os.environ.get("CXX") or "c++"
            if shutil.which(cxx) is None and shutil.which("g++") is None:
                raise ConfigError(
                    f"model.compile={str(compile).lower()} needs a C++ compiler for torch.compile (inductor) on the "
                    f"CPU: {cxx!r} and 'g++' are not found (install one or set CXX); allowed model.compile=false"
                )
    return channels_last, compile


def apply_gpu_options(modules, channels_last: bool, compile: bool) -> None:
    """channels_last: 4-D parameters and buffers in NHWC memory order (other tensors are left alone);
    compile: `torch.compile` of each module's forward (the module and its state-dict keys stay as they are,
    so checkpoints are interchangeable with uncompiled runs; hooks such as spectral norm run eagerly)."""
    for m in modules:
        if channels_last:
            m.to(memory_format=torch.channels_last)
        if compile and not getattr(m, "_gan_lab_compiled", False):
            m.forward = torch.compile(m.forward)
            m._gan_lab_compiled = True


def to_channels_last(batch):
    """4-D tensors of a batch (images, masks) in channels_last memory order; everything else as it is."""
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_channels_last(b) for b in batch)
    return batch
