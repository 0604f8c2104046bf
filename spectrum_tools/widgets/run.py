"""Step 5 of the app: confirm, send in a background thread, live progress, Stop.

The run goes on in a daemon thread so the notebook stays usable. Progress arrives through
a :class:`~spectrum_tools.results.RunObserver`, called from the engine's worker
threads; it counts under a lock and redraws at most a few times a second.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.environments import Environment
from spectrum_tools.errors import ConfigError
from spectrum_tools.planning import Plan, Request
from spectrum_tools.results import OrderResult, RunObserver, RunSettings, RunStop
from spectrum_tools.schema import Outcome
from spectrum_tools.widgets import _render

__all__ = ["BackgroundRun", "RunPanel", "WidgetProgress"]

_REDRAW_EVERY_S: Final = 0.2


class RunPanel:
    """Confirmation field, Send and Stop buttons, progress bar, counts and ETA."""

    def __init__(self) -> None:
        self.confirm = w.Text(
            placeholder="type the environment name to confirm",
            description="Confirm",
            style={"description_width": "110px"},
            layout=w.Layout(width="420px"),
        )
        self.confirm_note = w.HTML()
        self.force = w.Checkbox(
            value=False,
            description="send again what an earlier run already applied (force)",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop_button = w.Button(
            description="Stop", button_style="warning", icon="stop", disabled=True
        )
        self.progress = w.IntProgress(
            value=0, min=0, max=1, description="Progress", style={"description_width": "110px"}
        )
        self.counts = w.HTML()
        self.eta = w.HTML()
        self.box = w.VBox(
            [
                w.HTML("<h3>5. Send</h3>"),
                self.confirm_note,
                self.confirm,
                self.force,
                w.HBox([self.send_button, self.stop_button]),
                self.progress,
                self.counts,
                self.eta,
            ]
        )

    def show_environment(self, env: Environment | None) -> None:
        """Ask for the name to be typed when the environment is production."""
        needs = env is not None and env.production
        self.confirm.layout.display = None if needs else "none"
        self.send_button.button_style = "danger" if needs else "primary"
        if env is not None and needs:
            self.confirm_note.value = _render.error_line(
                f"{env.name} is PRODUCTION: type {env.name!r} below to send, retry or resume"
            )
        else:
            self.confirm_note.value = ""

    def check_confirmation(self, env: Environment) -> None:
        """Raise ConfigError, sending nothing, unless a production name was typed exactly."""
        if not env.production:
            return
        typed = self.confirm.value.strip()
        if typed != env.name:
            raise ConfigError(
                f"not sent: {env.name} is production; type {env.name!r} in Confirm to send"
                + (f" (you typed {typed!r})" if typed else "")
            )

    def set_running(self, running: bool) -> None:
        """Enable Stop while a run goes; Send otherwise."""
        self.send_button.disabled = running
        self.stop_button.disabled = not running
        if not running:
            self.confirm.value = ""


class WidgetProgress(RunObserver):
    """Counts answers as they arrive and draws them on a :class:`RunPanel`. Thread-safe."""

    def __init__(self, panel: RunPanel, clock: Callable[[], float] = time.monotonic) -> None:
        self._panel = panel
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._total = 0
        self._in_flight: set[str] = set()
        self._options: RunSettings | None = None
        self._drawn_at = 0.0
        self.stopping = False

    @property
    def counts(self) -> dict[str, int]:
        """Orders with a final outcome so far, by outcome."""
        with self._lock:
            return dict(self._counts)

    def run_started(self, plan: Plan, options: RunSettings) -> None:
        with self._lock:
            self._counts.clear()
            self._total = plan.request_count
            self._options = options
        self._draw(force=True)

    def sending(self, request: Request, attempt: int) -> None:
        with self._lock:
            self._in_flight.add(request.purchase_order)

    def finished(self, result: OrderResult) -> None:
        with self._lock:
            self._counts[result.outcome.value] += 1
            self._in_flight.discard(result.purchase_order)
        self._draw()

    def run_finished(self, results: list[OrderResult], stopped: RunStop | None) -> None:
        self._draw(force=True, final=True)

    def _draw(self, *, force: bool = False, final: bool = False) -> None:
        with self._lock:
            now = self._clock()
            if not force and now - self._drawn_at < _REDRAW_EVERY_S:
                return
            self._drawn_at = now
            counts = dict(self._counts)
            total, options = self._total, self._options
            in_flight = len(self._in_flight)
        done = sum(counts.values())
        panel = self._panel
        panel.progress.max = max(1, total)
        panel.progress.value = min(done, max(1, total))
        parts = [
            f'<span class="spectrum-count-{o.value}">{o.value} <b>{counts[o.value]:,}</b></span>'
            for o in Outcome
            if counts.get(o.value)
        ]
        panel.counts.value = (
            f'<div class="spectrum-counts">{done:,} of {total:,} orders: '
            + (" · ".join(parts) or "waiting for the first answer")
            + "</div>"
        )
        if final:
            pending = counts.get(Outcome.PENDING.value, 0)
            text = "Finished." if not pending else f"Stopped: {pending:,} orders still pending."
            panel.eta.value = _render.info_line(text)
        elif self.stopping:
            panel.eta.value = _render.info_line(
                f"Stopping: {in_flight} in-flight requests finish, the rest stay pending…"
            )
        elif options is not None:
            left = options.eta_seconds(max(0, total - done) + 1)
            panel.eta.value = _render.info_line(
                f"About {_render.duration(left)} left at {options.max_per_minute:g}/min."
            )


class BackgroundRun:
    """One run in a daemon thread, with its stop event and the frame it produced."""

    def __init__(
        self,
        work: Callable[[threading.Event], pd.DataFrame],
        on_done: Callable[[pd.DataFrame | None, BaseException | None], None],
    ) -> None:
        self.stop_event = threading.Event()
        self.results: pd.DataFrame | None = None
        self.error: BaseException | None = None
        self._work = work
        self._on_done = on_done
        self._thread = threading.Thread(target=self._main, name="spectrum-widget-run", daemon=True)

    def start(self) -> BackgroundRun:
        """Start the thread."""
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the thread is still going."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Ask for a graceful stop: in-flight requests finish, nothing new starts."""
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _main(self) -> None:
        try:
            self.results = self._work(self.stop_event)
        except BaseException as exc:  # shown as one line by on_done; never a traceback
            self.error = exc
            self.results = getattr(exc, "results", None)
        self._on_done(self.results, self.error)
