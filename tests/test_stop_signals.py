"""Nested stop scopes (gan_lab.stop_signals): the job runner's scope around a job's training scope."""

from __future__ import annotations

import os
import signal

import pytest

from gan_lab.stop_signals import StopSignals


def test_a_signal_goes_to_the_innermost_scope_and_reaches_the_outer_one_when_it_closes():
    before = signal.getsignal(signal.SIGTERM)
    told = []
    with StopSignals(on_signal=told.append) as outer:
        inner = StopSignals(signals=(signal.SIGTERM, signal.SIGINT)).open()
        assert inner.signum is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert inner.signum == signal.SIGTERM and outer.signum is None and told == []
        inner.close()
        assert outer.signum == signal.SIGTERM and told == [signal.SIGTERM]
        inner.close()  # closing twice changes nothing
        assert told == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) == outer._handle
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_scope_opened_after_a_stop_request_starts_with_it():
    with StopSignals() as outer:
        os.kill(os.getpid(), signal.SIGTERM)
        assert outer.signum == signal.SIGTERM
        with StopSignals() as inner:
            assert inner.signum == signal.SIGTERM


def test_a_second_ctrl_c_raises_at_once_and_puts_the_handlers_back():
    before = signal.getsignal(signal.SIGINT)
    scope = StopSignals().open()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert scope.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == before
        assert StopSignals._open == []
    finally:
        scope.close()
