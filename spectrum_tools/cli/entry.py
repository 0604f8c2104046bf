"""The ``spectrum-tools`` command line. Thin: parse arguments, call the library, print.

I/O: reads files named on the command line, the environment (``SPECTRUM_API_TOKEN``,
``SPECTRUM_BASE_URL``) and stdin for confirmation; writes stdout, stderr and output files.

Exit codes: 0 all good; 1 some rows or orders did not make it; 2 usage errors,
unreadable input, or a run stopped by 401/403; 130 after Ctrl-C. A
:class:`~spectrum_tools.errors.SpectrumError` becomes one line on stderr; tracebacks are
for bugs.

The arguments are defined in :mod:`.commands`, which names the function that runs each
command; that function's module is imported here, when the command runs, so a command
loads only what it uses (``validate`` never imports the HTTP, retry, server or Jupyter
stacks). This is for start-up time, not to dodge an import cycle: every module still
imports its dependencies at the top.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

from spectrum_tools.cli import commands
from spectrum_tools.cli.arguments import Parser, UsageError, check_output
from spectrum_tools.cli.console import EXIT_INTERRUPTED, EXIT_USAGE, err
from spectrum_tools.errors import RunStoppedError, SpectrumError

__all__ = ["command_function", "main"]

_WRITES_TABLE = frozenset({"validate", "send", "resume", "retry", "undo"})

Command = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="spectrum-tools",
        description="Bulk workflow-status updates for Spectrum orders.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands.register(sub)
    return parser


def command_function(target: str) -> Command:
    """The function a ``"module:function"`` target names, importing its module now."""
    module, _, name = target.partition(":")
    function: Command = getattr(importlib.import_module(module), name)
    return function


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring)."""
    try:
        args = _parser().parse_args(argv)
        if args.command in _WRITES_TABLE:
            for option in ("output", "errors", "successes"):  # before anything is sent
                if getattr(args, option, None) is not None:
                    check_output(getattr(args, option), option)
        code: int = command_function(args.command_target)(args)
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
