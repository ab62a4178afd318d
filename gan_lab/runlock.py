"""Advisory locks on run and sweep directories: one live process writes into a directory at a time.

The lock is a file `.gan_lab.lock` holding the owner's host, pid and start time, created with O_EXCL (atomic
on local filesystems and on NFSv3+). A second run or sweep into a locked directory is refused with one line
naming the owner. A lock left by a process that no longer exists on this host is stale and taken over; a
lock from another host cannot be checked from here, so the message says how to remove it.

Sweeps: the Hydra callback `SweepLock` (conf/hydra/default.yaml) takes the lock on the sweep directory in
the process that launches the jobs, from `on_multirun_start` to `on_multirun_end`; each job takes the lock
on its own directory in gan_lab.train.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from gan_lab.errors import ConfigError

LOCK_NAME = ".gan_lab.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def owner(directory: Path) -> dict | None:
    """The live owner of the lock in `directory` ({host, pid, since}), or None (no lock, or a stale one)."""
    path = Path(directory) / LOCK_NAME
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        info = {}
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not _alive(info["pid"]):
        return None
    return info


class DirLock:
    """`with DirLock(dir, what="run directory"):` or acquire()/release(); ConfigError if a live owner holds it."""

    def __init__(self, directory: str | os.PathLike, what: str = "directory", key: str = "hydra.run.dir"):
        self.directory, self.what, self.key = Path(directory), what, key
        self.path = self.directory / LOCK_NAME
        self.held = False

    def check(self) -> None:
        """Refuse (without writing anything) when a live process other than this one holds the lock."""
        info = owner(self.directory)
        if info is None or (info.get("host") == socket.gethostname() and info.get("pid") == os.getpid()):
            return
        host, pid = info.get("host", "?"), info.get("pid", "?")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"])) if "since" in info else "?"
        local = host == socket.gethostname()
        hint = (
            "wait for it or stop it"
            if local
            else f"if no process on {host} uses it any more, delete {str(self.path)!r}"
        )
        raise ConfigError(
            f"{self.what} {str(self.directory)!r} is in use by process {pid} on {host} (since {since}); {hint}, "
            f"or choose another {self.key}"
        )

    def acquire(self) -> DirLock:
        self.check()
        if self.held:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                info = owner(self.directory)
                if info is None:  # stale: its process is gone
                    self.path.unlink(missing_ok=True)
                    continue
                self.check()  # another live process: refused
                return self  # this process holds it already (not released by this object)
            with os.fdopen(fd, "w") as f:
                f.write(record)
            self.held = True
            return self
        raise ConfigError(f"{self.what} {str(self.directory)!r}: cannot create the lock file {str(self.path)!r}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - Hydra is a dependency
    Callback = object


class SweepLock(Callback):
    """Hydra callback: the sweep directory is locked while its sweep runs (a second sweep there is refused)."""

    def __init__(self) -> None:
        self._lock: DirLock | None = None

    def on_multirun_start(self, config, **kwargs) -> None:
        """Hydra turns a callback's exception into a warning and sweeps on: a refusal exits here (status 2)."""
        import sys

        try:
            _jobs_in_this_process(config)
            sweep_dir = Path(str(config.hydra.sweep.dir)).expanduser().absolute()
            self._lock = DirLock(sweep_dir, what="sweep directory", key="hydra.sweep.dir").acquire()
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None

    def on_multirun_end(self, config, **kwargs) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _jobs_in_this_process(config) -> None:
    """Jobs that the launcher runs in this machine's processes (basic, joblib) cannot each start several DDP
    processes (Lightning re-runs the command line for ranks 1..): refused before the first job, exit 2."""
    target = str(config.hydra.launcher.get("_target_", ""))
    trainer = config.get("trainer") or {}
    sizes = [v for v in (trainer.get("devices"), trainer.get("num_nodes")) if isinstance(v, int) and v > 1]
    if sizes and ("BasicLauncher" in target or "Joblib" in target):
        raise ConfigError(
            f"trainer.devices={trainer.get('devices')!r} trainer.num_nodes={trainer.get('num_nodes', 1)!r} "
            "(several processes per job) cannot run inside a -m sweep on this machine (Lightning restarts the command "
            "line once per process); allowed: trainer.devices=1 per job, hydra/launcher=slurm, or one command per "
            "configuration"
        )
