"""Shared helpers: compose the real configs and run the real training entry point in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tests train tiny models: one thread each is faster than two fighting over two cores, and predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
from gan_lab.config import CONF_DIR as CONF  # noqa: E402  (the packaged configs)

SHARED_DATA = ROOT.parent / "shared" / "data"
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("GAN_LAB_CACHE", str(ROOT / ".cache" / "tests"))

# Light settings for tests: no external logger, no progress bar, samples only at the end.
FAST = [
    "logger=none",
    "callbacks.progress=null",
    "callbacks.metrics=null",
    "callbacks.samples.every_n_steps=0",
    "trainer.enable_progress_bar=false",
]


def compose_cfg(*overrides: str, hydra: bool = False):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra)


def train_run(run_dir: Path, *overrides: str, fast: bool = True) -> dict:
    """Compose with overrides and run gan_lab.train.train in-process; returns metrics.json content."""
    from gan_lab.train import train

    cfg = compose_cfg(*(FAST if fast else []), *overrides)
    return train(cfg, Path(run_dir))


def run_cli(
    *args: str, cwd: Path | None = None, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_SILENT": "true", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared test data not found at {SHARED_DATA}")


def fail_writes_to(monkeypatch, name_part: str, err: int, after_bytes: int = 1000):
    """os.write raises `err` once `after_bytes` went into a file whose name holds `name_part` (Linux /proc)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell which file a write goes to")
    real = os.write
    written = {"n": 0}

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if name_part in target:
            if written["n"] >= after_bytes:
                raise OSError(err, os.strerror(err))
            n = real(fd, bytes(data[: max(1, after_bytes - written["n"])]))
            written["n"] += n
            return n
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
