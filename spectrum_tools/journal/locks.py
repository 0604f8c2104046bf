"""OS file locks on runs: held while a process sends a run, dropped by the kernel when the
process dies (``kill -9`` included), which is how a dead run is told from a live one.

I/O: ``locks/run-<id>.lock`` files in the runs folder.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Final

__all__ = ["PROBE_GRACE_S", "RunLock"]

PROBE_GRACE_S: Final = 1.0
"""How long taking a run's lock keeps trying while someone else has it (a probe)."""
_RETRY_S: Final = 0.005


class RunLock:
    """An exclusive OS lock on ``locks/run-<id>.lock``, held while a process sends a run.

    The kernel releases it when the process exits, however it exits (``kill -9``
    included), so "stored as running but nobody holds the lock" means the process died.
    Lock files are left in place: deleting one races with a process about to lock it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def acquire(self, wait_s: float = PROBE_GRACE_S) -> bool:
        """Take the lock; False when another holder still has it after ``wait_s`` seconds.

        :meth:`held` probes by taking the lock for a moment (``spectrum-tools runs`` does,
        for every run it lists), so a lock found taken is tried again for a short while:
        a probe lets go within microseconds, a process sending the run holds it for the run.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+b")
        give_up = time.monotonic() + wait_s
        while not _try_lock(handle):
            if time.monotonic() >= give_up:
                handle.close()
                return False
            time.sleep(_RETRY_S)
        self._handle = handle
        return True

    def release(self) -> None:
        """Let go of the lock (idempotent)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _unlock(handle)
            handle.close()

    @staticmethod
    def held(path: Path) -> bool:
        """Whether some process (this one included) holds the lock at ``path``."""
        if not path.exists():
            return False
        with path.open("a+b") as handle:
            if _try_lock(handle):
                _unlock(handle)
                return False
            return True


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        # flock (not lockf): two opens in one process conflict too, so a process can
        # also tell that one of its own runs is live.
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
