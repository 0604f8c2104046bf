"""A pool of worker threads that survives Ctrl-C without losing an in-flight request.

I/O: none of its own (threads only).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["run_workers"]

_POLL_S = 0.2  # how often the waiting thread wakes up to notice Ctrl-C


def run_workers(
    count: int,
    work: Callable[[], None],
    *,
    name: str,
    on_interrupt: Callable[[], None],
    on_crash: Callable[[BaseException], None],
    stop: threading.Event | None = None,
    drain_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``work`` in ``count`` threads and wait until every one has returned.

    Ctrl-C while starting the threads or waiting calls ``on_interrupt`` (which must make
    ``work`` stop taking new items, and set ``stop``), then keeps waiting so in-flight
    requests finish; a second Ctrl-C then abandons the wait. A worker
    that raises calls ``on_crash`` (which must stop the others); the first such exception
    is re-raised here.

    Once ``stop`` is set, the wait lasts at most ``drain_s`` more seconds (one request
    deadline): a worker still out then is left behind (a daemon thread; the caller must
    ignore what it does later) and this returns.
    """
    all_done = threading.Event()
    running = [count]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def body() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
            on_crash(exc)
        finally:
            with lock:
                running[0] -= 1
                if running[0] == 0:
                    all_done.set()

    # Wait on an Event, not Thread.join: on CPython 3.11 a join interrupted by Ctrl-C can
    # mark a still-running thread as finished, and its in-flight request would be lost.
    # The timeout only lets the main thread notice Ctrl-C and the drain deadline.
    give_up: list[float] = []

    def waiting() -> bool:
        if all_done.wait(_POLL_S):
            return False
        if stop is None or drain_s is None or not stop.is_set():
            return True
        if not give_up:
            give_up.append(clock() + drain_s)
        return clock() < give_up[0]

    # A Ctrl-C while the threads start is held until every one has started (else the
    # count of threads to wait for would be wrong, or the KeyboardInterrupt would escape
    # with requests in flight); it then stops the run like any other.
    held = _HeldInterrupt()
    try:
        with held:
            for n in range(count):
                threading.Thread(target=body, name=f"{name}-{n}", daemon=True).start()
        if held.hit:
            raise KeyboardInterrupt
        while waiting():
            pass
    except KeyboardInterrupt:
        on_interrupt()
        while waiting():  # in-flight requests finish (within drain_s); nothing new starts
            pass
    if errors:
        raise errors[0]


class _HeldInterrupt:
    """While active in the main thread, a SIGINT (Ctrl-C, ``_thread.interrupt_main``) is
    noted in :attr:`hit` instead of raising KeyboardInterrupt. Elsewhere (a background
    thread, where no KeyboardInterrupt can arrive) or under a handler of the program's
    own, it does nothing."""

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None
        self._active = False

    def __enter__(self) -> _HeldInterrupt:
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGINT)
            if current is signal.default_int_handler:
                self._previous = signal.signal(signal.SIGINT, self._note)
                self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
            self._active = False

    def _note(self, signum: int, frame: object) -> None:
        self.hit = True
