"""Exit codes and one-line messages: what every subcommand prints with.

I/O: stdout, stderr. Light: imports nothing of the toolkit, so argument parsing and
``--help`` stay fast.
"""

from __future__ import annotations

import sys

__all__ = ["EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "err", "out"]

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def err(message: str) -> None:
    print(" ".join(message.split()), file=sys.stderr)


def out(message: str = "") -> None:
    print(message, flush=True)
