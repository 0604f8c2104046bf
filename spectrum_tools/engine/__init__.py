"""The run engine: pacing, retries, workers, and one paced runner for writes and reads.

I/O: the network through :class:`~spectrum_tools.client.SpectrumClient` (the only HTTP),
and threads. Modules, one idea each:

* :mod:`~spectrum_tools.engine.options`: :class:`SendOptions` (pace, workers, retries);
* :mod:`~spectrum_tools.engine.pacer`: :class:`Pacer`, evenly spaced slots with AIMD;
* :mod:`~spectrum_tools.engine.retry`: :func:`retry_policy` and the :class:`Attempts` tally;
* :mod:`~spectrum_tools.engine.pool`: :func:`run_workers`, a Ctrl-C-safe thread pool;
* :mod:`~spectrum_tools.engine.runner`: :class:`PacedRun`, the one runner;
* :mod:`~spectrum_tools.engine.sending`: :func:`run_plan`, status writes on the runner;
* :mod:`~spectrum_tools.engine.progress`: progress bars.

Why a run stopped is a :class:`~spectrum_tools.schema.StopReason` inside a
:class:`~spectrum_tools.results.RunStop` (they live below the engine, because observers
receive them).
"""

from spectrum_tools.engine.options import SendOptions, format_duration
from spectrum_tools.engine.pacer import Pacer
from spectrum_tools.engine.pool import run_workers
from spectrum_tools.engine.progress import ProgressBar, SendProgress
from spectrum_tools.engine.retry import Attempts, retry_policy
from spectrum_tools.engine.runner import PacedRun, RunKind, Stopped
from spectrum_tools.engine.sending import SEND_RUN, error_text, run_plan

__all__ = [
    "SEND_RUN",
    "Attempts",
    "PacedRun",
    "Pacer",
    "ProgressBar",
    "RunKind",
    "SendOptions",
    "SendProgress",
    "Stopped",
    "error_text",
    "format_duration",
    "retry_policy",
    "run_plan",
    "run_workers",
]
