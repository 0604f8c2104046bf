"""BulkUpdateApp: one bulk status run in a notebook, step by step, over the library.

I/O: reads the environments file and the chosen sheet; sends through the library (a
background thread), writes the run journal, report, error and success files into the runs
folder; starts the bundled sandbox on demand. Reads ``SPECTRUM_API_TOKEN`` and
``SPECTRUM_ENVIRONMENTS`` (this is an edge, like the CLI).

Every step calls the library: :func:`~spectrum_tools.read_updates`,
:func:`~spectrum_tools.validate_updates`, :func:`~spectrum_tools.plan_updates`,
:func:`~spectrum_tools.runs.preview_send` (skips what earlier runs applied, reads what
Spectrum holds), :func:`~spectrum_tools.runs.send_plan` (exactly the preview shown),
:func:`~spectrum_tools.runs.resume_run`,
:func:`~spectrum_tools.runs.retry_failed`, :func:`~spectrum_tools.runs.undo_run`,
:func:`~spectrum_tools.report.write_report`.
The widgets only gather arguments and show answers. Each message is one line, shown next
to the button that caused it.

The rules an analyst can rely on: nothing is loaded until they load a file or press "Try
the sample"; Send is enabled only while the preview on screen is of the current file and
settings (any change disables it again); every send, retry and resume shows host, orders,
requests and ETA and asks "Yes, send" (production: its name typed); a new file clears the
last run from the screen.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.connect import Connection, connect
from spectrum_tools.environments import (
    SANDBOX,
    Environment,
    environments_file,
    load_environments,
    load_status_aliases,
)
from spectrum_tools.errors import ConfigError, JournalError, NotFoundError, RunStoppedError
from spectrum_tools.handoff import handoff_rows
from spectrum_tools.journal import DEFAULT_RUNS_DIR, JOURNAL_FILE, Journal
from spectrum_tools.planning import Plan, plan_updates
from spectrum_tools.readback.preview import Preview
from spectrum_tools.report import write_report
from spectrum_tools.results import line_results
from spectrum_tools.runs import (
    Recording,
    resume_run,
    retry_failed,
    send_plan,
    source_identity,
    undo_run,
)
from spectrum_tools.sandbox import SandboxServer, SandboxSettings, sample_data_dir
from spectrum_tools.schema import OUTCOME, PO, VALID, Outcome
from spectrum_tools.sheets import HEADERS, write_workbook
from spectrum_tools.statuses import StatusAliases, WorkflowStatus
from spectrum_tools.validation import (
    ORIGINAL_STATUS,
    apply_suggestions,
    status_suggestions,
    validate_updates,
)
from spectrum_tools.widgets import _render
from spectrum_tools.widgets.checks import ValidatePanel
from spectrum_tools.widgets.environment import EnvironmentPanel
from spectrum_tools.widgets.fixes import LEFT_OUT
from spectrum_tools.widgets.preview import PreviewPanel, build_send_preview, send_question
from spectrum_tools.widgets.results import ResultsPanel, unfinished_options
from spectrum_tools.widgets.run import BackgroundRun, RunPanel, WidgetProgress
from spectrum_tools.widgets.source import SourcePanel
from spectrum_tools.widgets.undo import UndoPanel, history_options, undo_table

__all__ = ["BulkUpdateApp"]

TOKEN_VARIABLE: Final = "SPECTRUM_API_TOKEN"  # noqa: S105 - a variable name, not a secret
_CLOSE_WAIT_S: Final = 30.0
_LOOPBACK: Final = ("127.0.0.1", "localhost", "[::1]")

Work = Callable[[threading.Event, WidgetProgress], pd.DataFrame]


class _SentFrom:
    """What the app knows about a run's input, for the error and success files."""

    def __init__(
        self,
        raw: pd.DataFrame,
        headers: Mapping[str, str],
        header: list[str],
        left_out: list[int],
    ) -> None:
        self.raw = raw
        self.headers = dict(headers)
        self.header = header
        self.left_out = left_out


class BulkUpdateApp:
    """An ipywidgets app for one bulk workflow-status run.

    Display it as the last expression of a cell. Steps: 1 environment and token (Test
    connection), 2 the sheet and its columns (or "Try the sample"), 3 check the rows (with
    the team's status aliases from the environments file), take the suggested statuses in
    one click and fix the invalid rows in a grid, 4 preview (a table of what each line item
    will do), 5 send (confirmed; in the background, with Stop and Resume), 6 the outcome
    chart, the results grid, the report, error and success files, retry failures and resume
    unfinished runs.

    Parameters
    ----------
    runs_dir
        The runs folder (journal, reports, the sandbox's orders). Default
        ``./spectrum-runs``, as the CLI.
    environments_file
        The team's environments TOML. Default ``SPECTRUM_ENVIRONMENTS``, else
        ``./spectrum-environments.toml`` when it exists.
    environment
        The environment selected at first (default ``sandbox``).
    input_path
        A sheet to load at once (the path box shows it). Default: nothing loaded.
    max_per_minute, workers
        The pace offered at first (Spectrum's safe level is 100 per minute).
    sandbox_settings
        Fault switches of the bundled sandbox (latency, rate limit...), for rehearsals.
    environ
        Where to read ``SPECTRUM_API_TOKEN`` and ``SPECTRUM_ENVIRONMENTS`` (default
        ``os.environ``).

    Attributes
    ----------
    results
        The last run's per-order results (None before a run).
    run_id
        The last run's id in the journal.
    plan
        The plan of the last validation (None until then).
    preview
        The preview on screen (None until Preview is pressed, and after any change).
    corrections
        The corrections made in the fix grid: ``row, column, original, corrected``.
    last_message
        The latest message as plain text (``error: ...`` for an error), for scripts.

    Examples
    --------
    >>> app = BulkUpdateApp(runs_dir=getfixture("tmp_path"), environ={})
    >>> app.environment_dropdown.value, app.send_button.disabled
    ('sandbox', True)
    >>> app.close()
    """

    def __init__(
        self,
        runs_dir: str | os.PathLike[str] | None = None,
        environments_file: str | os.PathLike[str] | None = None,
        *,
        environment: str = SANDBOX,
        input_path: str | os.PathLike[str] | None = None,
        max_per_minute: int = 100,
        workers: int = 4,
        sandbox_settings: SandboxSettings | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.runs_dir = Path(runs_dir if runs_dir else DEFAULT_RUNS_DIR).expanduser().resolve()
        self._sandbox_settings = sandbox_settings
        self._connection: Connection | None = None
        self._background: BackgroundRun | None = None
        self._observer: WidgetProgress | None = None
        self._raw: pd.DataFrame | None = None
        self._take_suggestions = False
        self._previewed: Hashable | None = None
        self._confirmed: Callable[[], None] | None = None
        self._sent_from: dict[int, _SentFrom] = {}
        self._pending_from: _SentFrom | None = None
        self.plan: Plan | None = None
        self.checked: pd.DataFrame | None = None
        self.preview: Preview | None = None
        self.results: pd.DataFrame | None = None
        self.run_id: int | None = None
        self.last_message = ""
        self.message = w.HTML()
        self.last_note: w.HTML = self.message

        problems: list[BaseException] = []
        envs, self._aliases = _environments(environments_file, self._environ, problems)
        if environment not in envs:
            problems.append(ConfigError(f"no environment {environment!r}; using the sandbox"))
            environment = SANDBOX
        self.environment_panel = EnvironmentPanel(
            envs, environment, token_in_environment=bool(self._environ.get(TOKEN_VARIABLE))
        )
        self.source_panel = SourcePanel(
            on_change=self._input_changed,
            on_error=lambda exc: self._error(exc, self.source_panel.note),
            on_loaded=self._file_loaded,
            sample=_sample_sheet(),
        )
        self.validate_panel = ValidatePanel(on_edit=self._guarded(self._fixed, "validate"))
        self.preview_panel = PreviewPanel(max_per_minute=max_per_minute, workers=workers)
        self.run_panel = RunPanel()
        self.results_panel = ResultsPanel()
        self.undo_panel = UndoPanel()
        self.results_panel.box.children = (*self.results_panel.box.children, self.undo_panel.box)
        self._expose()
        self._wire()
        self.widget = w.VBox(
            [
                w.HTML(_render.APP_STYLE + "<h2>Spectrum bulk status update</h2>"),
                self.message,
                self.environment_panel.box,
                self.source_panel.box,
                self.validate_panel.box,
                self.preview_panel.box,
                self.run_panel.box,
                self.results_panel.box,
            ],
            layout=w.Layout(max_width="1200px"),
        )
        self.widget.add_class("spectrum-app")
        self.run_panel.show_environment(self._selected_or_none())
        if input_path is not None:
            self.path_input.value = str(input_path)
            self._guarded(lambda: self.source_panel.load_path(Path(input_path)), "source")()
        self._guarded(self._refresh_runs, "resume")()
        for problem in problems:
            self._error(problem, self.message)

    # ------------------------------------------------------------------ wiring

    def _expose(self) -> None:
        """Flat attributes for every control, so tests and notebooks can drive the app."""
        env, src, val = self.environment_panel, self.source_panel, self.validate_panel
        pre, run, out = self.preview_panel, self.run_panel, self.results_panel
        self.environment_dropdown, self.custom_url = env.dropdown, env.custom_url
        self.production_badge, self.token_input = env.badge, env.token
        self.test_connection_button = env.test_button
        self.upload, self.path_input, self.load_button = src.upload, src.path, src.load_button
        self.sample_button = src.sample_button
        self.sheet_dropdown, self.column_dropdowns = src.sheet, src.columns
        self.validate_button, self.send_partial_orders = val.button, val.send_partial
        self.suggestions_button = val.suggestions_button
        self.validation_summary, self.invalid_rows = val.summary, val.invalid_rows
        self.fix_panel = val.fixes
        self.max_per_minute, self.workers = pre.max_per_minute, pre.workers
        self.retry_without_missing, self.preview_button = pre.retry_without_missing, pre.button
        self.preview_summary, self.sample_payloads = pre.summary, pre.payloads
        self.preview_grid = pre.grid
        self.force, self.send_button, self.stop_button = run.force, run.send_button, run.stop_button
        self.confirm_input, self.yes_button, self.cancel_button = (
            run.confirm,
            run.yes_button,
            run.cancel_button,
        )
        self.progress, self.counts, self.eta = run.progress, run.counts, run.eta
        self.results_summary, self.results_grid = out.summary, out.grid
        self.outcome_chart = out.chart
        self.report_link, self.errors_link = out.report_link, out.errors_link
        self.success_link = out.success_link
        self.retry_button, self.include_not_found = out.retry_button, out.include_not_found
        self.unfinished_runs, self.refresh_runs_button = out.unfinished, out.refresh_button
        self.resume_button = out.resume_button
        self.resume_stopped_button = run.resume_button
        self.undo_button, self.run_history = (
            self.undo_panel.this_run_button,
            self.undo_panel.history,
        )
        self.undo_picked_button, self.undo_grid = (
            self.undo_panel.history_button,
            self.undo_panel.grid,
        )
        self.undo_summary = self.undo_panel.summary

    def _notes(self) -> dict[str, w.HTML]:
        env, src, val = self.environment_panel, self.source_panel, self.validate_panel
        pre, run, out = self.preview_panel, self.run_panel, self.results_panel
        return {
            "environment": env.note,
            "source": src.note,
            "validate": val.note,
            "preview": pre.note,
            "send": run.note,
            "retry": out.retry_note,
            "resume": out.resume_note,
            "undo": self.undo_panel.note,
        }

    def _wire(self) -> None:
        on = self._guarded
        self.test_connection_button.on_click(lambda _b: on(self._test_connection, "environment")())
        self.validate_button.on_click(lambda _b: on(self._validate, "validate")())
        self.suggestions_button.on_click(lambda _b: on(self._toggle_suggestions, "validate")())
        self.preview_button.on_click(lambda _b: on(self._preview, "preview")())
        self.send_button.on_click(lambda _b: on(self._ask_send, "send")())
        self.yes_button.on_click(lambda _b: on(self._yes, "send")())
        self.cancel_button.on_click(lambda _b: on(self._cancel, "send")())
        self.stop_button.on_click(lambda _b: on(self.stop, "send")())
        self.retry_button.on_click(lambda _b: on(self._ask_retry, "retry")())
        self.resume_button.on_click(lambda _b: on(self._ask_resume_picked, "resume")())
        self.resume_stopped_button.on_click(lambda _b: on(self._ask_resume_current, "send")())
        self.refresh_runs_button.on_click(lambda _b: on(self._refresh_runs, "resume")())
        self.undo_button.on_click(lambda _b: on(self._ask_undo_current, "undo")())
        self.undo_picked_button.on_click(lambda _b: on(self._ask_undo_picked, "undo")())
        self.environment_dropdown.observe(self._environment_changed, names="value")
        self.custom_url.observe(self._environment_changed, names="value")
        self.send_partial_orders.observe(lambda _c: self._plan_changed(), names="value")
        for control in (
            self.max_per_minute,
            self.workers,
            self.retry_without_missing,
            self.force,
        ):
            control.observe(lambda _c: self._settings_changed(), names="value")

    def _guarded(self, action: Callable[[], object], where: str) -> Callable[[], None]:
        def run() -> None:
            try:
                action()
            except Exception as exc:
                self._error(exc, self._notes()[where])

        return run

    def _error(self, exc: BaseException, note: w.HTML) -> None:
        self._say(_render.one_line(exc), note, error=True)

    def _say(self, text: str, note: w.HTML, *, error: bool = False, good: bool = False) -> None:
        self.last_message = ("error: " if error else "") + text
        self.last_note = note
        if error:
            note.value = _render.error_line(text)
        else:
            note.value = _render.success_line(text) if good else _render.info_line(text)

    # ------------------------------------------------------------------ display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        env = self.environment_dropdown.value
        return f"<BulkUpdateApp environment={env!r} runs_dir={str(self.runs_dir)!r}>"

    # ------------------------------------------------------------------ what Send is for

    def _settings_key(self) -> Hashable:
        """Everything a preview depends on: any change to it disables Send again."""
        src = self.source_panel
        return (
            src.version,
            src.sheet.value,
            tuple(d.value for d in src.columns.values()),
            self.environment_dropdown.value,
            self.custom_url.value,
            self.max_per_minute.value,
            self.workers.value,
            self.retry_without_missing.value,
            self.send_partial_orders.value,
            self.force.value,
            self.fix_panel.version,
            self._take_suggestions,
        )

    @property
    def send_ready(self) -> bool:
        """Whether the preview on screen is of the current file and settings."""
        return (
            self._previewed is not None
            and self._previewed == self._settings_key()
            and self.preview is not None
            and self.preview.requests > 0
        )

    def _settings_changed(self) -> None:
        if self._previewed is not None and self._previewed != self._settings_key():
            self._previewed = None
            self.preview = None
            self.preview_panel.clear()
            self._say(
                "The file or settings changed since the preview: press Preview again.",
                self.preview_panel.note,
            )
        self.run_panel.close_question()
        self._confirmed = None
        self.run_panel.allow_send(
            self.send_ready and not self.running, "" if self.send_ready else _PREVIEW_FIRST
        )

    def _plan_changed(self) -> None:
        self.plan = None
        self.checked = None
        self._settings_changed()

    def _input_changed(self) -> None:
        """A file, sheet or column mapping changed: read it again at the next step."""
        self._raw = None
        self._take_suggestions = False
        self.validate_panel.clear()
        self._plan_changed()

    def _file_loaded(self) -> None:
        """A new file: the last run's progress and results leave the screen."""
        if self.running:
            return  # the run goes on; its results still show when it ends
        self.run_panel.reset()
        self.results_panel.clear()
        self.undo_panel.clear()
        self.results, self.run_id = None, None
        for note in self._notes().values():
            if note is not self.source_panel.note:
                note.value = ""

    def _environment_changed(self, _change: object) -> None:
        self.run_panel.show_environment(self._selected_or_none())
        self._settings_changed()

    def _selected_or_none(self) -> Environment | None:
        try:
            return self.environment_panel.selected()
        except ConfigError:
            return None

    # ------------------------------------------------------------------ steps 1-4

    def _test_connection(self) -> None:
        env = self.environment_panel.selected()
        client = self._connect(env).client
        po = self._first_po()
        if po:
            try:
                order = client.get_order(po)
            except NotFoundError:
                self._say(
                    f"Connected to {client.host}: it answered, and has no order {po} "
                    "(the first PO of your sheet).",
                    self.environment_panel.note,
                    good=True,
                )
                return
            items = order.get("lineItems") or []
            statuses = sorted({str(i.get("workflowStatus", "")) for i in items} - {""})
            self._say(
                f"Connected to {client.host}: order {po} found, {len(items)} line items"
                + (f" ({', '.join(statuses)})" if statuses else "")
                + ".",
                self.environment_panel.note,
                good=True,
            )
            return
        since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        found = client.search_orders(since, [s.value for s in WorkflowStatus])
        self._say(
            f"Connected to {client.host}: {len(found):,} orders changed in the last day.",
            self.environment_panel.note,
            good=True,
        )

    def _first_po(self) -> str | None:
        if self.checked is not None:
            valid = self.checked.loc[self.checked[VALID].astype(bool), PO]
            return str(valid.iloc[0]) if len(valid) else None
        if self.source_panel.loaded:
            try:
                rows = self._read()
            except Exception:
                return None
            pos = [p for p in rows[PO].astype(str).str.strip().tolist() if p]
            return pos[0] if pos else None
        return None

    def _read(self) -> pd.DataFrame:
        if self._raw is None:
            self._raw = self.source_panel.read()
        return self._raw

    def _checked_rows(self) -> pd.DataFrame:
        """The rows as read, corrected in the grid, validated (suggestions taken if asked)."""
        checked = validate_updates(self.fix_panel.apply(self._read()), aliases=self._aliases)
        if self._take_suggestions:
            checked = apply_suggestions(checked, aliases=self._aliases)
        return checked

    def _show_checked(self, checked: pd.DataFrame, plan: Plan) -> None:
        self.plan, self.checked = plan, checked
        headers = self.source_panel.headers()
        self.validate_panel.show(plan, headers)
        hints = status_suggestions(checked, aliases=self._aliases)
        self.validate_panel.show_suggestions(
            hints.loc[hints["suggestion"] != ""], taken=self._take_suggestions
        )

    def _toggle_suggestions(self) -> None:
        """Take every suggested status (the sheet's spelling is kept), or stop taking them."""
        if self.checked is None:
            raise ConfigError("press Validate first")
        self._take_suggestions = not self._take_suggestions
        plan = self._validate()
        if self._take_suggestions:
            taken = int((plan.rows[ORIGINAL_STATUS].astype(str) != "").sum())
            self._say(
                f"Took the suggested status on {taken:,} row{'s' if taken != 1 else ''} "
                "(their own spelling stays in "
                f"the report). {plan.summary()['requests']:,} requests to send.",
                self.validate_panel.note,
                good=True,
            )
        else:
            self._say("Back to the sheet's own spellings.", self.validate_panel.note)

    def _validate(self) -> Plan:
        checked = self._checked_rows()
        plan = plan_updates(checked, send_partial_orders=bool(self.send_partial_orders.value))
        self._show_checked(checked, plan)
        self.fix_panel.show(self._read(), checked, self.source_panel.headers())
        s = plan.summary()
        self._say(
            f"{s['valid_rows']:,} of {s['rows']:,} rows valid; {s['requests']:,} requests to send.",
            self.validate_panel.note,
        )
        return plan

    def _fixed(self) -> None:
        """An edit in the fix grid: validate again (the grid stays as it is)."""
        checked = self._checked_rows()
        plan = plan_updates(checked, send_partial_orders=bool(self.send_partial_orders.value))
        self._show_checked(checked, plan)
        self.fix_panel.update_problems(checked)
        s = plan.summary()
        self._say(
            f"Checked again: {s['valid_rows']:,} of {s['rows']:,} rows valid; "
            f"{s['requests']:,} requests to send.",
            self.validate_panel.note,
        )
        self._settings_changed()

    def _preview(self) -> None:
        plan = self.plan if self.plan is not None else self._validate()
        env = self.environment_panel.selected()
        options = self.preview_panel.options()
        client = self._client_for_preview(env)
        recording = Recording(runs_dir=self.runs_dir, force=bool(self.force.value))
        preview = build_send_preview(plan, client, options, recording=recording)
        host = client.host if client is not None else (env.host or env.name)
        if preview.stopped is not None:  # e.g. a refused token: nothing is known, nothing sent
            self.preview, self._previewed = None, None
            self.preview_panel.clear()
            self.run_panel.allow_send(False, _PREVIEW_FIRST)
            self._say(
                f"Could not read what {host} holds, so nothing can be previewed or sent: "
                f"{preview.stopped.message}",
                self.preview_panel.note,
                error=True,
            )
            return
        self.preview_panel.show(preview, f"{host} ({env.name})", self.source_panel.label, plan)
        self.preview, self._previewed = preview, self._settings_key()
        self.run_panel.close_question()
        if preview.requests == 0:
            self.run_panel.allow_send(False, "nothing to send")
            why = (
                "every order already holds its new status, or is held back"
                if preview.read_back
                else "no order has only valid rows"
            )
            self._say(f"Nothing to send: {why}.", self.preview_panel.note)
            return
        self.run_panel.allow_send(not self.running)
        self._say(
            f"Preview ready: {preview.requests:,} requests. Send is enabled.",
            self.preview_panel.note,
            good=True,
        )

    def _client_for_preview(self, env: Environment) -> Any:
        """The client to preview with; None for a real environment without a token yet."""
        if not env.is_sandbox and not self._has_token():
            return None
        return self._connect(env).client

    def _has_token(self) -> bool:
        return bool(self._environ.get(TOKEN_VARIABLE) or self.environment_panel.typed_token())

    # ------------------------------------------------------------------ step 5

    def _ask_send(self) -> None:
        self._idle_or_raise()
        if not self.send_ready or self.preview is None:
            raise ConfigError(
                "load a sheet first, then Preview"
                if not self.source_panel.loaded
                else _PREVIEW_FIRST
            )
        env = self.environment_panel.selected()
        preview = self.preview
        if not preview.read_back and self._has_token():
            raise ConfigError(
                "press Preview again: with the token, the preview reads what Spectrum holds "
                "and sends only what changes"
            )
        connection = self._connect(env)  # a real environment needs its token by now
        self._ask(send_question(preview, connection.client.host, env.name), env, self._send)

    def _ask(self, question: str, env: Environment, action: Callable[[], None]) -> None:
        warning = (
            f"<br><b style='color:#b00020'>{env.name} is PRODUCTION: real orders change. "
            f"Type {env.name!r} below to confirm.</b>"
            if env.production
            else ""
        )
        self.run_panel.ask(f'<div class="spectrum-question">{question}{warning}</div>', env)
        self._confirmed = action
        self._say("Check the numbers, then press “Yes, send”.", self.run_panel.note)

    def _yes(self) -> None:
        action = self._confirmed
        if action is None or not self.run_panel.asking:
            raise ConfigError("nothing to confirm: press Send first")
        self._idle_or_raise()
        self.run_panel.check_confirmation(self.environment_panel.selected())
        self._confirmed = None
        self.run_panel.close_question()
        action()

    def _cancel(self) -> None:
        self._confirmed = None
        self.run_panel.close_question()
        self._say("Not sent.", self.run_panel.note)

    def _send(self) -> None:
        if not self.send_ready or self.preview is None:
            raise ConfigError(_PREVIEW_FIRST)
        env = self.environment_panel.selected()
        preview = self.preview
        options = preview.options
        name, digest = source_identity(self.source_panel.source())
        recording = Recording(
            runs_dir=self.runs_dir,
            force=bool(self.force.value),
            source_name=name,
            source_hash=digest,
        )
        connection = self._connect(env)
        self._pending_from = self._sent_from_now()

        def work(stop: threading.Event, observer: WidgetProgress) -> pd.DataFrame:
            # Exactly the preview on screen: nothing is read or planned again.
            return send_plan(
                preview,
                connection.client,
                options,
                recording=recording,
                progress=False,
                stop=stop,
                observers=[observer],
            )

        self._previewed = None  # another send needs another preview
        self.preview_panel.note.value = _render.info_line(
            "Sent as previewed. Preview again to send anything more."
        )
        self._start(f"Sending {preview.requests:,} requests to {connection.client.host}", work)

    def _sent_from_now(self) -> _SentFrom | None:
        try:
            raw = self.fix_panel.apply(self._read(), leave_out=False)
        except Exception:
            return None
        left_out = sorted(r for r, f in self.fix_panel.fixes if f == LEFT_OUT)
        return _SentFrom(raw, self.source_panel.headers(), self.source_panel.header, left_out)

    def _ask_retry(self) -> None:
        self._idle_or_raise()
        if self.run_id is None or self.results is None:
            raise ConfigError("no run to retry yet: send one first")
        env = self._environment_of_run(self.run_id)
        include = bool(self.include_not_found.value)
        bad = [Outcome.FAILED.value] + ([Outcome.NOT_FOUND.value] if include else [])
        count = int(self.results[OUTCOME].isin(bad).sum())
        host = self._host_of_run(self.run_id)
        eta = self.preview_panel.options().eta_seconds(count)
        self._ask(
            f"Retry run {self.run_id}: send <b>{count:,}</b> orders again to <b>{host}</b> "
            f"({env.name}): about <b>{_render.duration(eta)}</b>?",
            env,
            self._retry,
        )

    def _retry(self) -> None:
        if self.run_id is None:
            raise ConfigError("no run to retry yet: send one first")
        run_id = self.run_id
        self._pending_from = self._sent_from.get(run_id)
        self._start_on_run(
            run_id,
            retry_failed,
            "Retrying the failures of run {run}",
            include_not_found=bool(self.include_not_found.value),
        )

    def _ask_resume_picked(self) -> None:
        run_id = self.results_panel.selected_run()
        if run_id is None:
            raise ConfigError("no unfinished run picked: press Refresh, then pick one")
        self._ask_resume(run_id)

    def _ask_resume_current(self) -> None:
        if self.run_id is None:
            raise ConfigError("no stopped run on screen")
        self._ask_resume(self.run_id)

    def _ask_resume(self, run_id: int) -> None:
        self._idle_or_raise()
        env = self._environment_of_run(run_id)
        names = [value for _label, value in self.environment_dropdown.options]
        if self.environment_dropdown.value != env.name and env.name in names:
            self.environment_panel.select(env.name)  # the run's own environment
        with Journal.existing(self.runs_dir) as journal:
            record = journal.load_run(run_id)
        pending = int((record.results[OUTCOME] == Outcome.PENDING.value).sum())
        eta = self.preview_panel.options().eta_seconds(pending)
        self._ask(
            f"Resume run {run_id} ({record.meta['source_name']}): send its <b>{pending:,}</b> "
            f"pending orders to <b>{record.meta['host']}</b> ({env.name}), about "
            f"<b>{_render.duration(eta)}</b>?",
            env,
            lambda: self._resume(run_id),
        )

    def _resume(self, run_id: int) -> None:
        self._pending_from = self._sent_from.get(run_id)
        with Journal.existing(self.runs_dir) as journal:
            record = journal.load_run(run_id)
        # The orders the run sends (not those it set aside) that earlier sessions settled.
        sent = record.results[PO].isin(record.plan.orders[PO])
        settled = record.results.loc[sent, OUTCOME].value_counts()
        self._start_on_run(
            run_id,
            resume_run,
            "Resuming run {run} on {env}",
            earlier={str(k): int(v) for k, v in settled.items()},
        )

    # ------------------------------------------------------------------ undo

    def _undoable(self, results: pd.DataFrame) -> bool:
        """A finished run (nothing pending) that changed something can be undone."""
        outcomes = results[OUTCOME]
        changed = outcomes.isin([Outcome.UPDATED.value, Outcome.PARTIAL.value]).any()
        return bool(changed) and not (outcomes == Outcome.PENDING.value).any()

    def _ask_undo_current(self) -> None:
        if self.run_id is None:
            raise ConfigError("no run on screen: send one, or pick an earlier run below")
        self._ask_undo(self.run_id)

    def _ask_undo_picked(self) -> None:
        run_id = self.undo_panel.selected_run()
        if run_id is None:
            raise ConfigError("no earlier run picked")
        self._ask_undo(run_id)

    def _ask_undo(self, run_id: int) -> None:
        """Read what undoing ``run_id`` would do, show it, then ask like a send."""
        self._idle_or_raise()
        env = self._environment_of_run(run_id)
        names = [value for _label, value in self.environment_dropdown.options]
        if self.environment_dropdown.value != env.name and env.name in names:
            self.environment_panel.select(env.name)  # the run's own environment
        client = self._connect(env, run_id=run_id).client
        dry = undo_run(run_id, client, runs_dir=self.runs_dir, dry_run=True, progress=False)
        with Journal.existing(self.runs_dir) as journal:
            record = journal.load_run(run_id)
        restore = self.undo_panel.show_preview(run_id, undo_table(record, dry), client.host)
        orders = int((dry[OUTCOME] == Outcome.DRY_RUN.value).sum())
        if not orders:
            self._say(
                f"Nothing to undo for run {run_id}: every line item is as before, or left "
                "alone (see the table).",
                self.undo_panel.note,
            )
            return
        eta = self.preview_panel.options().eta_seconds(orders)
        self._ask(
            f"Undo run {run_id}: set <b>{restore:,}</b> line items in <b>{orders:,}</b> orders "
            f"back to what they were before it, on <b>{client.host}</b> ({env.name}): "
            f"<b>{orders:,}</b> requests, about <b>{_render.duration(eta)}</b>? Line items "
            "changed since the run are left alone (see the table under Undo).",
            env,
            lambda: self._undo(run_id),
        )
        self._say("Check what it restores, then press “Yes, send” in step 5.", self.undo_panel.note)

    def _undo(self, run_id: int) -> None:
        self._pending_from = None
        self._start_on_run(run_id, undo_run, "Undoing run {run} on {env}")

    def _host_of_run(self, run_id: int) -> str:
        with Journal.existing(self.runs_dir) as journal:
            return str(journal.load_run(run_id).meta["host"])

    def _environment_of_run(self, run_id: int) -> Environment:
        """The environment a run was sent to (found by its host), whatever is selected."""
        host = self._host_of_run(run_id)
        current = self._selected_or_none()
        if current is not None and not current.is_sandbox and current.host == host:
            return current
        name = self.environment_panel.find(host)
        if name is not None:
            return self.environment_panel.environment(name)
        if host.rpartition(":")[0] in _LOOPBACK:
            return self.environment_panel.environment(SANDBOX)
        raise ConfigError(
            f"run {run_id} was sent to {host}, which is not in your environments: pick "
            f"“custom URL…” and type https://{host}"
        )

    def _start_on_run(
        self,
        run_id: int,
        action: Callable[..., pd.DataFrame],
        what: str,
        *,
        earlier: Mapping[str, int] | None = None,
        **options: Any,
    ) -> None:
        """Run ``action(run_id, client, ...)`` (resume, retry or undo a journaled run) in
        the background, on the run's own environment at the pace on screen.

        ``what`` is the message, with ``{run}`` and ``{env}``; ``earlier`` as :meth:`_start`.
        """
        env = self._environment_of_run(run_id)
        connection = self._connect(env, run_id=run_id)
        pace = self._pace()

        def work(stop: threading.Event, observer: WidgetProgress) -> pd.DataFrame:
            return action(
                run_id,
                connection.client,
                runs_dir=self.runs_dir,
                progress=False,
                stop=stop,
                observers=[observer],
                **options,
                **pace,
            )

        self._start(what.format(run=run_id, env=env.name), work, earlier)

    def _pace(self) -> dict[str, Any]:
        options = self.preview_panel.options()
        return {"max_per_minute": options.max_per_minute, "workers": options.workers}

    def _idle_or_raise(self) -> None:
        if self.running:
            raise ConfigError("a run is going: wait for it, or press Stop")

    def _connect(self, env: Environment, *, run_id: int | None = None) -> Connection:
        """The client for ``env``, reused while the environment stays the same.

        For the sandbox and a journaled run, the sandbox listens on the port the run was
        sent to, so a run from before a kernel restart can be resumed.
        """
        port = self._sandbox_port_of(run_id) if env.is_sandbox and run_id is not None else 0
        current = self._connection
        if current is not None:
            same = current.environment.name == env.name and (
                env.is_sandbox or current.client.base_url == env.base_url
            )
            if same and (not port or current.sandbox is None or current.sandbox.port == port):
                return current
            current.close()
            self._connection = None
        token = None
        try:
            if not env.is_sandbox:
                token = self._environ.get(TOKEN_VARIABLE) or self.environment_panel.typed_token()
                if not token:
                    raise ConfigError(f"no API token for {env.name}: type it in step 1")
            store = self.runs_dir / "sandbox" / "orders.sqlite3"
            if env.is_sandbox:
                store.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._connection = connect(
                    env,
                    token,
                    sandbox_store=store,
                    sandbox_settings=self._sandbox_settings,
                    sandbox_port=port,
                )
            except OSError as exc:
                raise ConfigError(
                    f"cannot start the sandbox on port {port or 'any'}: {exc.strerror or exc}"
                ) from None
        finally:
            self.token_input.value = ""  # never left in widget state, whatever happened
        return self._connection

    def _sandbox_port_of(self, run_id: int) -> int:
        name, _, port = self._host_of_run(run_id).rpartition(":")
        return int(port) if name in _LOOPBACK and port.isdigit() else 0

    def _start(self, what: str, work: Work, earlier: Mapping[str, int] | None = None) -> None:
        """Run ``work`` in the background; ``earlier``: a resumed run's settled outcomes."""
        observer = WidgetProgress(self.run_panel, earlier)
        self._observer = observer
        self.run_panel.reset()
        self.results_panel.show_files(None, None, None, clear=True)  # no stale files
        self.run_panel.set_running(True)
        self.retry_button.disabled = self.resume_button.disabled = True
        self.undo_button.disabled = True
        self._say(f"{what}… (Stop ends it gracefully)", self.run_panel.note)
        self._background = BackgroundRun(
            lambda stop: work(stop, observer), on_done=self._finished
        ).start()

    @property
    def sandbox(self) -> SandboxServer | None:
        """The bundled sandbox while the app uses it (for rehearsals: its settings, store)."""
        return self._connection.sandbox if self._connection is not None else None

    @property
    def running(self) -> bool:
        """Whether a run is going on in the background."""
        return self._background is not None and self._background.running

    def stop(self) -> None:
        """Stop the run gracefully: in-flight requests finish, the rest stay pending."""
        if not self.running or self._background is None:
            raise ConfigError("no run is going")
        self._background.stop()
        if self._observer is not None:
            self._observer.stopping = True
        self._say(
            "Stopping: requests under way finish; the rest stay pending.", self.run_panel.note
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background run; True when none is going any more."""
        if self._background is None:
            return True
        return self._background.wait(timeout)

    # ------------------------------------------------------------------ step 6

    def _finished(self, results: pd.DataFrame | None, error: BaseException | None) -> None:
        """Runs in the background thread when the run ends, however it ended."""
        note = self.run_panel.note
        try:
            if results is not None:
                self._show_results(results)
            if error is not None:
                prefix = "stopped: " if isinstance(error, RunStoppedError) else ""
                self._say(prefix + _render.one_line(error), note, error=True)
        except Exception as exc:
            self._error(exc, note)
        finally:
            self.run_panel.set_running(False)
            if self.results is not None and (self.results[OUTCOME] == Outcome.PENDING.value).any():
                self.run_panel.resume_button.disabled = False
            self._guarded(self._refresh_runs, "resume")()
            if self.results is not None:
                bad = self.results[OUTCOME].isin([Outcome.FAILED.value, Outcome.NOT_FOUND.value])
                self.retry_button.disabled = not bool(bad.any()) or self.run_id is None
                self.undo_button.disabled = not self._undoable(self.results)
                if error is None and results is not None and "undo_of" in results.attrs:
                    self.undo_panel.show_done(results)
            self.run_panel.allow_send(self.send_ready, "" if self.send_ready else _PREVIEW_FIRST)

    def _show_results(self, results: pd.DataFrame) -> None:
        run_id = results.attrs.get("run_id")
        note = self.run_panel.note
        if run_id is None:  # e.g. a retry with no failures: no run was made
            self._say("Nothing to send: no order qualified, so no run was made.", note)
            return
        self.results, self.run_id = results, int(run_id)
        if self._pending_from is not None:
            self._sent_from.setdefault(int(run_id), self._pending_from)
            self._pending_from = None
        undo_of = results.attrs.get("undo_of")
        title = f"Run {run_id}" + (f" (undo of run {undo_of})" if undo_of is not None else "")
        self.results_panel.show(results, title)
        self._write_files(int(run_id), results)  # the files first: then the run is "done"
        pending = int((results[OUTCOME] == Outcome.PENDING.value).sum())
        if pending:
            self._say(f"Run {run_id} stopped with {pending:,} orders pending: Resume it.", note)
        else:
            self._say(f"Run {run_id} finished: {_render.counts_text(results)}.", note, good=True)

    def _write_files(self, run_id: int, results: pd.DataFrame) -> None:
        """The report (the corrections come with the run), the error and success files."""
        folder = self.runs_dir / "reports"
        with Journal.existing(self.runs_dir) as journal:
            record = journal.load_run(run_id)
        report = write_report(record, folder / f"run-{run_id}-report.xlsx")  # read once
        lines = line_results(results, record.plan)
        sent_from = self._sent_from.get(run_id)
        if sent_from is not None:  # the cells as the sheet had them, in its column order
            files = handoff_rows(
                lines,
                results,
                original=sent_from.raw,
                headers=sent_from.headers,
                order=sent_from.header,
                left_out=sent_from.left_out,
            )
        else:  # a run from another kernel: its rows and headers as the journal kept them
            files = handoff_rows(lines, results, headers=record.lines.attrs.get(HEADERS, {}))
        error_file = (
            write_workbook(folder / f"run-{run_id}-errors.xlsx", {"Errors": files.errors})
            if len(files.errors)
            else None
        )
        success_file = (
            write_workbook(folder / f"run-{run_id}-succeeded.xlsx", {"Succeeded": files.successes})
            if len(files.successes)
            else None
        )
        self.results_panel.show_files(report, error_file, success_file)

    @property
    def corrections(self) -> pd.DataFrame:
        """The corrections made in the fix grid so far: ``row, column, original, corrected``."""
        return self.fix_panel.corrections()

    def _refresh_runs(self) -> None:
        if not (self.runs_dir / JOURNAL_FILE).is_file():
            self.results_panel.show_unfinished([])
            return
        try:
            with Journal.existing(self.runs_dir) as journal:
                runs = journal.runs()
        except JournalError as exc:
            self.results_panel.show_unfinished([])
            self._error(exc, self.results_panel.resume_note)
            return
        self.results_panel.show_unfinished(unfinished_options(runs))
        self.undo_panel.show_history(history_options(runs))

    # ------------------------------------------------------------------ life cycle

    def close(self) -> None:
        """Stop a run going on (waiting for in-flight requests), stop the sandbox, close."""
        if self.running and self._background is not None:
            self._background.stop()
            self._background.wait(_CLOSE_WAIT_S)
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.widget.close()


_PREVIEW_FIRST: Final = "press Preview first: Send is enabled once the preview shows this file"


def _sample_sheet() -> Path | None:
    try:
        sample = sample_data_dir() / "status_updates.xlsx"
    except FileNotFoundError:
        return None
    return sample if sample.is_file() else None


def _environments(
    explicit: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    problems: list[BaseException],
) -> tuple[dict[str, Environment], StatusAliases]:
    """The team's environments and status aliases (the built-in ones, after a problem)."""
    path, required = environments_file(explicit, environ)
    try:
        envs = load_environments(path, missing_ok=not required)
    except ConfigError as exc:
        problems.append(exc)
        envs = load_environments(None)
    try:
        aliases = load_status_aliases(path, missing_ok=not required)
    except ConfigError as exc:
        problems.append(exc)
        aliases = load_status_aliases(None)
    return envs, aliases
