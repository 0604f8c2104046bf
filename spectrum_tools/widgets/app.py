"""BulkUpdateApp: one bulk status run in a notebook, step by step, over the library.

I/O: reads the environments file and the chosen sheet; sends through the library (a
background thread), writes the run journal, report and error file into the runs folder;
starts the bundled sandbox on demand. Reads ``SPECTRUM_API_TOKEN`` and
``SPECTRUM_ENVIRONMENTS`` (this is an edge, like the CLI).

Every step calls the library: :func:`~spectrum_tools.read_updates`,
:func:`~spectrum_tools.validate_updates`, :func:`~spectrum_tools.plan_updates`,
:func:`~spectrum_tools.runs.send_plan` (the very plan the preview showed),
:func:`~spectrum_tools.runs.resume_run`,
:func:`~spectrum_tools.runs.retry_failed`, :func:`~spectrum_tools.report.write_report`.
The widgets only gather arguments and show answers. Errors show as one line in the app.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
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
)
from spectrum_tools.errors import ConfigError, JournalError, RunStoppedError
from spectrum_tools.journal import DEFAULT_RUNS_DIR, JOURNAL_FILE, Journal
from spectrum_tools.planning import Plan, plan_updates
from spectrum_tools.report import export_csv, write_report
from spectrum_tools.runs import Recording, resume_run, retry_failed, send_plan, source_identity
from spectrum_tools.sandbox import SandboxServer, SandboxSettings
from spectrum_tools.schema import OUTCOME, Outcome
from spectrum_tools.validation import validate_updates
from spectrum_tools.widgets import _render
from spectrum_tools.widgets.checks import PreviewPanel, ValidatePanel
from spectrum_tools.widgets.environment import EnvironmentPanel
from spectrum_tools.widgets.results import ResultsPanel, unfinished_options
from spectrum_tools.widgets.run import BackgroundRun, RunPanel, WidgetProgress
from spectrum_tools.widgets.source import SourcePanel

__all__ = ["BulkUpdateApp"]

TOKEN_VARIABLE: Final = "SPECTRUM_API_TOKEN"  # noqa: S105 - a variable name, not a secret
_CLOSE_WAIT_S: Final = 30.0

Work = Callable[[threading.Event, WidgetProgress], pd.DataFrame]


class BulkUpdateApp:
    """An ipywidgets app for one bulk workflow-status run.

    Display it as the last expression of a cell. Steps: 1 environment and token, 2 input
    sheet and column mapping, 3 validate, 4 preview, 5 send (in the background, with Stop),
    6 results, downloads, retry failures and resume unfinished runs.

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
        A sheet to load at once (the path field is filled in).
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
    last_message
        The message line as plain text (``error: ...`` for an error), for scripts.

    Examples
    --------
    In a notebook, the last line of a cell displays the app:

    >>> app = BulkUpdateApp(runs_dir=getfixture("tmp_path"), environ={})
    >>> app.environment_dropdown.value, app.send_button.description
    ('sandbox', 'Send')
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
        self.plan: Plan | None = None
        self.results: pd.DataFrame | None = None
        self.run_id: int | None = None
        self.last_message = ""
        self.message = w.HTML()

        problems: list[BaseException] = []
        envs = _environments(environments_file, self._environ, problems)
        if environment not in envs:
            problems.append(ConfigError(f"no environment {environment!r}; using the sandbox"))
            environment = SANDBOX
        self.environment_panel = EnvironmentPanel(
            envs, environment, token_in_environment=bool(self._environ.get(TOKEN_VARIABLE))
        )
        self.source_panel = SourcePanel(on_change=self._input_changed, on_error=self._error)
        self.validate_panel = ValidatePanel()
        self.preview_panel = PreviewPanel(max_per_minute=max_per_minute, workers=workers)
        self.run_panel = RunPanel()
        self.results_panel = ResultsPanel()
        self._expose()
        self._wire()
        self.widget = w.VBox(
            [
                w.HTML("<h2>Spectrum bulk status update</h2>"),
                self.message,
                self.environment_panel.box,
                self.source_panel.box,
                self.validate_panel.box,
                self.preview_panel.box,
                self.run_panel.box,
                self.results_panel.box,
            ],
            layout=w.Layout(max_width="1100px"),
        )
        self.run_panel.show_environment(self._selected_or_none())
        if input_path is not None:
            self.path_input.value = str(input_path)
            self._guarded(lambda: self.source_panel.load_path(Path(input_path)))()
        self._guarded(self._refresh_runs)()
        for problem in problems:
            self._error(problem)

    # ------------------------------------------------------------------ wiring

    def _expose(self) -> None:
        """Flat attributes for every control, so tests and notebooks can drive the app."""
        env, src, val = self.environment_panel, self.source_panel, self.validate_panel
        pre, run, out = self.preview_panel, self.run_panel, self.results_panel
        self.environment_dropdown, self.custom_url = env.dropdown, env.custom_url
        self.production_badge, self.token_input = env.badge, env.token
        self.upload, self.path_input, self.load_button = src.upload, src.path, src.load_button
        self.sheet_dropdown, self.column_dropdowns = src.sheet, src.columns
        self.validate_button, self.send_partial_orders = val.button, val.send_partial
        self.validation_summary, self.invalid_rows = val.summary, val.invalid_rows
        self.max_per_minute, self.workers = pre.max_per_minute, pre.workers
        self.retry_without_missing, self.preview_button = pre.retry_without_missing, pre.button
        self.preview_summary, self.sample_payloads = pre.summary, pre.payloads
        self.confirm_input, self.force, self.send_button = run.confirm, run.force, run.send_button
        self.stop_button, self.progress = run.stop_button, run.progress
        self.counts, self.eta = run.counts, run.eta
        self.results_summary, self.results_table = out.summary, out.table
        self.report_link, self.errors_link = out.report_link, out.errors_link
        self.retry_button, self.include_not_found = out.retry_button, out.include_not_found
        self.unfinished_runs, self.refresh_runs_button = out.unfinished, out.refresh_button
        self.resume_button = out.resume_button

    def _wire(self) -> None:
        self.validate_button.on_click(lambda _b: self._guarded(self._validate)())
        self.preview_button.on_click(lambda _b: self._guarded(self._preview)())
        self.send_button.on_click(lambda _b: self._guarded(self._send)())
        self.stop_button.on_click(lambda _b: self._guarded(self.stop)())
        self.retry_button.on_click(lambda _b: self._guarded(self._retry)())
        self.resume_button.on_click(lambda _b: self._guarded(self._resume)())
        self.refresh_runs_button.on_click(lambda _b: self._guarded(self._refresh_runs)())
        self.environment_dropdown.observe(self._environment_changed, names="value")
        self.custom_url.observe(self._environment_changed, names="value")
        self.send_partial_orders.observe(lambda _c: self._input_changed(), names="value")
        self.max_per_minute.observe(self._pace_changed, names="value")
        self.workers.observe(self._pace_changed, names="value")

    def _guarded(self, action: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                action()
            except Exception as exc:
                self._error(exc)

        return run

    def _error(self, exc: BaseException) -> None:
        self._say(_render.one_line(exc), error=True)

    def _info(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.last_message = ("error: " if error else "") + text
        self.message.value = _render.error_line(text) if error else _render.info_line(text)

    # ------------------------------------------------------------------ display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        env = self.environment_dropdown.value
        return f"<BulkUpdateApp environment={env!r} runs_dir={str(self.runs_dir)!r}>"

    # ------------------------------------------------------------------ steps 2-4

    def _input_changed(self) -> None:
        self.plan = None
        self.validate_panel.clear()
        self.preview_panel.clear()

    def _environment_changed(self, _change: object) -> None:
        self.preview_panel.clear()
        self.run_panel.confirm.value = ""
        self.run_panel.show_environment(self._selected_or_none())

    def _pace_changed(self, _change: object) -> None:
        if self.plan is not None and self.preview_panel.summary.value:
            self._guarded(self._preview)()

    def _selected_or_none(self) -> Environment | None:
        try:
            return self.environment_panel.selected()
        except ConfigError:
            return None

    def _validate(self) -> Plan:
        rows = self.source_panel.read()
        plan = plan_updates(
            validate_updates(rows), send_partial_orders=bool(self.send_partial_orders.value)
        )
        self.plan = plan
        self.validate_panel.show(plan)
        s = plan.summary()
        self._info(
            f"{self.source_panel.label}: {s['valid_rows']:,} of {s['rows']:,} rows valid; "
            f"{s['requests']:,} requests to send."
        )
        return plan

    def _preview(self) -> None:
        plan = self.plan if self.plan is not None else self._validate()
        env = self.environment_panel.selected()
        self.preview_panel.show(plan, env.host or "the local sandbox", self.source_panel.label)

    # ------------------------------------------------------------------ step 5

    def _send(self) -> None:
        self._idle_or_raise()
        env = self.environment_panel.selected()
        plan = self.plan if self.plan is not None else self._validate()
        self.run_panel.check_confirmation(env)
        if plan.request_count == 0:
            raise ConfigError("nothing to send: no order has only valid rows (see step 3)")
        options = self.preview_panel.options()
        name, digest = source_identity(self.source_panel.source())
        recording = Recording(
            runs_dir=self.runs_dir,
            force=bool(self.force.value),
            source_name=name,
            source_hash=digest,
        )
        connection = self._connect(env)

        def work(stop: threading.Event, observer: WidgetProgress) -> pd.DataFrame:
            # The plan validated and previewed above, not the file read and planned again.
            return send_plan(
                plan,
                connection.client,
                options,
                recording=recording,
                progress=False,
                stop=stop,
                observers=[observer],
            )

        self._start(f"Sending {plan.request_count:,} requests to {connection.client.host}", work)

    def _retry(self) -> None:
        self._idle_or_raise()
        if self.run_id is None:
            raise ConfigError("no run to retry yet: send one first")
        run_id, env = self.run_id, self.environment_panel.selected()
        self.run_panel.check_confirmation(env)  # a retry sends to production too
        include = bool(self.include_not_found.value)
        connection = self._connect(env, run_id=run_id)
        pace = self._pace()

        def work(stop: threading.Event, observer: WidgetProgress) -> pd.DataFrame:
            return retry_failed(
                run_id,
                connection.client,
                include_not_found=include,
                runs_dir=self.runs_dir,
                progress=False,
                stop=stop,
                observers=[observer],
                **pace,
            )

        self._start(f"Retrying the failures of run {run_id}", work)

    def _resume(self) -> None:
        self._idle_or_raise()
        run_id = self.results_panel.selected_run()
        if run_id is None:
            raise ConfigError("no unfinished run picked: press Refresh, then pick one")
        env = self.environment_panel.selected()
        self.run_panel.check_confirmation(env)  # resuming sends to production too
        connection = self._connect(env, run_id=run_id)
        pace = self._pace()

        def work(stop: threading.Event, observer: WidgetProgress) -> pd.DataFrame:
            return resume_run(
                run_id,
                connection.client,
                runs_dir=self.runs_dir,
                progress=False,
                stop=stop,
                observers=[observer],
                **pace,
            )

        self._start(f"Resuming run {run_id}", work)

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
                    raise ConfigError(
                        f"no API token for {env.name}: type it in step 1 "
                        f"(or set {TOKEN_VARIABLE} before starting Jupyter)"
                    )
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
        with Journal.existing(self.runs_dir) as journal:
            host = str(journal.load_run(run_id).meta["host"])
        name, _, port = host.rpartition(":")
        return int(port) if name in ("127.0.0.1", "localhost") and port.isdigit() else 0

    def _start(self, what: str, work: Work) -> None:
        observer = WidgetProgress(self.run_panel)
        self._observer = observer
        self.run_panel.progress.value = 0
        self.run_panel.counts.value = ""
        self.run_panel.eta.value = ""
        self.run_panel.set_running(True)
        self.retry_button.disabled = self.resume_button.disabled = True
        self._info(f"{what}… (the notebook stays usable; Stop ends it gracefully)")
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
        self._info("Stopping: in-flight requests finish; the rest stay pending in the journal.")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background run; True when none is going any more."""
        if self._background is None:
            return True
        return self._background.wait(timeout)

    # ------------------------------------------------------------------ step 6

    def _finished(self, results: pd.DataFrame | None, error: BaseException | None) -> None:
        """Runs in the background thread when the run ends, however it ended."""
        try:
            if results is not None:
                self._show_results(results)
            if error is not None:
                prefix = "stopped: " if isinstance(error, RunStoppedError) else ""
                self._say(prefix + _render.one_line(error), error=True)
        except Exception as exc:
            self._error(exc)
        finally:
            self.run_panel.set_running(False)
            self._guarded(self._refresh_runs)()
            if self.results is not None:
                bad = self.results[OUTCOME].isin([Outcome.FAILED.value, Outcome.NOT_FOUND.value])
                self.retry_button.disabled = not bool(bad.any()) or self.run_id is None

    def _show_results(self, results: pd.DataFrame) -> None:
        run_id = results.attrs.get("run_id")
        if run_id is None:  # e.g. a retry with no failures: no run was made
            self._info("Nothing to send: no order qualified, so no run was made.")
            return
        self.results, self.run_id = results, int(run_id)
        self.results_panel.show(results, f"Run {run_id}")
        pending = int((results[OUTCOME] == Outcome.PENDING.value).sum())
        if pending:
            self._info(
                f"Run {run_id} stopped with {pending:,} orders pending: Resume it in step 6."
            )
        else:
            self._info(f"Run {run_id} finished: {_render.counts_text(results)}.")
        folder = self.runs_dir / "reports"
        report = write_report(
            int(run_id), folder / f"run-{run_id}-report.xlsx", runs_dir=self.runs_dir
        )
        written = export_csv(int(run_id), folder, runs_dir=self.runs_dir, prefix=f"run-{run_id}-")
        errors = next((p for p in written if p.name.endswith("lines.csv")), None)
        self.results_panel.show_files(report, errors)

    def _refresh_runs(self) -> None:
        if not (self.runs_dir / JOURNAL_FILE).is_file():
            self.results_panel.show_unfinished([])
            return
        try:
            with Journal.existing(self.runs_dir) as journal:
                runs = journal.runs()
        except JournalError as exc:
            self.results_panel.show_unfinished([])
            self._error(exc)
            return
        self.results_panel.show_unfinished(unfinished_options(runs))

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


def _environments(
    explicit: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    problems: list[BaseException],
) -> dict[str, Environment]:
    path, required = environments_file(explicit, environ)
    try:
        return load_environments(path, missing_ok=not required)
    except ConfigError as exc:
        problems.append(exc)
        return load_environments(None)
