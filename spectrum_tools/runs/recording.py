"""How a run is recorded: the :class:`Recording` settings and what the journal keeps about
its input (name and sha256).

I/O: reads an input file to hash it.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import pandas as pd

from spectrum_tools.planning import Plan

__all__ = [
    "DEFAULT_RECORDING",
    "Recording",
    "Source",
    "plan_hash",
    "replayable",
    "source_identity",
]

Source = str | Path | IO[bytes] | pd.DataFrame | Plan


@dataclass(frozen=True)
class Recording:
    """How a new run is recorded in the journal.

    Attributes
    ----------
    runs_dir
        The runs folder (default ``./spectrum-runs``).
    force
        Send everything, even line items an earlier run already applied on this environment.
    source_name, source_hash
        What is recorded about the input (default: "Plan" and a hash of the payloads).
    parent_run
        The run this one retries (or undoes).
    kind
        What the run is: ``"send"``, ``"retry"`` or ``"undo"`` (kept with its options).
    """

    runs_dir: str | Path | None = None
    force: bool = False
    source_name: str | None = None
    source_hash: str | None = None
    parent_run: int | None = None
    kind: str = "send"


# --------------------------------------------------------------------------- sources


def source_identity(source: Source) -> tuple[str, str | None]:
    """The name and sha256 the journal records for an input.

    Returns
    -------
    (name, sha256)
        A path: its file name and the hash of its bytes. An upload: its name (or
        "upload") and, for bytes in memory (``io.BytesIO``), their hash; None for a
        stream (it is hashed as it is read). A DataFrame or a Plan: "DataFrame" or "Plan"
        and None (the plan's payloads are hashed when the run is recorded).

    Examples
    --------
    >>> source_identity(pd.DataFrame())
    ('DataFrame', None)
    """
    if isinstance(source, Plan):
        return "Plan", None
    if isinstance(source, pd.DataFrame):
        return "DataFrame", None
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            return path.name, hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return path.name, None  # reading it fails next, with the reader's clear message
    name = Path(str(getattr(source, "name", "") or "upload")).name
    if isinstance(source, io.BytesIO):
        return name, hashlib.sha256(source.getvalue()).hexdigest()
    return name, None


def replayable(upload: IO[bytes]) -> tuple[IO[bytes], str]:
    """An upload read once: a fresh stream of its bytes, and their sha256."""
    data = upload.read()
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    replay = io.BytesIO(raw)
    replay.name = str(getattr(upload, "name", "") or "upload")
    return replay, hashlib.sha256(raw).hexdigest()


def plan_hash(plan: Plan) -> str:
    digest = hashlib.sha256()
    for request in plan.requests():
        digest.update(json.dumps(request.body, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


DEFAULT_RECORDING: Final = Recording()
"""Record in ``./spectrum-runs``, skip what earlier runs applied."""
