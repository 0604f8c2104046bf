"""Read what Spectrum holds now for a sheet's orders, in bulk.

I/O: the network, through :class:`~spectrum_tools.client.SpectrumClient` on the paced
runner (:class:`~spectrum_tools.engine.PacedRun`), with the same pacing, retries and stop
rules as status writes.

How (docs/spectrum-api.md, "Reading orders back" and "Search"):

1. ``POST /api/orders/search`` for every status, one last-modification window of at most
   31 days at a time, newest first, keeping only the orders the sheet names; it stops as
   soon as every order was seen, or when the look-back (default 92 days) is used up;
2. ``GET /api/order/order-number/{po}`` for each order no window returned (404: the order
   does not exist).

The two endpoints are paced on budgets of their own (Spectrum's limit is per endpoint).
Only the sheet's orders are kept from a search answer, so what is held stays bounded by
the sheet, and every answer is bounded in size by the client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import (
    Attempts,
    PacedRun,
    ProgressBar,
    RunKind,
    SendOptions,
    Stopped,
    error_text,
)
from spectrum_tools.errors import (
    AuthenticationError,
    ForbiddenError,
    NotFoundError,
    RunStoppedError,
    SpectrumError,
)
from spectrum_tools.readback.answers import (
    MAX_WINDOW,
    OrderState,
    answer_order_number,
    parse_order,
    search_windows,
    unpadded,
)
from spectrum_tools.readback.changes import current_frame
from spectrum_tools.results import RunStop
from spectrum_tools.schema import LINE_ID, PO
from spectrum_tools.statuses import WorkflowStatus

__all__ = ["DEFAULT_LOOK_BACK", "READ_RUN", "Reading", "read_current", "read_orders"]

DEFAULT_LOOK_BACK: Final = timedelta(days=92)
"""How far back searches look by default: about three months of modifications."""

READ_RUN: Final = RunKind(
    noun="reads", left="orders not read are reported as not read", then="read again"
)
_NOT_READ: Final = "not read: the read stopped before it"
_CLOCK_MARGIN: Final = timedelta(minutes=5)
_NO_STATUSES: Final = (
    "Spectrum's answers carry no workflowStatus for the line items, so their current status "
    "is unknown: nothing is skipped or undone on that basis."
)


@dataclass(frozen=True)
class Reading:
    """What a bulk read found.

    Attributes
    ----------
    states
        Purchase order -> :class:`OrderState` for every order asked about.
    searches, gets
        Requests made to each endpoint (every attempt).
    statuses_shown
        False when Spectrum's answers carried no line-level status at all (the degraded
        path: current statuses are unknown); None when nothing was read.
    stopped
        Why the read stopped early, or None.
    notes
        Things the analyst should hear once, in plain words.
    slowdowns, speedups
        How often the pace was cut after a 403 throttle, and earned back a step.
    """

    states: Mapping[str, OrderState]
    searches: int = 0
    gets: int = 0
    statuses_shown: bool | None = None
    stopped: RunStop | None = None
    notes: tuple[str, ...] = ()
    slowdowns: int = 0
    speedups: int = 0

    @property
    def requests(self) -> int:
        """Requests made in all."""
        return self.searches + self.gets


def read_orders(
    orders: Sequence[str],
    client: SpectrumClient,
    *,
    options: SendOptions | None = None,
    look_back: timedelta = DEFAULT_LOOK_BACK,
    window: timedelta = MAX_WINDOW,
    search: bool = True,
    progress: bool = True,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Reading:
    """Read the current state of ``orders``: a few searches, then a GET for the rest.

    Parameters
    ----------
    orders
        Purchase order numbers (duplicates are read once).
    client
        The environment.
    options
        Pace, workers and retries (each endpoint gets the pace on its own).
    look_back
        How far back the searches reach; orders modified earlier are read one by one.
    window
        The span of one search (Spectrum allows 31 days at most).
    search
        False reads every order with a GET (what reconciliation did before bulk reads).
    progress
        Show progress bars.
    stop
        Set it to stop reading; orders not read yet are ``error`` "not read".
    clock
        Now, in UTC (tests pass a fixed one).

    Returns
    -------
    Reading
        Its ``stopped`` says when the read stopped early: Spectrum refused the first reads
        (401, or 403 before any success), answered nothing at all, or ``stop`` was set.
        Orders not read are in ``states`` with an ``error``.
    """
    wanted = list(dict.fromkeys(orders))
    opts = options or SendOptions()
    stop = stop if stop is not None else threading.Event()
    found: dict[str, OrderState] = {}
    lookalikes: dict[str, str] = {}
    searches = slowdowns = speedups = 0
    notes: list[str] = []
    stopped: RunStop | None = None
    if search and wanted:
        search_run: PacedRun[None] = PacedRun(client, opts, READ_RUN, stop=stop)
        found, note, lookalikes = _search(
            search_run, set(wanted), look_back, window, clock, progress
        )
        searches, stopped = search_run.requests, search_run.stopped
        slowdowns, speedups = search_run.pacer.slowdowns, search_run.pacer.speedups
        if note:
            notes.append(note)
    rest = [po for po in wanted if po not in found]
    gets = 0
    if rest and (stopped is None):
        get_run: PacedRun[OrderState] = PacedRun(client, opts, READ_RUN, stop=stop)
        found.update(_get_each(get_run, rest, clock, progress))
        gets, stopped = get_run.requests, get_run.stopped
        slowdowns += get_run.pacer.slowdowns
        speedups += get_run.pacer.speedups
    states = {po: found.get(po, OrderState(po, error=_NOT_READ)) for po in wanted}
    for po, other in lookalikes.items():  # "did you mean 00012345?" for a lost zero
        if not states[po].found:
            states[po] = replace(states[po], hint=f"did you mean {other}?")
    shown = _statuses_shown(states.values())
    if shown is False:
        notes.append(_NO_STATUSES)
    return Reading(states, searches, gets, shown, stopped, tuple(notes), slowdowns, speedups)


def read_current(
    lines: pd.DataFrame,
    client: SpectrumClient,
    **kwargs: Any,
) -> pd.DataFrame:
    """What Spectrum holds now for each line item of ``lines``.

    Parameters
    ----------
    lines
        At least ``purchaseOrderNumber`` and ``recipeSetReadableId`` (a sheet read with
        :func:`~spectrum_tools.read_updates`, or a plan's line items).
    client
        The environment.
    **kwargs
        As for :func:`read_orders`.

    Returns
    -------
    pandas.DataFrame
        :func:`~spectrum_tools.readback.changes.current_frame`: one row per row of
        ``lines`` with ``current_status`` (empty when unknown), ``seen``, ``read_at``,
        ``read_via`` and ``read_note``. ``attrs`` holds ``searches``, ``gets``,
        ``statuses_shown`` and ``notes``.

    Raises
    ------
    RunStoppedError
        Spectrum refused the first reads (401, or 403 before any success), or gave no
        answer at all: the token or the base URL is wrong. ``results`` holds the frame.

    Examples
    --------
    >>> from spectrum_tools.sandbox import SandboxServer, SandboxSettings
    >>> lines = pd.DataFrame({"purchaseOrderNumber": ["HA-US-DEV00011101"],
    ...     "recipeSetReadableId": ["TEBMKVGB"]})
    >>> with SandboxServer(settings=SandboxSettings(rate_limit=None)) as sandbox:
    ...     client = SpectrumClient(sandbox.base_url, token=sandbox.token)
    ...     now = read_current(lines, client, progress=False)
    >>> now[["current_status", "read_via"]].values.tolist()
    [['not-started', 'search']]
    """
    reading = read_orders(lines[PO].astype(str).tolist(), client, **kwargs)
    frame = current_frame(lines[[PO, LINE_ID]].astype(str), reading.states)
    frame.attrs.update(
        searches=reading.searches,
        gets=reading.gets,
        statuses_shown=reading.statuses_shown,
        notes=list(reading.notes),
    )
    stopped = reading.stopped
    if stopped is not None and not stopped.graceful:
        raise RunStoppedError(stopped.message, results=frame)
    return frame


# --------------------------------------------------------------------------- searching


def _search(
    run: PacedRun[None],
    wanted: set[str],
    look_back: timedelta,
    window: timedelta,
    clock: Callable[[], datetime],
    progress: bool,
) -> tuple[dict[str, OrderState], str, dict[str, str]]:
    """Search window after window, newest first, until every order is seen.

    Also returns wanted order -> an order Spectrum has that differs only in leading zeros.
    """
    found: dict[str, OrderState] = {}
    lookalikes: dict[str, str] = {}
    by_digits: dict[str, list[str]] = {}
    for po in wanted:
        by_digits.setdefault(unpadded(po), []).append(po)
    # The newest window ends a little in the future: an order changed a moment ago, or on
    # a server whose clock runs ahead of ours, is still inside it.
    windows = search_windows(clock() + _CLOCK_MARGIN, look_back + _CLOCK_MARGIN, window)
    bar = ProgressBar(len(windows), "Searching") if progress else None
    statuses = [s.value for s in WorkflowStatus]
    note = ""
    try:
        for start, end in windows:
            if len(found) == len(wanted) or run.stop.is_set():
                break
            try:
                answer = run.call(
                    lambda s=start, e=end: run.client.search_orders(  # type: ignore[misc]
                        _iso(s), statuses, end=_iso(e)
                    ),
                    Attempts(),
                    answer=lambda orders: (200, f"{len(orders)} order(s)"),
                )
            except Stopped:
                break
            except (ForbiddenError, AuthenticationError) as exc:
                if isinstance(exc, AuthenticationError) or not run.has_succeeded:
                    run.refuse(exc.status_code)
                note = f"search stopped (HTTP {exc.status_code}); the rest is read one by one"
                break
            except SpectrumError as exc:
                # Search is a shortcut: when it fails, every order is still read with a GET.
                note = f"search failed ({error_text(exc)}); the rest is read one by one"
                break
            read_at = _iso(clock())
            for order in answer:
                number = answer_order_number(order)
                if number is None:
                    continue
                if number in wanted and number not in found:
                    state = parse_order(number, order)
                    found[number] = replace(state, via="search", read_at=read_at)
                for twin in by_digits.get(unpadded(number), ()):
                    if twin != number:
                        lookalikes.setdefault(twin, number)
            if bar is not None:
                bar.advance()
    finally:
        if bar is not None:
            bar.close()
    return found, note, lookalikes


# --------------------------------------------------------------------------- one by one


def _get_each(
    run: PacedRun[OrderState],
    orders: Sequence[str],
    clock: Callable[[], datetime],
    progress: bool,
) -> dict[str, OrderState]:
    bar = ProgressBar(len(orders), "Reading orders") if progress else None

    def work(index: int) -> OrderState:
        po = orders[index]
        try:
            return _get_one(run, po, clock)
        except Exception as exc:  # one odd answer must not kill a worker
            # e.g. RecursionError from a deeply nested JSON body: this order is unread,
            # and the worker goes on with the next one.
            return OrderState(po, error=f"could not read the order: {type(exc).__name__}")

    try:
        done = run.run(
            len(orders),
            work,
            name="spectrum-reader",
            done=(lambda _i, _r: bar.advance()) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    return {
        po: state if state is not None else OrderState(po, error=_NOT_READ)
        for po, state in zip(orders, done, strict=True)
    }


def _get_one(run: PacedRun[OrderState], po: str, clock: Callable[[], datetime]) -> OrderState:
    tries = Attempts()
    client = run.client
    try:
        order = run.call(lambda: client.get_order(po), tries, answer=lambda _o: (200, ""))
    except Stopped:
        return OrderState(po, error=_NOT_READ)
    except NotFoundError:
        return OrderState(po, found=False, via="order", read_at=_iso(clock()))
    except (ForbiddenError, AuthenticationError) as exc:
        if isinstance(exc, AuthenticationError) or not run.has_succeeded:
            run.refuse(exc.status_code)
            return OrderState(po, error=f"not read: HTTP {exc.status_code} ({exc.details})")
        return OrderState(po, error=f"still throttled (HTTP 403) after {tries.throttled} tries")
    except SpectrumError as exc:
        n = tries.total
        text = f"could not read the order after {n} attempt(s): {error_text(exc)}"
        return OrderState(po, error=text)
    return replace(parse_order(po, order), via="order", read_at=_iso(clock()))


def _statuses_shown(states: Any) -> bool | None:
    """True when any answer showed a line status; False when answers came but none did."""
    read = [s for s in states if s.found and not s.error and s.statuses]
    if not read:
        return None
    return any(s.shows_statuses for s in read)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
