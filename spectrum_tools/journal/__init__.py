"""The run journal (storage only): see :mod:`spectrum_tools.journal.journal`."""

from spectrum_tools.journal.journal import Journal
from spectrum_tools.journal.queries import RunRecord
from spectrum_tools.journal.recorder import RunRecorder
from spectrum_tools.journal.schema import DEFAULT_RUNS_DIR, JOURNAL_FILE

__all__ = ["DEFAULT_RUNS_DIR", "JOURNAL_FILE", "Journal", "RunRecord", "RunRecorder"]
