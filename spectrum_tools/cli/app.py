"""``spectrum-tools app``: serve the bulk-update notebook as a web app (Voila, 127.0.0.1)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from spectrum_tools.cli.common import (
    EXIT_OK,
    check_port,
    out,
)
from spectrum_tools.environments import environments_file, load_environments
from spectrum_tools.errors import (
    ConfigError,
)
from spectrum_tools.widgets import notebooks_dir

__all__ = ["app_command"]


def app_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools app`` (arguments: :mod:`.commands`); return the exit code."""

    try:
        from voila.app import Voila
    except ModuleNotFoundError:
        raise ConfigError("the app needs Voila: pip install 'spectrum-tools[jupyter]'") from None
    try:
        notebook = notebooks_dir() / "bulk_update.ipynb"
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    check_port(args.port, "app")
    path, required = environments_file(args.environments, os.environ)
    load_environments(path, missing_ok=not required)  # a bad file fails here, in one line
    # The notebook's kernel runs in notebooks/ and reads these (it is an edge too).
    runs_dir = (args.runs_dir or Path("spectrum-runs")).resolve()
    os.environ["SPECTRUM_RUNS_DIR"] = str(runs_dir)
    if required or path.is_file():
        os.environ["SPECTRUM_ENVIRONMENTS"] = str(path.resolve())
    out(f"Bulk-update app on http://127.0.0.1:{args.port}/  (runs folder: {runs_dir})")
    out("Each browser tab gets its own kernel. Ctrl-C stops.")
    argv = [
        str(notebook),
        "--no-browser",
        f"--port={args.port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
    ]
    try:
        Voila.launch_instance(argv=argv)
    except SystemExit as exc:  # Voila exits 1 when the port is taken
        if exc.code:
            raise ConfigError(
                f"Voila could not serve on 127.0.0.1:{args.port} (port in use? pick another "
                "with --port)"
            ) from None
    return EXIT_OK
