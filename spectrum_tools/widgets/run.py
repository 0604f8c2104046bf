"""Step 5 of the app: confirm, send in a background thread, live progress, Stop.

The run goes on in a daemon thread so the notebook stays usable. Progress arrives through
a :class:`~spectrum_tools.results.RunObserver`, called from the engine's worker
threads; it counts under a lock and redraws at most a few times a second.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
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
    """Send (after a preview), its confirmation, Stop, progress, counts, ETA, Resume.

    Send is enabled only when the preview on screen is of the current file and settings
    (the app decides: :meth:`allow_send`). Pressing it shows the confirmation: host,
    orders, requests and ETA, and for production a box where the environment's name must
    be typed; only "Yes, send" sends.
    """

    def __init__(self) -> None:
        self.force = w.Checkbox(
            value=False,
            description="send again what an earlier run already set (normally skipped)",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.send_button = w.Button(
            description="Send",
            button_style="primary",
            icon="paper-plane",
            disabled=True,
            tooltip="Preview first: Send is enabled once the preview shows this file",
        )
        self.stop_button = w.Button(
            description="Stop", button_style="warning", icon="stop", disabled=True
        )
        self.note = w.HTML()
        self.note.add_class("spectrum-note")
        # The confirmation, shown when Send (or Retry, Resume) is pressed.
        self.question = w.HTML()
        self.confirm = w.Text(
            placeholder="type the environment name",
            description="Type its name",
            style={"description_width": "110px"},
            layout=w.Layout(width="420px"),
        )
        self.yes_button = w.Button(description="Yes, send", button_style="danger", icon="check")
        self.cancel_button = w.Button(description="Cancel", icon="times")
        self.confirm_box = w.VBox(
            [self.question, self.confirm, w.HBox([self.yes_button, self.cancel_button])],
            layout=w.Layout(border="2px solid #b00020", padding="6px", margin="4px 0"),
        )
        self.confirm_box.add_class("spectrum-confirm")
        self.confirm_box.layout.display = "none"
        self.progress = w.IntProgress(
            value=0, min=0, max=1, description="Progress", style={"description_width": "110px"}
        )
        self.counts = w.HTML()
        self.eta = w.HTML()
        self.resume_button = w.Button(
            description="Resume", icon="play", button_style="success", disabled=True
        )
        self.resume_button.layout.display = "none"
        self.box = w.VBox(
            [
                w.HTML("<h3>5. Send</h3>"),
                self.force,
                w.HBox([self.send_button, self.stop_button, self.note]),
                self.confirm_box,
                self.progress,
                self.counts,
                w.HBox([self.eta, self.resume_button]),
            ]
        )

    def allow_send(self, allowed: bool, why: str = "") -> None:
        """Enable Send (a current preview) or disable it, saying why in its tooltip."""
        self.send_button.disabled = not allowed
        self.send_button.tooltip = why

    def ask(self, question: str, env: Environment) -> None:
        """Show the confirmation with ``question``; production asks for its name typed."""
        self.question.value = question
        self.confirm.value = ""
        self.confirm.layout.display = None if env.production else "none"
        self.yes_button.button_style = "danger" if env.production else "primary"
        self.confirm_box.layout.display = None

    def close_question(self) -> None:
        """Hide the confirmation (sent, or cancelled)."""
        self.confirm_box.layout.display = "none"
        self.question.value = ""
        self.confirm.value = ""

    @property
    def asking(self) -> bool:
        """Whether the confirmation is on screen."""
        return bool(self.confirm_box.layout.display != "none")

    def show_environment(self, env: Environment | None) -> None:
        """A red Send for production."""
        needs = env is not None and env.production
        self.send_button.button_style = "danger" if needs else "primary"

    def check_confirmation(self, env: Environment) -> None:
        """Raise ConfigError, sending nothing, unless a production name was typed exactly."""
        if not env.production:
            return
        typed = self.confirm.value.strip()
        if typed != env.name:
            raise ConfigError(
                f"not sent: {env.name} is production; type {env.name!r} to send"
                + (f" (you typed {typed!r})" if typed else "")
            )

    def reset(self) -> None:
        """No run on screen (a new file): empty progress, counts and ETA."""
        self.progress.value = 0
        self.progress.max = 1
        self.progress.bar_style = ""
        self.progress.description = "Progress"
        self.counts.value = ""
        self.eta.value = ""
        self.note.value = ""
        self.resume_button.layout.display = "none"
        self.resume_button.disabled = True
        self.close_question()

    def set_running(self, running: bool) -> None:
        """Stop enabled while a run goes (Send is the app's to enable)."""
        if running:
            self.send_button.disabled = True
            self.resume_button.layout.display = "none"
            self.progress.bar_style = ""
        self.stop_button.disabled = not running

    def show_stopped(self, pending: int) -> None:
        """A stopped run looks stopped: an orange bar and "Stopped: N pending" with Resume."""
        self.progress.bar_style = "warning"
        self.progress.description = "Stopped"
        self.eta.value = (
            '<div class="spectrum-stopped" style="color:#8a4b00;font-weight:600">'
            f"Stopped: {pending:,} orders pending</div>"
        )
        self.resume_button.layout.display = None
        self.resume_button.disabled = True  # the app enables it once the run has ended

    def show_finished(self) -> None:
        """A finished run: a green bar."""
        self.progress.bar_style = "success"
        self.progress.description = "Done"
        self.eta.value = _render.info_line("Finished.")
        self.resume_button.layout.display = "none"


class WidgetProgress(RunObserver):
    """Counts answers as they arrive and draws them on a :class:`RunPanel`. Thread-safe.

    The ETA starts from the chosen pace; once answers have come back it uses the measured
    time per order (answers, divided over the requests sent at once), whichever is longer.

    Parameters
    ----------
    panel
        Where to draw.
    earlier
        A resumed run's orders already settled in its earlier sessions, by outcome: the bar
        and the counts show the whole run ("40 of 46"), not only this session's orders.
    clock
        The clock the ETA is measured on.
    """

    def __init__(
        self,
        panel: RunPanel,
        earlier: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._panel = panel
        self._clock = clock
        self._lock = threading.Lock()
        self._earlier: Counter[str] = Counter(
            {k: int(v) for k, v in (earlier or {}).items() if k != Outcome.PENDING.value and v}
        )
        self._counts: Counter[str] = Counter()
        self._total = 0
        self._in_flight: set[str] = set()
        self._options: RunSettings | None = None
        self._drawn_at = 0.0
        self._started_at = 0.0
        self._answer_s = 0.0
        self._answers = 0
        self.stopping = False

    @property
    def counts(self) -> dict[str, int]:
        """Orders with a final outcome so far, by outcome (earlier sessions included)."""
        with self._lock:
            return dict(self._counts)

    def run_started(self, plan: Plan, options: RunSettings) -> None:
        with self._lock:
            self._counts = Counter(self._earlier)
            self._total = plan.request_count + sum(self._earlier.values())
            self._options = options
            self._started_at = self._clock()
        self._draw(force=True)

    def sending(self, request: Request, attempt: int) -> None:
        with self._lock:
            self._in_flight.add(request.purchase_order)

    def finished(self, result: OrderResult) -> None:
        with self._lock:
            self._counts[result.outcome.value] += 1
            self._in_flight.discard(result.purchase_order)
            if result.attempts:
                self._answers += 1
                self._answer_s += result.elapsed_s
        self._draw()

    def run_finished(self, results: list[OrderResult], stopped: RunStop | None) -> None:
        self._draw(force=True, final=True)

    def eta_seconds(self, left: int) -> float:
        """Seconds for ``left`` more orders: the pace, or the measured answers if slower."""
        with self._lock:
            options, answers, answer_s = self._options, self._answers, self._answer_s
        paced = options.eta_seconds(left + 1) if options is not None and left else 0.0
        if not answers or not left:
            return paced
        workers = max(1, int(getattr(options, "workers", 1) or 1))
        return max(paced, left * (answer_s / answers) / workers)

    def _draw(self, *, force: bool = False, final: bool = False) -> None:
        with self._lock:
            now = self._clock()
            if not force and now - self._drawn_at < _REDRAW_EVERY_S:
                return
            self._drawn_at = now
            counts = dict(self._counts)
            total, options = self._total, self._options
            in_flight = len(self._in_flight)
            measured = self._answers > 0
            before = sum(self._earlier.values())
        pending = counts.get(Outcome.PENDING.value, 0)
        done = sum(counts.values()) - pending  # a pending order has not been sent
        panel = self._panel
        panel.progress.max = max(1, total)
        panel.progress.value = min(done, max(1, total))
        parts = [
            f'<span class="spectrum-count-{o.value}">{o.value} <b>{counts[o.value]:,}</b></span>'
            for o in Outcome
            if counts.get(o.value)
        ]
        panel.counts.value = (
            f'<div class="spectrum-counts">{done:,} of {total:,} orders sent: '
            + (" · ".join(parts) or "waiting for the first answer")
            + (f" ({before:,} of them in earlier sessions)" if before else "")
            + "</div>"
        )
        if final:
            if pending:
                panel.show_stopped(pending)
            else:
                panel.show_finished()
        elif self.stopping:
            panel.eta.value = _render.info_line(
                f"Stopping: {in_flight} requests under way finish, the rest stay pending…"
            )
        elif options is not None:
            remaining = max(0, total - done)
            left = self.eta_seconds(remaining)
            paced = options.eta_seconds(remaining + 1) if remaining else 0.0
            how = (
                "at the measured answer time"
                if measured and left > paced
                else f"at {options.max_per_minute:g} a minute"
            )
            panel.eta.value = _render.info_line(f"About {_render.duration(left)} left ({how}).")


class BackgroundRun:
    """One run in a daemon thread, with its stop event and the frame it produced."""

    def __init__(
        self,
        work: Callable[[threading.Event], pd.DataFrame],
        on_done: Callable[[pd.DataFrame | None, BaseException | None], None],
    ) -> None:
        self.stop_event = threading.Event()
        self._work_done = threading.Event()
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
        """Whether the work is still going (its results are being shown: not any more)."""
        return self._thread.is_alive() and not self._work_done.is_set()

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
        self._work_done.set()  # on_done may start the next run (Resume) at once
        self._on_done(self.results, self.error)
