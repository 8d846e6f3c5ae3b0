"""Errors the user fixes before a run can start; runners print their message alone, not a traceback.

SIGTERM and SIGINT become `Interrupted` (a KeyboardInterrupt) inside `exit_on_setup_error` and `omiti2v`
commands, so the cleanup on the way out runs (temp files, staging folders, claims) and the process ends with one
`error:` line and exit code 128 + the signal number."""

import functools
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SetupError(Exception):
    """Missing weights or data, or an invalid benchmark: the message says what to do and which key to set."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived; `finally` blocks and `except BaseException` cleanups run as it unwinds."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Inside the block the first SIGTERM or SIGINT raises Interrupted; later ones are ignored, so the cleanup
    on the way out finishes. Outside the main thread (where handlers cannot be set) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interrupted_exit(exc: KeyboardInterrupt) -> int:
    """Print the one line for an interrupted command; its exit code (128 + signal number)."""
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    print(f"error: interrupted by {signal.Signals(signum).name}; nothing partial was kept (finished work stays: "
          "rerun the same command to go on)", file=sys.stderr)
    return 128 + signum


def exit_on_setup_error(func):
    """Runner decorator: a SetupError ends the process with its message and exit code 2, a SIGTERM or SIGINT
    with one line and 128 + its number; no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with signals_interrupt():
                return func(*args, **kwargs)
        except SetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as exc:
            sys.exit(interrupted_exit(exc))

    return wrapper
