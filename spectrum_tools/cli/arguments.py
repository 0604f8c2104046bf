"""Argument definitions the subcommands share: the parser class, the sheet and
environment options, and the check of an output path.

Light on purpose: building the parser (and ``--help``) imports only this, the leaf
:mod:`spectrum_tools.errors` and the standard library; a command's own modules are
imported when it runs (see :mod:`spectrum_tools.cli.entry`).

I/O: :func:`check_output` creates the output's folder.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TypeAlias

from spectrum_tools.errors import ConfigError

__all__ = [
    "Parser",
    "Subparsers",
    "UsageError",
    "add_environment_args",
    "add_handoff_args",
    "add_pace_args",
    "add_sheet_args",
    "check_output",
    "runs_with",
]


class UsageError(Exception):
    """argparse complained; the message is already one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
"""What a subcommand's ``register`` adds its parser to."""


def runs_with(p: argparse.ArgumentParser, target: str) -> None:
    """Name the function that runs ``p``'s command, as ``"module:function"``.

    The module is imported only when that command runs, so defining the arguments
    never loads the HTTP, retry, server or Jupyter stacks.
    """
    p.set_defaults(command_target=target)


def check_output(path: Path, option: str = "output") -> None:
    """Refuse an --output (--errors, --successes) that cannot be written, before any
    request goes out."""
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ConfigError(f"{path}: --{option} must end in .csv or .xlsx")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the folder {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK) or path.is_dir():
        raise ConfigError(f"{path}: cannot write there")


def add_sheet_args(p: argparse.ArgumentParser, *, environments: bool = False) -> None:
    """--sheet, the column overrides and --apply-suggestions (validate, send)."""
    p.add_argument("--sheet", help="workbook sheet (default: the first with the columns)")
    p.add_argument("--po-column", metavar="HEADER", help="the purchase order number column")
    p.add_argument(
        "--id-column", metavar="HEADER", help="the recipe set id column (recipeSetReadableId)"
    )
    p.add_argument("--status-column", metavar="HEADER", help="the new workflow status column")
    p.add_argument(
        "--apply-suggestions",
        action="store_true",
        help="take the suggested status for unknown spellings (the sheet's is kept in "
        "original_status)",
    )
    if environments:  # send has them already, with --env
        p.add_argument(
            "--environments",
            type=Path,
            metavar="FILE",
            help="environments file, for the team's status aliases "
            "(default: SPECTRUM_ENVIRONMENTS or ./spectrum-environments.toml)",
        )


def add_handoff_args(p: argparse.ArgumentParser) -> None:
    """--errors FILE and --successes FILE: the files an analyst hands on (send, report)."""
    p.add_argument(
        "--errors",
        type=Path,
        metavar="FILE",
        help="write the rows that did not go through (.xlsx or .csv), ready to fix and send",
    )
    p.add_argument(
        "--successes", type=Path, metavar="FILE", help="write the rows that went through"
    )


def add_pace_args(
    p: argparse.ArgumentParser, *, noun: str = "request", of_run: bool = False
) -> None:
    """--max-per-minute and --workers; ``of_run``: they default to the run's own pace."""
    if of_run:
        p.add_argument("--max-per-minute", type=float, help=f"{noun} pace (default: the run's)")
        p.add_argument("--workers", type=int, help=f"{noun}s in flight (default: the run's)")
        return
    p.add_argument(
        "--max-per-minute",
        type=float,
        default=100.0,
        help=f"{noun} pace (default 100: Spectrum's documented safe level)",
    )
    p.add_argument("--workers", type=int, default=4, help=f"{noun}s in flight (default 4)")


def add_environment_args(p: argparse.ArgumentParser, what: str = "the environment") -> None:
    """--base-url, or --env NAME from the team's environments file (the same as the app's)."""
    p.add_argument(
        "--base-url",
        help=f"{what}, e.g. https://your-spectrum-host (default: SPECTRUM_BASE_URL)",
    )
    p.add_argument(
        "--env",
        metavar="NAME",
        help="a named environment from the environments file, or 'sandbox' (a bundled one)",
    )
    p.add_argument(
        "--environments",
        type=Path,
        metavar="FILE",
        help="environments file (default: SPECTRUM_ENVIRONMENTS or ./spectrum-environments.toml)",
    )
