"""Reconciliation: does Spectrum (or the run journal) hold the statuses a sheet asks for?

I/O: reads the sheet; :func:`reconcile` reads orders back over the network through
:class:`~spectrum_tools.client.SpectrumClient` (``GET /api/order/order-number/{po}``) on the
same paced runner as sends (:class:`~spectrum_tools.engine.PacedRun`: the same pacing,
retries, 403 throttling that earns the pace back, and stops on a 403 streak or when the
host gives no answer); :func:`reconcile_with_runs` reads the run journal only;
:func:`write_reconciliation` writes an ``.xlsx``. The comparison itself is pure.

Every valid row of the sheet gets one ``state``:

* ``match`` — Spectrum reports the status the sheet wants;
* ``differs`` — it reports another one (both are shown);
* ``missing_in_spectrum`` — the order (HTTP 404) or that line item is not in Spectrum;
* ``unknown`` — the answer carries no status for the line item. Whether Spectrum's order
  read-back includes ``workflowStatus`` is not documented, so an absent field is reported,
  never guessed;
* ``error`` — the order could not be read (retries exhausted, or an answer not in the
  documented shape);

and every row that failed validation is ``invalid``, with its problem.

The answer is read defensively (``docs/spectrum-api.md``, "Reading orders back"): a
line item may name itself ``recipeSetReadableId`` or ``recipeSetId``; ``lineItems`` that is
not a list makes that order an ``error``, not a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final

import pandas as pd

from spectrum_tools.charts import add_bar_chart
from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.errors import ConfigError, RunStoppedError
from spectrum_tools.journal import Journal
from spectrum_tools.readback import OrderState, Seen, current_frame, read_orders
from spectrum_tools.readback.changes import CURRENT_STATUS, READ_NOTE, SEEN
from spectrum_tools.schema import DETAILS, LINE_ID, PO, PROBLEM, SOURCE_ROW, STATUS, VALID
from spectrum_tools.sheets import read_updates, write_workbook
from spectrum_tools.statuses import normalise_status
from spectrum_tools.validation import validate_updates

__all__ = [
    "COUNT",
    "RECONCILE_COLUMNS",
    "RUN_ID",
    "SPECTRUM_STATUS",
    "STATE",
    "WANTED_STATUS",
    "State",
    "compare_with_applied",
    "reconcile",
    "reconcile_with_runs",
    "reconciliation_summary",
    "write_reconciliation",
]

WANTED_STATUS: Final = "wanted_status"
SPECTRUM_STATUS: Final = "spectrum_status"
STATE: Final = "state"
COUNT: Final = "count"
RUN_ID: Final = "run_id"

RECONCILE_COLUMNS: Final = (
    PO,
    LINE_ID,
    WANTED_STATUS,
    SPECTRUM_STATUS,
    STATE,
    DETAILS,
    SOURCE_ROW,
)
"""The columns of every reconciliation frame, in this order."""


class State(StrEnum):
    """How a sheet row compares with Spectrum (or with the journal)."""

    MATCH = "match"
    DIFFERS = "differs"
    MISSING = "missing_in_spectrum"
    UNKNOWN = "unknown"
    INVALID = "invalid"
    ERROR = "error"


Source = str | Path | IO[bytes] | pd.DataFrame


# --------------------------------------------------------------------------- public


def reconcile(
    source: Source,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    sheet: str | None = None,
    bulk: bool = True,
    progress: bool = True,
    stop: threading.Event | None = None,
    **pace: Any,
) -> pd.DataFrame:
    """Read every order of a sheet back from Spectrum and compare it, line by line.

    Parameters
    ----------
    source
        The sheet: a path, an upload, or a DataFrame of rows (read with
        :func:`~spectrum_tools.read_updates` and validated; only valid rows are compared).
    client
        The Spectrum environment to read from.
    sheet
        Workbook sheet, as for :func:`~spectrum_tools.read_updates`.
    options
        Pace, concurrency and retries of the reads, as for sends (Spectrum's documented
        safe pace is 100 per minute per endpoint). Its fields may also be given as
        keywords (``max_per_minute=60, workers=2, max_attempts=4``), not both.
    bulk
        Read through a few searches first, then one GET per order no search window
        covered (see :func:`~spectrum_tools.readback.read_orders`); False reads every
        order with its own GET.
    progress
        Show a progress bar with ETA.
    stop
        Set it from another thread to stop; orders not read yet are ``error``
        ("not read").

    Returns
    -------
    pandas.DataFrame
        One row per sheet row, in sheet order: ``purchaseOrderNumber,
        recipeSetReadableId, wanted_status, spectrum_status, state, details, source_row``.
        ``attrs`` holds ``host``, ``requests`` (``searches`` + ``gets`` sent), ``notes``
        (said once, e.g. that answers carry no statuses), ``stopped`` (None, or why),
        ``stop_reason`` and ``slowdowns`` / ``speedups`` (how often the pace was cut after
        a 403 throttle, and earned back a step).

    Raises
    ------
    SpreadsheetError
        The sheet cannot be read.
    ConfigError
        Both ``options`` and keywords, or an unknown keyword.
    RunStoppedError
        401, or 403 before any read succeeded (the token is refused, or the limit was
        already used up), an endless streak of 403s, or orders in a row with no answer at
        all. Its ``results`` holds the frame so far.

    Examples
    --------
    >>> from spectrum_tools.sandbox import SandboxServer, SandboxSettings
    >>> rows = pd.DataFrame({"PO": ["HA-US-DEV00011101", "HA-US-DEV00011101"],
    ...     "Recipe Set ID": ["TEBMKVGB", "LKIHFPB5"], "Status": ["Not Started", "completed"]})
    >>> with SandboxServer(settings=SandboxSettings(rate_limit=None)) as sandbox:
    ...     client = SpectrumClient(sandbox.base_url, token=sandbox.token)
    ...     frame = reconcile(rows, client, progress=False)
    >>> frame[["spectrum_status", "state"]].values.tolist()
    [['not-started', 'match'], ['not-started', 'differs']]
    """
    options = SendOptions.given(options, **pace)
    rows = _validated(source, sheet)
    valid = rows[VALID].to_numpy(bool)
    orders = list(dict.fromkeys(rows.loc[valid, PO].tolist()))
    reading = read_orders(
        orders, client, options=options, search=bulk, progress=progress, stop=stop
    )
    frame = _compare(rows, reading.states)
    stopped = reading.stopped
    frame.attrs.update(
        host=client.host,
        requests=reading.requests,
        searches=reading.searches,
        gets=reading.gets,
        notes=list(reading.notes),
        stopped=stopped.message if stopped is not None else None,
        stop_reason=stopped.reason if stopped is not None else None,
        slowdowns=reading.slowdowns,
        speedups=reading.speedups,
    )
    if stopped is not None and not stopped.graceful:
        raise RunStoppedError(stopped.message, results=frame)
    return frame


def reconcile_with_runs(
    source: Source,
    *,
    runs_dir: str | Path | None = None,
    environment: str | None = None,
    sheet: str | None = None,
) -> pd.DataFrame:
    """Compare a sheet with what past runs applied, from the journal alone (no API calls).

    Parameters
    ----------
    source, sheet
        The sheet, as for :func:`reconcile`.
    runs_dir
        The runs folder holding the journal (default ``./spectrum-runs``).
    environment
        The environment key (``client.environment_key``, e.g.
        ``https://spectrum.example.com``) whose runs count. ``None``: the one environment
        the journal has runs to.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`reconcile`; ``spectrum_status`` is the status the most
        recent successful run applied to the line item, and ``details`` names that run.
        A line item no run applied is ``unknown`` (the journal cannot say what Spectrum
        holds). ``attrs`` holds ``environment`` and ``requests`` (always 0).

    Raises
    ------
    JournalError
        There is no journal in ``runs_dir``.
    ConfigError
        ``environment`` is None and the journal has runs to several environments.
    """
    rows = _validated(source, sheet)
    with Journal.existing(runs_dir) as journal:  # never creates a runs folder
        if environment is None:
            hosts = sorted({str(h) for h in journal.runs()["environment"].dropna()})
            if len(hosts) > 1:
                raise ConfigError(
                    f"the journal {journal.path} has runs to {len(hosts)} environments "
                    f"({', '.join(hosts)}); say which one with environment= / --base-url"
                )
            environment = hosts[0] if hosts else None
        applied = journal.applied(environment) if environment is not None else _nothing_applied()
    frame = compare_with_applied(rows, applied)
    frame.attrs.update(environment=environment, requests=0, stopped=None)
    return frame


def _nothing_applied() -> pd.DataFrame:
    text = {c: pd.Series(dtype=object) for c in (PO, LINE_ID, STATUS)}
    return pd.DataFrame({**text, RUN_ID: pd.Series(dtype="int64")})


def reconciliation_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Count rows by state, every state listed (zeros included), in a fixed order.

    Examples
    --------
    >>> df = pd.DataFrame({"state": ["match", "differs", "match"]})
    >>> reconciliation_summary(df).head(3).to_dict("records")
    [{'state': 'match', 'count': 2}, {'state': 'differs', 'count': 1}, {'state': 'missing_in_spectrum', 'count': 0}]
    """  # noqa: E501
    counts = df[STATE].astype(str).value_counts() if len(df) else pd.Series(dtype="int64")
    known = [s.value for s in State]
    extra = [str(s) for s in counts.index if s not in known]
    return pd.DataFrame(
        {
            STATE: known + extra,
            COUNT: [int(counts.get(s, 0)) for s in known + extra],
        }
    )


def write_reconciliation(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a reconciliation to ``.xlsx``: ``Summary`` (counts and a chart) and ``Lines``.

    Ids stay text and nothing is written as a formula (see
    :func:`~spectrum_tools.sheets.write_workbook`).

    Raises
    ------
    ConfigError
        ``path`` is not an ``.xlsx`` file.
    """
    target = Path(path)
    if target.suffix.lower() != ".xlsx":
        raise ConfigError(f"{target}: write the reconciliation to an .xlsx file")
    summary = reconciliation_summary(df)
    lines = df.reset_index(drop=True)
    lines.attrs = {}

    def decorate(book: Any) -> None:
        if len(summary):
            add_bar_chart(
                book,
                "Summary",
                (2, len(summary) + 1),
                title="Lines by state",
                y_title="lines",
            )

    # The chart reads labels from column B and counts from column C.
    table = summary.assign(section="lines by state")[["section", STATE, COUNT]]
    return write_workbook(target, {"Summary": table, "Lines": lines}, decorate=decorate)


# --------------------------------------------------------------------------- reading


def _validated(source: Source, sheet: str | None) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame) and sheet is not None:
        raise ConfigError("sheet= is for workbooks, not DataFrames")
    rows = read_updates(source, sheet=sheet)
    return validate_updates(rows)


# --------------------------------------------------------------------------- comparing


def _compare(rows: pd.DataFrame, states: Mapping[str, OrderState]) -> pd.DataFrame:
    """One reconciliation row per sheet row. Pure."""
    valid = rows[VALID].to_numpy(bool)
    current = current_frame(rows.loc[valid, [PO, LINE_ID]], states)
    frame = pd.DataFrame(
        {
            PO: rows[PO].to_numpy(object),
            LINE_ID: rows[LINE_ID].to_numpy(object),
            WANTED_STATUS: rows[STATUS].to_numpy(object),
            SPECTRUM_STATUS: "",
            STATE: State.INVALID.value,
            DETAILS: rows[PROBLEM].to_numpy(object),
            SOURCE_ROW: rows[SOURCE_ROW].to_numpy("int64"),
        }
    )
    wanted = frame.loc[valid, WANTED_STATUS].tolist()
    judged = [
        _judge(w, have, seen, note)
        for w, have, seen, note in zip(
            wanted,
            current[CURRENT_STATUS].tolist(),
            current[SEEN].tolist(),
            current[READ_NOTE].tolist(),
            strict=True,
        )
    ]
    if judged:
        states_, haves, details = zip(*judged, strict=True)
        frame.loc[valid, STATE] = list(states_)
        frame.loc[valid, SPECTRUM_STATUS] = list(haves)
        frame.loc[valid, DETAILS] = list(details)
    frame = frame.astype({c: object for c in RECONCILE_COLUMNS if c != SOURCE_ROW})
    return frame.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)


_STATE_OF: Final = {
    Seen.NO_STATUS.value: State.UNKNOWN,
    Seen.NO_LINE.value: State.MISSING,
    Seen.NO_ORDER.value: State.MISSING,
    Seen.UNREAD.value: State.ERROR,
}


def _judge(wanted: str, have: str, seen: str, note: str) -> tuple[str, str, str]:
    """(state, Spectrum's status, details) of one valid row, from what the read saw."""
    if seen != Seen.STATUS.value:
        return _STATE_OF[seen].value, "", note
    if normalise_status(have) == normalise_status(wanted):
        return State.MATCH.value, have, note
    return State.DIFFERS.value, have, f"the sheet wants {wanted}, Spectrum has {have}"


def compare_with_applied(rows: pd.DataFrame, applied: pd.DataFrame) -> pd.DataFrame:
    """Compare validated rows with the journal's applied statuses. Pure.

    Parameters
    ----------
    rows
        Validated rows (``valid`` and ``problem`` columns).
    applied
        ``purchaseOrderNumber, recipeSetReadableId, workflowStatus, run_id``; when a line
        item appears more than once, the highest ``run_id`` wins.

    Examples
    --------
    >>> rows = validate_updates(pd.DataFrame({"purchaseOrderNumber": ["P1", "P1", "P2"],
    ...     "recipeSetReadableId": ["A1", "B2", "C3"],
    ...     "workflowStatus": ["completed", "on hold", "approved"]}))
    >>> applied = pd.DataFrame({"purchaseOrderNumber": ["P1", "P1"],
    ...     "recipeSetReadableId": ["A1", "B2"], "workflowStatus": ["completed", "approved"],
    ...     "run_id": [3, 4]})
    >>> compare_with_applied(rows, applied)["state"].tolist()
    ['match', 'differs', 'unknown']
    """
    latest = (
        applied[[PO, LINE_ID, STATUS, RUN_ID]]
        .astype({PO: object, LINE_ID: object, STATUS: object})
        .sort_values(RUN_ID, kind="stable")
        .drop_duplicates([PO, LINE_ID], keep="last")
        .rename(columns={STATUS: SPECTRUM_STATUS})
    )
    merged = rows.merge(latest, on=[PO, LINE_ID], how="left", sort=False)
    valid = merged[VALID].to_numpy(bool)
    have = merged[SPECTRUM_STATUS]
    found = have.notna().to_numpy(bool)
    same = (merged[STATUS].astype(str) == have.astype(str)).to_numpy(bool)
    run = merged[RUN_ID].astype("Int64").astype(str)
    state = pd.Series(State.UNKNOWN.value, index=merged.index, dtype=object)
    details = pd.Series(
        "no recorded run applied a status to this line item", index=merged.index, dtype=object
    )
    state[found & same] = State.MATCH.value
    details[found & same] = "applied by run " + run[found & same]
    state[found & ~same] = State.DIFFERS.value
    details[found & ~same] = (
        "the sheet wants "
        + merged.loc[found & ~same, STATUS].astype(str)
        + ", run "
        + run[found & ~same]
        + " applied "
        + have[found & ~same].astype(str)
    )
    state[~valid] = State.INVALID.value
    details[~valid] = merged.loc[~valid, PROBLEM]
    frame = pd.DataFrame(
        {
            PO: merged[PO].astype(object),
            LINE_ID: merged[LINE_ID].astype(object),
            WANTED_STATUS: merged[STATUS].astype(object),
            SPECTRUM_STATUS: have.where(valid & found, "").astype(object),
            STATE: state,
            DETAILS: details,
            SOURCE_ROW: merged[SOURCE_ROW].astype("int64"),
        }
    )
    return frame.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)
