"""The one "stop after N" observer: does something once N orders reached a step of a run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

from spectrum_tools.planning import Request
from spectrum_tools.results import OrderResult, RunObserver

__all__ = ["StopAfter"]


class StopAfter(RunObserver):
    """Calls ``action`` (``stop.set``, ``_thread.interrupt_main``, ``sandbox.stop``...) once.

    Parameters
    ----------
    n
        After how many orders.
    action
        What to do then.
    when
        ``"finished"``: once ``n`` orders have their final outcome (a stop between
        orders); ``"sending"``: as the ``n``-th request is about to go out (a stop with a
        request in flight).
    """

    def __init__(
        self,
        n: int,
        action: Callable[[], object],
        *,
        when: Literal["finished", "sending"] = "finished",
    ) -> None:
        self.n = n
        self.action = action
        self.when = when
        self.seen = 0
        self._lock = threading.Lock()

    def _count(self, step: str) -> None:
        if step != self.when:
            return
        with self._lock:
            self.seen += 1
            fire = self.seen == self.n
        if fire:
            self.action()

    def sending(self, request: Request, attempt: int) -> None:
        self._count("sending")

    def finished(self, result: OrderResult) -> None:
        self._count("finished")
