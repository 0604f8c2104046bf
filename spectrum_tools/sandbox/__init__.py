"""A local Spectrum-compatible server, for tests, demos and rehearsals of a bulk run.

It speaks the documented order-status API (``/api/order/status``, order read-back and
search) from a SQLite store seeded with the bundled ``sample_data/spectrum_orders.csv``, and
injects the faults a bulk client must survive: latency, throttling (403), 500s, 404/409,
401/403 for a bad token, a missing ``workflowStatus`` and alternative field names in read
answers. Its search honours last-modification windows and the 31-day limit; orders seeded
without a time get a deterministic age (:func:`seed_age`). What it plays, and why:
docs/spectrum-api.md.

Modules: ``vendor`` (Spectrum's vocabulary and exact texts, pure), ``settings`` (fault
switches, pure), ``store`` (SQLite state), ``app`` (Starlette routes), ``server`` (uvicorn
in a thread, or in the foreground). Importing this package starts and opens nothing.

Examples
--------
>>> from spectrum_tools.sandbox import SandboxServer, SandboxSettings
>>> with SandboxServer(settings=SandboxSettings(rate_limit=None)) as sandbox:
...     sandbox.base_url.startswith("http://127.0.0.1:")
True
"""

from spectrum_tools.sandbox.app import TOKEN_HEADER, RequestLog, RequestRecord, create_app
from spectrum_tools.sandbox.server import (
    SandboxServer,
    default_store_path,
    sample_data_dir,
    serve,
)
from spectrum_tools.sandbox.settings import SandboxSettings
from spectrum_tools.sandbox.store import SandboxStore, seed_age
from spectrum_tools.sandbox.vendor import WORKFLOW_STATUSES

__all__ = [
    "TOKEN_HEADER",
    "WORKFLOW_STATUSES",
    "RequestLog",
    "RequestRecord",
    "SandboxServer",
    "SandboxSettings",
    "SandboxStore",
    "create_app",
    "default_store_path",
    "sample_data_dir",
    "seed_age",
    "serve",
]
