"""The ``spectrum-tools`` command line. Thin: parse arguments, call the library, print.

I/O: reads files named on the command line, the environment (``SPECTRUM_API_TOKEN``,
``SPECTRUM_BASE_URL``) and stdin for confirmation; writes stdout, stderr and output files.

Exit codes: 0 all good; 1 some rows or orders did not make it; 2 usage errors,
unreadable input, or a run stopped by 401/403; 130 after Ctrl-C. A
:class:`~spectrum_tools.errors.SpectrumError` becomes one line on stderr; tracebacks are
for bugs. One module per subcommand: :mod:`.validate`, :mod:`.send`, :mod:`.sandbox`
(and ``demo``), :mod:`.report` (and ``reconcile``), :mod:`.runs`, :mod:`.app`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from spectrum_tools.cli import app, report, runs, sandbox, send, undo, validate
from spectrum_tools.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    UsageError,
    check_output,
    err,
)
from spectrum_tools.errors import RunStoppedError, SpectrumError

__all__ = ["main"]

_WRITES_TABLE = frozenset({"validate", "send", "resume", "retry", "undo"})


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="spectrum-tools",
        description="Bulk workflow-status updates for Spectrum orders.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    for command in (validate, send, sandbox, report, runs, undo, app):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring)."""
    try:
        args = _parser().parse_args(argv)
        if args.command in _WRITES_TABLE:
            for option in ("output", "errors", "successes"):  # before anything is sent
                if getattr(args, option, None) is not None:
                    check_output(getattr(args, option), option)
        code: int = args.func(args)
        return code
    except UsageError as exc:
        err(str(exc))
        return EXIT_USAGE
    except RunStoppedError as exc:
        err(f"stopped: {exc}")
        return EXIT_USAGE
    except SpectrumError as exc:
        err(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # a disk full or a folder that vanished while writing
        err(f"error: {exc.filename or 'writing'}: {exc.strerror or exc}")
        return EXIT_USAGE
