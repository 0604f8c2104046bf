"""Sheets, clients and views of a running sandbox, for tests that send through it.

Everything goes through the real sandbox over HTTP; these only build sheets and clients and
read the sandbox's request log and store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.runs import send_updates
from spectrum_tools.sandbox import SandboxServer

__all__ = [
    "FAST",
    "NEW",
    "SANDBOX_TOKEN",
    "MakeSandbox",
    "by_po",
    "client_for",
    "order_numbers",
    "send",
    "sheet",
    "status_requests",
    "store_statuses",
]

SANDBOX_TOKEN = "sandbox-test-token"
NEW = "delivered"  # no line item of the sample store has this status yet
FAST = 6000.0  # requests per minute: pacing out of the way

MakeSandbox = Callable[..., SandboxServer]


def client_for(sb: SandboxServer, token: str | None = None) -> SpectrumClient:
    """A client of ``sb`` with its token (or ``token``)."""
    return SpectrumClient(sb.base_url, token=sb.token if token is None else token)


def order_numbers(sb: SandboxServer, n: int, skip: int = 0) -> list[str]:
    """``n`` purchase orders of the sandbox's store, in store order."""
    pos = list(dict.fromkeys(sb.store.line_statuses()["purchaseOrderNumber"]))
    return pos[skip : skip + n]


def sheet(sb: SandboxServer, pos: list[str], status: str = NEW) -> pd.DataFrame:
    """An analyst's sheet setting every line item of ``pos`` to ``status``, in ``pos`` order."""
    frame = sb.store.line_statuses()
    frame = frame[frame["purchaseOrderNumber"].isin(pos)]
    frame = frame.set_index("purchaseOrderNumber").loc[pos].reset_index()
    return pd.DataFrame(
        {
            "purchaseOrderNumber": frame["purchaseOrderNumber"],
            "recipeSetReadableId": frame["recipeSetId"],
            "workflowStatus": status,
        }
    ).reset_index(drop=True)


def store_statuses(sb: SandboxServer) -> dict[tuple[str, str], str]:
    """(purchase order, line item) -> status, as the sandbox's store holds them."""
    frame = sb.store.line_statuses()
    return {
        (po, rid): status
        for po, rid, status in frame[
            ["purchaseOrderNumber", "recipeSetId", "workflowStatus"]
        ].itertuples(index=False, name=None)
    }


def status_requests(sb: SandboxServer, po: str | None = None) -> list[dict[str, Any]]:
    """The status updates the sandbox received (oldest first), optionally for one order."""
    return [
        dict(r)
        for r in sb.requests()
        if r["endpoint"] == "order-status" and (po is None or r["purchaseOrderNumber"] == po)
    ]


def by_po(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """A results frame as purchase order -> row (each order must have exactly one row)."""
    assert frame["purchaseOrderNumber"].is_unique
    return {str(r["purchaseOrderNumber"]): r for r in frame.to_dict("records")}


def send(source: Any, sb: SandboxServer, runs_dir: Path, **options: Any) -> pd.DataFrame:
    """send_updates to ``sb`` at a high pace, no progress bar, journal in ``runs_dir``."""
    options.setdefault("progress", False)
    options.setdefault("max_per_minute", FAST)
    return send_updates(source, client_for(sb), runs_dir=runs_dir, **options)
