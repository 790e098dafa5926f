"""SIGINT and SIGTERM: stop after the write in progress, never in the middle of it.

The command line installs `install_handlers`; a signal then raises `Interrupted` in the main thread,
except inside `deferred()` (every atomic write holds it), where it waits until the write is done.
`Interrupted` is a BaseException like KeyboardInterrupt, so no `except Exception` swallows it, and
the code it unwinds removes its partial files as for any other failure.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NOTHING_LOST = "every completed write is kept and partial files were removed"
"""What any interrupted command can say it kept (commands that know more set `Interrupted.saved`)."""


class Interrupted(BaseException):
    """A stop asked for by SIGINT or SIGTERM; `saved` says what is kept, for the one-line message."""

    def __init__(self, signum: int, saved: str = "") -> None:
        super().__init__(signum, saved)
        self.signum = signum
        self.saved = saved

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process the signal ended (130, 143)."""
        return 128 + self.signum

    def __str__(self) -> str:
        return f"interrupted by {self.name}: {self.saved or NOTHING_LOST}"


class _State(threading.local):
    depth = 0


_state = _State()
_pending: list[int] = []


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends (in the main thread; other threads never receive them)."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0 and _pending and _main_thread():
            raise Interrupted(_pending.pop())


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state.depth:
        _pending[:] = [signum]
        return
    raise Interrupted(signum)


def install_handlers() -> None:
    """Make SIGINT and SIGTERM raise `Interrupted` (deferred inside `deferred()`); main thread only."""
    if _main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handle)
