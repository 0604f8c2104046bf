"""spectrum-tools: bulk workflow-status updates for Spectrum orders, from pandas and Jupyter.

The pipeline, one module per stage::

    read_updates -> validate_updates -> plan_updates -> send_updates -> results
         (sheets)      (validation)       (planning)      (runs -> engine -> client)
                                                           |
                      journal (every run) -> resume_run / retry_failed / write_report
                      reconcile (sheet vs Spectrum, or vs past runs)

The layers, bottom up (every import points down; ``lint-imports`` checks it): leaves
(errors, schema, statuses, version), sheets, validation, planning, results, engine,
journal, runs, then report and reconcile; the adapters (cli, widgets, sandbox, connect)
sit on top.

The local Spectrum-compatible server lives in :mod:`spectrum_tools.sandbox`, the
JupyterLab app in :mod:`spectrum_tools.widgets` (needs the ``jupyter`` extra).

Only the names in ``__all__`` are public; everything else may change without notice.
"""

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.environments import Environment, load_environments
from spectrum_tools.errors import (
    APIError,
    AuthenticationError,
    ColumnError,
    ConfigError,
    ForbiddenError,
    InsecureURLError,
    JournalError,
    NotFoundError,
    RateLimitedError,
    RunStoppedError,
    ServerError,
    SpectrumError,
    SpreadsheetError,
    TransportError,
    UnexpectedResponseError,
)
from spectrum_tools.journal import Journal, RunRecord
from spectrum_tools.planning import Plan, Request, plan_updates
from spectrum_tools.reconcile import (
    reconcile,
    reconcile_with_runs,
    reconciliation_summary,
    write_reconciliation,
)
from spectrum_tools.report import export_csv, write_report
from spectrum_tools.results import line_results
from spectrum_tools.runs import resume_run, retry_failed, send_updates
from spectrum_tools.schema import Outcome
from spectrum_tools.sheets import list_sheets, read_header, read_updates, write_table
from spectrum_tools.statuses import WorkflowStatus, normalise_status
from spectrum_tools.validation import problem_counts, validate_updates
from spectrum_tools.version import __version__

__all__ = [
    "APIError",
    "AuthenticationError",
    "ColumnError",
    "ConfigError",
    "Environment",
    "ForbiddenError",
    "InsecureURLError",
    "Journal",
    "JournalError",
    "NotFoundError",
    "Outcome",
    "Plan",
    "RateLimitedError",
    "Request",
    "RunRecord",
    "RunStoppedError",
    "SendOptions",
    "ServerError",
    "SpectrumClient",
    "SpectrumError",
    "SpreadsheetError",
    "TransportError",
    "UnexpectedResponseError",
    "WorkflowStatus",
    "__version__",
    "export_csv",
    "line_results",
    "list_sheets",
    "load_environments",
    "normalise_status",
    "plan_updates",
    "problem_counts",
    "read_header",
    "read_updates",
    "reconcile",
    "reconcile_with_runs",
    "reconciliation_summary",
    "resume_run",
    "retry_failed",
    "send_updates",
    "validate_updates",
    "write_reconciliation",
    "write_report",
    "write_table",
]
