"""The ``spectrum-tools`` command line (entry point ``spectrum_tools.cli:main``).

One thin module per subcommand; see :mod:`spectrum_tools.cli.entry`.
"""

from spectrum_tools.cli.entry import main

__all__ = ["main"]
