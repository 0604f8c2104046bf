"""Read Spectrum's current state in bulk, and compare it with what a sheet wants.

* :mod:`~spectrum_tools.readback.answers`: order answers read defensively (pure);
* :mod:`~spectrum_tools.readback.changes`: current -> wanted per line item, and what to do
  with each order (pure);
* :mod:`~spectrum_tools.readback.reader`: the bulk read (searches, then GETs) on the paced
  runner.
"""

from spectrum_tools.readback.answers import OrderState, parse_order, search_windows
from spectrum_tools.readback.changes import (
    Change,
    Decision,
    Seen,
    current_frame,
    line_changes,
    order_decisions,
)
from spectrum_tools.readback.reader import DEFAULT_LOOK_BACK, Reading, read_current, read_orders

__all__ = [
    "DEFAULT_LOOK_BACK",
    "Change",
    "Decision",
    "OrderState",
    "Reading",
    "Seen",
    "current_frame",
    "line_changes",
    "order_decisions",
    "parse_order",
    "read_current",
    "read_orders",
    "search_windows",
]
