"""A pool of worker threads that survives Ctrl-C without losing an in-flight request.

I/O: none of its own (threads only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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

    Ctrl-C while waiting calls ``on_interrupt`` (which must make ``work`` stop taking new
    items, and set ``stop``), then keeps waiting so in-flight requests finish. A worker
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

    for n in range(count):
        threading.Thread(target=body, name=f"{name}-{n}", daemon=True).start()
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

    try:
        while waiting():
            pass
    except KeyboardInterrupt:
        on_interrupt()
        while waiting():  # in-flight requests finish (within drain_s); nothing new starts
            pass
    if errors:
        raise errors[0]
