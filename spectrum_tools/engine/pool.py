"""A pool of worker threads that survives Ctrl-C without losing an in-flight request.

I/O: none of its own (threads only).
"""

from __future__ import annotations

import threading
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
) -> None:
    """Run ``work`` in ``count`` threads and wait until every one has returned.

    Ctrl-C while waiting calls ``on_interrupt`` (which must make ``work`` stop taking new
    items), then keeps waiting so in-flight requests finish. A worker that raises calls
    ``on_crash`` (which must stop the others); the first such exception is re-raised here.
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
    # The timeout only lets the main thread notice Ctrl-C; the Event ends the wait.
    try:
        while not all_done.wait(_POLL_S):
            pass
    except KeyboardInterrupt:
        on_interrupt()
        while not all_done.wait(_POLL_S):  # in-flight requests finish; nothing new starts
            pass
    if errors:
        raise errors[0]
