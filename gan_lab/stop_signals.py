"""Stop requests by signal (SIGTERM, SIGINT, SIGUSR1): the one handler behind the training loop's save-and-stop
(`gan_lab.callbacks.signals.PreemptionCheckpoint`) and the job runner's stop (`gan_lab.jobs`).

A `StopSignals` scope handles the given signals while it is open and puts the previous handlers back when it
closes. A signal is recorded (`signum`, the first one wins) and passed to `on_signal`; a second SIGINT (Ctrl+C
twice) closes the scope and raises KeyboardInterrupt at once. Scopes nest (the main thread's, innermost last):
- a scope opened inside another starts with the outer one's request, so a stop asked for before a job's
  training began stops it at its first step boundary;
- a request an inner scope received reaches the outer scope when the inner one closes, so the job runner
  learns of a signal that came while a job was finishing (its end-of-run evaluation), when the job itself no
  longer stops for it.
Signal handlers exist only in the main thread: elsewhere a scope records what the enclosing ones hand it and
installs nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable

STOP = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    _open: list[StopSignals] = []  # the main thread's open scopes, innermost last

    def __init__(self, on_signal: Callable[[int], None] | None = None, signals: Iterable[int] = STOP):
        self.on_signal = on_signal
        self.signals = tuple(signals)
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._is_open = False

    def open(self) -> StopSignals:
        if self._is_open:
            return self
        outer = self._open[-1] if self._open else None
        self.signum = outer.signum if outer is not None else None
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
            self._open.append(self)
            self._is_open = True
        return self

    def close(self) -> None:
        if not self._is_open:
            return
        for sig, handler in self._previous.items():
            if handler is not None:  # None: a handler not installed from Python, which cannot be put back
                signal.signal(sig, handler)
        self._previous = {}
        self._is_open = False
        self._open.remove(self)
        outer = self._open[-1] if self._open else None
        if outer is not None and self.signum is not None and outer.signum is None:
            outer.receive(self.signum)

    def __enter__(self) -> StopSignals:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def receive(self, signum: int) -> None:
        """Record a stop request (the first one is kept) and tell `on_signal`."""
        if self.signum is None:
            self.signum = signum
        if self.on_signal is not None:
            self.on_signal(signum)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            self.close()
            raise KeyboardInterrupt
        self.receive(signum)
