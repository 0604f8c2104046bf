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
They are loaded on first use (``import spectrum_tools`` alone imports none of the
toolkit's modules), so ``from spectrum_tools import read_updates`` never pays for the
HTTP, retry or server stacks.
"""

# Lazy loading, for start-up time only (issue 14): `spectrum-tools validate` and a notebook
# that only reads and validates must not import requests, tenacity or the sandbox server.
# This is not a dodged import cycle: nothing inside the package imports the package root
# (an import-linter contract says so), and every submodule imports its dependencies at
# the top. PEP 562: the module's __getattr__ imports a name's module when the name is
# first looked up and binds it here; type checkers and IDEs read the TYPE_CHECKING block.

import importlib
import sys
import types
import typing

if typing.TYPE_CHECKING:
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
    from spectrum_tools.readback import read_current
    from spectrum_tools.readback.preview import Preview
    from spectrum_tools.reconcile import (
        reconcile,
        reconcile_with_runs,
        reconciliation_summary,
        write_reconciliation,
    )
    from spectrum_tools.report import export_csv, write_report
    from spectrum_tools.results import line_results
    from spectrum_tools.runs import (
        Recording,
        preview_send,
        resume_run,
        retry_failed,
        send_plan,
        send_updates,
        undo_run,
    )
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
    "Preview",
    "RateLimitedError",
    "Recording",
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
    "preview_send",
    "problem_counts",
    "read_current",
    "read_header",
    "read_updates",
    "reconcile",
    "reconcile_with_runs",
    "reconciliation_summary",
    "resume_run",
    "retry_failed",
    "send_plan",
    "send_updates",
    "undo_run",
    "validate_updates",
    "write_reconciliation",
    "write_report",
    "write_table",
]

# Where each public name lives (the same modules as the TYPE_CHECKING imports above; a
# test checks that the three lists agree).
_SOURCES: dict[str, tuple[str, ...]] = {
    "client": ("SpectrumClient",),
    "engine": ("SendOptions",),
    "environments": ("Environment", "load_environments"),
    "errors": (
        "APIError",
        "AuthenticationError",
        "ColumnError",
        "ConfigError",
        "ForbiddenError",
        "InsecureURLError",
        "JournalError",
        "NotFoundError",
        "RateLimitedError",
        "RunStoppedError",
        "ServerError",
        "SpectrumError",
        "SpreadsheetError",
        "TransportError",
        "UnexpectedResponseError",
    ),
    "journal": ("Journal", "RunRecord"),
    "planning": ("Plan", "Request", "plan_updates"),
    "reconcile": (
        "reconcile",
        "reconcile_with_runs",
        "reconciliation_summary",
        "write_reconciliation",
    ),
    "report": ("export_csv", "write_report"),
    "results": ("line_results",),
    "readback": ("read_current",),
    "readback.preview": ("Preview",),
    "runs": (
        "Recording",
        "preview_send",
        "resume_run",
        "retry_failed",
        "send_plan",
        "send_updates",
        "undo_run",
    ),
    "schema": ("Outcome",),
    "sheets": ("list_sheets", "read_header", "read_updates", "write_table"),
    "statuses": ("WorkflowStatus", "normalise_status"),
    "validation": ("problem_counts", "validate_updates"),
    "version": ("__version__",),
}
_ORIGIN: dict[str, str] = {
    name: f"{__name__}.{module}" for module, names in _SOURCES.items() for name in names
}


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if not typing.TYPE_CHECKING:  # for mypy, unknown names stay errors, not `object`

    def __getattr__(name: str) -> object:
        module = _ORIGIN.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value


class _PackageRoot(types.ModuleType):
    """The package root's module type: a public name beats the submodule it shares.

    ``reconcile`` is both a public function and the submodule it comes from. When a
    submodule is first imported the import system binds it on its package
    (``spectrum_tools.reconcile = <module>``); with eager imports the function was bound
    after that and won. Here the submodule may load before the function is asked for,
    so the binding is dropped and ``spectrum_tools.reconcile`` stays the function, as it
    always was (``sys.modules`` still has the module).
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _ORIGIN and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _PackageRoot
