"""Progress bars with ETA for runs: tqdm on stderr in a terminal, a widget in Jupyter.

I/O: writes the bar to ``file`` (stderr by default).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import IO, Any

from tqdm.auto import tqdm

from spectrum_tools.planning import Plan
from spectrum_tools.results import OrderResult, RunObserver, RunSettings, RunStop

__all__ = ["ProgressBar", "SendProgress"]


class ProgressBar:
    """A thread-safe bar of ``total`` items with counts by label (e.g. by outcome)."""

    def __init__(self, total: int, desc: str, file: IO[str] | None = None) -> None:
        self._bar: Any = tqdm(total=total, unit="order", desc=desc, file=file, smoothing=0.1)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def advance(self, label: str | None = None) -> None:
        """One more item done (counted under ``label`` when given)."""
        with self._lock:
            if label is not None:
                self._counts[label] += 1
                self._bar.set_postfix(dict(self._counts), refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        """Draw the bar one last time and let go of it."""
        self._bar.close()


class SendProgress(RunObserver):
    """The bar of a status run, with counts by outcome."""

    def __init__(self, file: IO[str] | None = None) -> None:
        self._file = file
        self._bar: ProgressBar | None = None

    def run_started(self, plan: Plan, options: RunSettings) -> None:
        self._bar = ProgressBar(plan.request_count, "Sending", self._file)

    def finished(self, result: OrderResult) -> None:
        if self._bar is not None:
            self._bar.advance(result.outcome.value)

    def run_finished(self, results: list[OrderResult], stopped: RunStop | None) -> None:
        if self._bar is not None:
            self._bar.close()
