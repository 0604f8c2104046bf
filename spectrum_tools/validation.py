"""Validate and normalise update rows. Pure: no I/O, and the input frame is never mutated.

Every row gets ``valid`` (bool) and ``problem`` (text; empty for a clean valid row, a note
for a folded duplicate). All rules run on every row, so one pass reports every problem.

Vectorised throughout, on Arrow text: trimming, id checks and lengths are Arrow compute
kernels over the whole column, statuses are normalised once per distinct spelling, and
duplicates are found on integer codes (dictionary encoding), never by a Python loop over
rows; Python only writes the problem texts of the rows that have one. The line-item codes
are computed on a second thread beside the status and id checks (Arrow releases the GIL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spectrum_tools.cells import TEXT, arrow_text, text_array, text_series
from spectrum_tools.columnar import group_codes, rows_where
from spectrum_tools.errors import ColumnError, ConfigError
from spectrum_tools.schema import KEY_COLUMNS, LINE_ID, PO, PROBLEM, SOURCE_ROW, STATUS, VALID
from spectrum_tools.sheets import NUMBER_CELLS, SheetRows
from spectrum_tools.statuses import (
    StatusAliases,
    WorkflowStatus,
    normalise_status,
    status_aliases,
    suggest_status,
)

__all__ = [
    "IGNORED_ROWS",
    "MAX_ID_LENGTH",
    "ORIGINAL_STATUS",
    "Aliases",
    "apply_suggestions",
    "ignored_rows",
    "is_validated",
    "line_codes",
    "problem_counts",
    "problem_summary",
    "status_suggestions",
    "validate_updates",
]

IGNORED_ROWS: Final = "ignored_rows"
"""``attrs`` key of a validated frame: the footer rows left out, ``(source_row, text)``."""
ORIGINAL_STATUS: Final = "original_status"
"""The column :func:`apply_suggestions` adds: the status as the sheet spelled it."""

# Trailing rows an export or an analyst adds under the data: "Total", "rows: 295",
# "Grand total", "295 rows", "Count: 12", "End of report".
_FOOTER = re.compile(
    r"^\s*(?:(?:grand\s+|sub\s*)?totals?\b|(?:rows?|records?|lines?|count|sum|orders?)\s*[:=]"
    r"|\d[\d,.\s]*\s+(?:rows?|records?|lines?|orders?|items?)\s*$|end\s+of\s+(?:report|file|data))",
    re.IGNORECASE,
)
_COUNT = re.compile(r"^\s*\d[\d,. ]*\s*$")
_FOOTER_SCAN: Final = 10  # how many trailing rows may be footer rows

# The longest id of each kind validation accepts. The contract (docs/spectrum-api.md):
# recipeSetReadableId is Spectrum's 8-character readable id (e.g. "ABCD1234"; the order
# endpoint calls the same id recipeSetId), and purchase order numbers look like
# "HA-US-DEV00011101" (17 characters). Neither length is documented as a maximum, so the
# bounds are generous (8x and about 6x the real lengths): no real id comes near them, and a
# pasted paragraph or a 100,000-character cell is flagged instead of sent.
MAX_ID_LENGTH: dict[str, int] = {LINE_ID: 64, PO: 100}

# Marks a frame validate_updates returned in this process (pandas copies and slices of it
# keep the mark; a file, a pickle or a hand-made frame never has it). plan_updates trusts
# the valid column of such a frame only.
_STAMP = "spectrum_tools.validated"


class _ValidatedHere:
    """The stamp's value: one object per process, kept by pandas' copies of ``attrs``."""

    def __deepcopy__(self, memo: dict[int, object]) -> _ValidatedHere:
        return self

    def __copy__(self) -> _ValidatedHere:
        return self

    def __reduce__(self) -> tuple[type[object], tuple[()]]:
        return (object, ())  # unpickled, a frame is no longer "validated here"

    def __repr__(self) -> str:
        return "<validated in this process>"


_VALIDATED_HERE = _ValidatedHere()

# The line codes validate_updates computed, kept with its frame for plan_updates.
_LINES = "spectrum_tools.line_codes"


class _LineCodes:
    """The ``attrs`` value under ``_LINES``: each row's line-item code (see
    :func:`line_codes`), and the key columns (Arrow arrays) they were computed from.

    Shared, never copied (pandas deep-copies ``attrs`` on every operation); dropped when
    pickled. The codes hold only while the frame's key columns are those very arrays.
    """

    __slots__ = ("_codes", "_columns")

    def __init__(self, rows: pd.DataFrame, codes: np.ndarray) -> None:
        self._columns = tuple(arrow_text(rows[c]) for c in KEY_COLUMNS)
        self._codes = codes
        self._codes.setflags(write=False)

    def codes_for(self, rows: pd.DataFrame) -> np.ndarray | None:
        """The codes, if ``rows`` still has the columns they were computed from."""
        if len(rows) != len(self._codes) or not all(rows[c].dtype == TEXT for c in KEY_COLUMNS):
            return None
        same = all(
            arrow_text(rows[c]) is a for c, a in zip(KEY_COLUMNS, self._columns, strict=True)
        )
        return self._codes if same else None

    def __deepcopy__(self, memo: dict[int, object]) -> _LineCodes:
        return self

    def __copy__(self) -> _LineCodes:
        return self

    def __reduce__(self) -> tuple[type[object], tuple[()]]:
        return (object, ())

    def __repr__(self) -> str:
        return f"<line codes of {len(self._codes)} rows>"


def line_codes(rows: pd.DataFrame) -> np.ndarray:
    """Each row's line item as an int64 code: rows with the same order number and line-item
    id (as the cells are) share a code, numbered by first appearance; ``-1`` for a row
    whose order number, line-item id or status is blank (``""``).

    :func:`validate_updates` computes them as it folds duplicates and keeps them with the
    frame it returns; they are reused while that frame's order and line-item columns are
    the very arrays it made (a copy or a choice of columns keeps them; a filter, a sort or
    an edited cell makes new ones). Otherwise they are computed here.

    Examples
    --------
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1", "P2", "P1", "P1", "P2"],
    ...     "recipeSetReadableId": ["A", "A", "B", "A", "B"],
    ...     "workflowStatus": ["completed"] * 4 + [""]})
    >>> line_codes(rows).tolist(), line_codes(validate_updates(rows)).tolist()
    ([0, 1, 2, 0, -1], [0, 1, 2, 0, -1])
    """
    kept = rows.attrs.get(_LINES)
    codes = kept.codes_for(rows) if isinstance(kept, _LineCodes) else None
    if codes is None:
        keys = {c: text_array(rows[c]) for c in KEY_COLUMNS}
        complete = ~np.logical_or.reduce([_np(pc.equal(k, "")) for k in keys.values()])
        codes = _complete_line_codes(keys, complete)
    return codes


def _complete_line_codes(
    keys: Mapping[str, pa.Array | pa.ChunkedArray], complete: np.ndarray
) -> np.ndarray:
    """Line codes (see :func:`line_codes`) of the ``complete`` rows, -1 for the others."""
    if complete.all():
        return group_codes(keys[PO], keys[LINE_ID])
    codes = np.full(len(complete), -1, dtype=np.int64)
    if complete.any():
        present = pa.array(complete)
        codes[complete] = group_codes(keys[PO].filter(present), keys[LINE_ID].filter(present))
    return codes


def is_validated(rows: pd.DataFrame) -> bool:
    """Whether ``rows`` came from :func:`validate_updates` in this process.

    A ``valid`` column read from a file (``validate -o`` writes one) or built by hand does
    not count: its rows must be validated again.

    Examples
    --------
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1"], "recipeSetReadableId": ["A1"],
    ...                      "workflowStatus": ["completed"], "valid": ["False"]})
    >>> is_validated(rows), is_validated(validate_updates(rows))
    (False, True)
    """
    return rows.attrs.get(_STAMP) is _VALIDATED_HERE and rows[VALID].dtype == bool


# What Excel does to a long number it thinks is numeric: 12300000 shown as 1.23E+07.
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
# The same shape for Arrow's RE2, loosened to any number character (\p{N} holds every
# decimal digit Python's \d knows): it picks the few candidates _SCIENTIFIC then decides.
_MAYBE_SCIENTIFIC = r"^[+\-]?\p{N}+(?:[.,]\p{N}+)?[eE][+\-]?\p{N}+$"
# What str.strip() strips: every character for which str.isspace() is true (a test checks
# this against all of Unicode).
_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Characters str.strip() keeps but a spreadsheet shows as nothing: zero-width spaces and
# joiners, the soft hyphen, BOM, and the direction marks that come along with
# right-to-left text (all Unicode category Cf, which str.isprintable() rejects).
_INVISIBLE = (
    "\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)
# Whitespace, control or invisible characters inside an id never belong to a Spectrum id.
# As one RE2 character class of code points (Arrow's \s is ASCII whitespace only).
_BAD_SET = set(_WHITESPACE + _INVISIBLE + "\x7f") | set(map(chr, range(32)))
_BAD_CHARS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(_BAD_SET)) + "]"


Aliases = Mapping[str, str | WorkflowStatus]
"""A team's status spellings: spelling -> status (``{"shipped": "delivered"}``)."""


def validate_updates(df: pd.DataFrame, *, aliases: Aliases | None = None) -> pd.DataFrame:
    """Trim, normalise and check update rows; mark each row valid or say what is wrong.

    Rules, all applied to every row:

    * whitespace around every key cell is trimmed; fully blank rows are dropped;
    * footer rows under the data (``Total``, ``rows: 295``, a lone count) are left out
      and listed in ``attrs["ignored_rows"]`` (see :func:`ignored_rows`);
    * statuses are normalised to the API spelling (``In Progress`` -> ``in-progress``,
      ``canceled`` -> ``cancelled``, ``Complete`` -> ``completed``, and the team's own
      ``aliases``); an unknown status is invalid, with a suggestion;
    * an id cell the workbook stored as a number is noted (still valid: its leading
      zeros may be lost, and Spectrum would then not know the id);
    * a blank purchase order, line-item id or status is invalid;
    * an id that looks like Excel's scientific notation (``1.23E+07``) is invalid;
    * an id longer than any real Spectrum id (:data:`MAX_ID_LENGTH`) is invalid;
    * exact duplicates (order, line item and status) fold into the first: still valid,
      noted in ``problem``;
    * the same line item with two different statuses is a conflict: all its rows invalid.

    Parameters
    ----------
    df
        Rows as :func:`spectrum_tools.read_updates` returns them (at least the three API
        columns; ``source_row`` is added as position + 2 when absent).
    aliases
        A team's own status spellings (``shipped`` -> delivered), as
        :func:`spectrum_tools.environments.load_status_aliases` reads them. Default: the
        built-in spellings only.

    Returns
    -------
    pandas.DataFrame
        A new frame: the same columns, trimmed and normalised, plus ``valid`` and
        ``problem``. Row order is kept; blank rows are gone.

    Raises
    ------
    ColumnError
        One of the three API columns is absent.
    ConfigError
        An alias maps to something that is not a workflow status, or redefines one.

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "purchaseOrderNumber": ["PO1", "PO1", "PO2"],
    ...     "recipeSetReadableId": ["AAAA1111", "BBBB2222", "CCCC3333"],
    ...     "workflowStatus": ["In Progress", "shipped", "ON_HOLD"]})
    >>> out = validate_updates(rows)
    >>> out["workflowStatus"].tolist()
    ['in-progress', 'shipped', 'on-hold']
    >>> out["valid"].tolist()
    [True, False, True]
    >>> out.loc[1, "problem"]
    "workflowStatus 'shipped' is not a workflow status; did you mean 'delivered'?"
    """
    missing = [c for c in KEY_COLUMNS if c not in df.columns]
    if missing:
        raise ColumnError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}",
            file="DataFrame",
        )
    team = _checked(aliases)
    out = df.copy()
    if SOURCE_ROW not in out.columns:
        out[SOURCE_ROW] = np.arange(2, len(out) + 2, dtype="int64")
    keys = {col: _trimmed(out[col]) for col in KEY_COLUMNS}
    blank = {col: _np(pc.equal(keys[col], "")) for col in KEY_COLUMNS}
    extras = [c for c in out.columns if c not in (*KEY_COLUMNS, SOURCE_ROW, "source_sheet")]
    fully_blank = blank[PO] & blank[LINE_ID] & blank[STATUS]
    if extras and fully_blank.any():
        for col in extras:
            cells = out[col].array[fully_blank].to_numpy(dtype=object)
            fully_blank[fully_blank] = [
                not (isinstance(v, str) and v.strip()) and not _is_value(v) for v in cells
            ]
    footer, ignored = _footer_rows(out, keys, blank, fully_blank, extras)
    dropped = fully_blank | footer
    if dropped.any():
        kept = ~dropped
        for col in KEY_COLUMNS:  # replaced by the checked keys below: filter them once
            out[col] = text_series(keys[col], out.index)
        out = rows_where(out, kept)
        keys = {col: arrow_text(out[col]) for col in KEY_COLUMNS}
        blank = {col: mask[kept] for col, mask in blank.items()}
    out.attrs[IGNORED_ROWS] = ignored

    problems = _Problems(len(out))
    for col in KEY_COLUMNS:
        problems.add(blank[col], f"blank {col}")

    # Duplicates and conflicts are judged among rows whose three keys are present. Their
    # line codes (hashing every order number and id, the costliest step) are worked out on
    # a second thread while this one checks statuses and ids: Arrow's kernels release the
    # GIL, so on two cores both run at once.
    complete = ~(blank[PO] | blank[LINE_ID] | blank[STATUS])
    with ThreadPoolExecutor(max_workers=1) as pool:
        grouping = pool.submit(_complete_line_codes, dict(keys), complete)
        which, normal = _check_keys(out, keys, blank, problems, team)
        lines = grouping.result()

    for col in KEY_COLUMNS:
        out[col] = text_series(keys[col], out.index)
    out.attrs[_LINES] = _LineCodes(out, lines)  # plan_updates groups by them too
    if complete.any():
        # Line items by dense code (numbered by first appearance), statuses by the code of
        # their spelling's normal form: then everything below is plain numpy, no hashing.
        line = lines[complete]
        status_of = pd.factorize(np.asarray(normal, dtype=object))[0]
        status = status_of[which][complete]
        is_first = line > np.maximum.accumulate(np.concatenate([[-1], line[:-1]]))
        first_at = np.flatnonzero(is_first)  # first_at[c]: position of line c's first row
        # A line item is in conflict when any of its rows has another status than its first.
        differs = status != status[first_at][line]
        line_conflict = np.zeros(len(first_at), dtype=bool)
        line_conflict[line[differs]] = True
        conflict = np.zeros(len(out), dtype=bool)
        conflict[complete] = line_conflict[line]
        if conflict.any():
            texts = np.full(len(out), "", dtype=object)
            at = pa.array(np.flatnonzero(conflict))
            rows = pd.DataFrame(
                {col: keys[col].take(at).to_pylist() for col in KEY_COLUMNS}
                | {SOURCE_ROW: out[SOURCE_ROW].to_numpy()[conflict]}
            )
            texts[conflict] = _conflict_text(rows)
            problems.add_text(conflict, texts)
        # Any later row of a line item without conflict repeats its first row exactly.
        repeat = ~is_first & ~line_conflict[line]
        if repeat.any():
            first_row = out[SOURCE_ROW].to_numpy()[complete][first_at[line[repeat]]]
            duplicate = np.zeros(len(out), dtype=bool)
            duplicate[complete] = repeat
            notes = np.full(len(out), "", dtype=object)
            notes[duplicate] = [f"duplicate of row {r}, folded into it" for r in first_row.tolist()]
            problems.note(duplicate, notes)

    out[VALID] = ~problems.invalid
    out[PROBLEM] = text_series(problems.text(), out.index)
    out.attrs[_STAMP] = _VALIDATED_HERE
    return out


def _check_keys(
    out: pd.DataFrame,
    keys: dict[str, pa.Array | pa.ChunkedArray],
    blank: Mapping[str, np.ndarray],
    problems: _Problems,
    team: StatusAliases,
) -> tuple[np.ndarray, list[str]]:
    """Check every status and id; add what is wrong to ``problems``.

    ``keys[STATUS]`` is replaced by the statuses in the API's spelling. Returns each row's
    spelling code and, per code, its normal form (the API status, or the spelling as it
    is when it is not one).
    """
    # Statuses: each distinct spelling is normalised (and, if unknown, hinted at) once.
    which, distinct = pd.factorize(text_series(keys[STATUS]))
    spellings = [str(s) for s in distinct]
    statuses = [normalise_status(s, team) for s in spellings]
    unknown = np.array(
        [m is None and s != "" for s, m in zip(spellings, statuses, strict=True)], dtype=bool
    )
    if unknown.any():
        hints = np.array(
            [_status_hint(s, team) if u else "" for s, u in zip(spellings, unknown, strict=True)],
            dtype=object,
        )
        problems.add_text(unknown[which], hints[which])
    normal = [m.value if m is not None else s for s, m in zip(spellings, statuses, strict=True)]
    keys[STATUS] = pa.array(normal, pa.large_string()).take(pa.array(which))

    for col in (PO, LINE_ID):
        values = keys[col]
        sci = _np(pc.match_substring_regex(values, _MAYBE_SCIENTIFIC))
        if sci.any():  # confirm the few candidates with Python's own \d
            where = np.flatnonzero(sci)
            texts = values.take(pa.array(where)).to_pylist()
            sci[where] = [_SCIENTIFIC.fullmatch(t) is not None for t in texts]
        problems.add(
            sci,
            f"{col} looks like Excel scientific notation (Excel damaged the id: "
            "format the column as Text and re-export it)",
        )
        bad = (~sci) & _bad_characters(values)
        problems.add(bad, f"{col} contains spaces, control or invisible characters")
        limit = MAX_ID_LENGTH[col]
        long = _np(pc.greater(pc.utf8_length(values), limit))
        problems.add(long, f"{col} is longer than {limit} characters (no Spectrum id is)")
        numbers = _number_cells(out, col)
        problems.note(
            numbers & ~sci & ~blank[col],
            f"{col} stored as a number in Excel: leading zeros may be lost "
            "(format the column as Text if the id has any)",
        )
    return which, normal


def problem_counts(validated: pd.DataFrame) -> pd.Series:
    """Count invalid rows by kind of problem (the text before any quoted value).

    Notes on valid rows (folded duplicates, ids stored as numbers) are not counted here:
    :func:`problem_summary` has them.

    Examples
    --------
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["", "P"], "recipeSetReadableId": ["A", "B"],
    ...                      "workflowStatus": ["completed", "nope"]})
    >>> problem_counts(validate_updates(rows)).to_dict()
    {'blank purchaseOrderNumber': 1, 'unknown workflowStatus': 1}
    """
    table = problem_summary(validated)
    table = table.loc[table["severity"] == _INVALID]
    return pd.Series(table["rows"].to_numpy(), index=table["kind"].tolist(), name="rows")


_INVALID, _DUPLICATE, _WARNING = "invalid", "folded duplicate", "warning"


def problem_summary(validated: pd.DataFrame) -> pd.DataFrame:
    """Every problem and note of a validated frame, grouped by kind, most rows first.

    Returns
    -------
    pandas.DataFrame
        ``severity`` (``invalid``: the row is held back; ``folded duplicate``: the row
        repeats an earlier one and is sent once; ``warning``: sent, but check it),
        ``kind`` (e.g. ``unknown workflowStatus``), ``rows`` (how many rows have it) and
        ``example_rows`` (up to five sheet rows). Invalid kinds first.

    Examples
    --------
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P", "P", "P"],
    ...     "recipeSetReadableId": ["A", "A", "B"], "workflowStatus": ["completed"] * 2 + ["x"]})
    >>> problem_summary(validate_updates(rows))[["severity", "kind", "rows"]].values.tolist()
    [['invalid', 'unknown workflowStatus', 1], ['folded duplicate', 'duplicate row', 1]]
    """
    columns = ["severity", "kind", "rows", "example_rows"]
    has = validated[PROBLEM].astype(str) != ""
    if not has.any():
        return pd.DataFrame(columns=columns).astype({"rows": "int64"})
    parts = (
        validated.loc[has, [PROBLEM, SOURCE_ROW]]
        .assign(part=lambda f: f[PROBLEM].astype(str).str.split(r"; (?!did you mean)", regex=True))
        .explode("part")
    )
    severity, kind = _problem_kinds(parts["part"].astype(str))
    parts = parts.assign(severity=severity, kind=kind)
    parts = parts.drop_duplicates(["severity", "kind", SOURCE_ROW])
    grouped = parts.groupby(["severity", "kind"], sort=False)[SOURCE_ROW]
    table = grouped.agg(
        rows="size", example_rows=lambda r: ", ".join(str(int(v)) for v in r.head(5))
    ).reset_index()
    rank = {_INVALID: 0, _DUPLICATE: 1, _WARNING: 2}
    table["_rank"] = table["severity"].map(rank)
    table = table.sort_values(["_rank", "rows"], ascending=[True, False], kind="stable")
    return table[columns].reset_index(drop=True)


def _problem_kinds(texts: pd.Series) -> tuple[list[str], list[str]]:
    """(severities, kinds) of problem texts, as :func:`_problem_kind` gives them.

    A duplicate's note names its row, so nearly every one is distinct: those are told
    apart by their start, and :func:`_problem_kind` runs once per other distinct text.
    """
    duplicate = texts.str.startswith("duplicate of row").to_numpy(dtype=bool)
    severity = np.full(len(texts), _DUPLICATE, dtype=object)
    kind = np.full(len(texts), "duplicate row", dtype=object)
    which, distinct = pd.factorize(texts[~duplicate])
    if len(distinct):
        kinds = [_problem_kind(str(t)) for t in distinct]
        severity[~duplicate] = np.array([k[0] for k in kinds], dtype=object)[which]
        kind[~duplicate] = np.array([k[1] for k in kinds], dtype=object)[which]
    return severity.tolist(), kind.tolist()


def _problem_kind(text: str) -> tuple[str, str]:
    """(severity, kind) of one problem text."""
    if text.startswith("duplicate of row"):
        return _DUPLICATE, "duplicate row"
    if "stored as a number in Excel" in text:
        return _WARNING, f"{text.split(' ', 1)[0]} stored as a number (leading zeros lost?)"
    if "is not a workflow status" in text:
        return _INVALID, "unknown workflowStatus"
    if text.startswith("conflicting statuses"):
        return _INVALID, "conflicting statuses"
    if "scientific notation" in text:
        return _INVALID, f"{text.split(' ', 1)[0]} in scientific notation"
    if "characters (no Spectrum id is)" in text:
        return _INVALID, f"{text.split(' ', 1)[0]} too long"
    return _INVALID, text


def ignored_rows(validated: pd.DataFrame) -> list[tuple[int, str]]:
    """The footer rows :func:`validate_updates` left out: ``(source_row, what it said)``.

    Examples
    --------
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1", "rows: 1"],
    ...     "recipeSetReadableId": ["A", ""], "workflowStatus": ["completed", ""]})
    >>> ignored_rows(validate_updates(rows))
    [(3, 'rows: 1')]
    """
    return list(validated.attrs.get(IGNORED_ROWS, ()))


def status_suggestions(validated: pd.DataFrame, *, aliases: Aliases | None = None) -> pd.DataFrame:
    """The suggested status for each unknown spelling of a validated frame.

    Returns
    -------
    pandas.DataFrame
        ``spelling``, ``suggestion`` (the API status; ``""`` when nothing is close) and
        ``rows`` (how many rows spell it so), most rows first.

    Examples
    --------
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1", "P2"],
    ...     "recipeSetReadableId": ["A", "B"], "workflowStatus": ["complet", "zzz"]})
    >>> status_suggestions(validate_updates(rows)).values.tolist()
    [['complet', 'completed', 1], ['zzz', '', 1]]
    """
    team = _checked(aliases)
    statuses = validated[STATUS].astype(str)
    # Each distinct spelling is looked up once (a handful), then taken per row.
    which, distinct = pd.factorize(statuses, use_na_sentinel=False)
    unknown_spelling = np.array(
        [t != "" and normalise_status(str(t), team) is None for t in distinct], dtype=bool
    )
    unknown = unknown_spelling[which] if len(distinct) else np.zeros(len(statuses), dtype=bool)
    counts = statuses[unknown].value_counts(sort=True)
    hints = [suggest_status(str(t), team) for t in counts.index]
    return pd.DataFrame(
        {
            "spelling": [str(t) for t in counts.index],
            "suggestion": [h.value if h is not None else "" for h in hints],
            "rows": counts.to_numpy(dtype=np.int64),
        }
    )


def apply_suggestions(validated: pd.DataFrame, *, aliases: Aliases | None = None) -> pd.DataFrame:
    """Take every suggested status, keep the sheet's spelling, and validate again.

    Each unknown status that has a suggestion (``complet`` -> ``completed``, ``shipped``
    -> ``delivered``) is replaced by it; the sheet's own spelling goes to the
    :data:`ORIGINAL_STATUS` column (``""`` on rows that were not changed), which reports
    and the journal keep. Rows without a suggestion stay invalid.

    Parameters
    ----------
    validated
        A frame :func:`validate_updates` returned.
    aliases
        The same team aliases it was validated with.

    Returns
    -------
    pandas.DataFrame
        Validated again (see :func:`validate_updates`).

    Examples
    --------
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1"], "recipeSetReadableId": ["A"],
    ...     "workflowStatus": ["shipped"]})
    >>> fixed = apply_suggestions(validate_updates(rows))
    >>> fixed[["workflowStatus", "original_status", "valid"]].values.tolist()
    [['delivered', 'shipped', True]]
    """
    table = status_suggestions(validated, aliases=aliases)
    table = table.loc[table["suggestion"] != ""]
    rows = validated.drop(columns=[VALID, PROBLEM])
    statuses = rows[STATUS].astype(str)
    mapping = dict(zip(table["spelling"], table["suggestion"], strict=True))
    changed = statuses.isin(list(mapping))
    original = (
        rows[ORIGINAL_STATUS].astype(str)
        if ORIGINAL_STATUS in rows.columns
        else pd.Series("", index=rows.index)
    )
    rows[ORIGINAL_STATUS] = text_series(
        pa.array(original.where(~changed, statuses).tolist(), pa.large_string()), rows.index
    )
    rows[STATUS] = text_series(
        pa.array(statuses.map(lambda t: mapping.get(t, t)).tolist(), pa.large_string()),
        rows.index,
    )
    again = validate_updates(rows, aliases=aliases)
    again.attrs[IGNORED_ROWS] = validated.attrs.get(IGNORED_ROWS, ())
    return again


def _checked(aliases: Aliases | None) -> StatusAliases:
    if not aliases:
        return {}
    try:
        return status_aliases(aliases)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _number_cells(out: pd.DataFrame, col: str) -> np.ndarray:
    """Rows whose ``col`` cell the workbook stored as a number (see ``read_updates``)."""
    marked = out.attrs.get(NUMBER_CELLS, {}).get(col)
    if not isinstance(marked, SheetRows) or not len(marked):
        return np.zeros(len(out), dtype=bool)
    return np.isin(out[SOURCE_ROW].to_numpy(), marked.rows)


def _footer_rows(
    out: pd.DataFrame,
    keys: Mapping[str, pa.Array | pa.ChunkedArray],
    blank: Mapping[str, np.ndarray],
    fully_blank: np.ndarray,
    extras: list[str],
) -> tuple[np.ndarray, tuple[tuple[int, str], ...]]:
    """The trailing rows that are a footer (a total, a count), and what each said."""
    footer = np.zeros(len(out), dtype=bool)
    found: list[tuple[int, str]] = []
    complete = ~(blank[PO] | blank[LINE_ID] | blank[STATUS])
    seen = 0
    for i in range(len(out) - 1, -1, -1):
        if fully_blank[i]:
            continue
        if complete[i] or seen >= _FOOTER_SCAN:
            break
        seen += 1
        key_cells = [str(keys[c][i].as_py()) for c in (PO, LINE_ID, STATUS)]
        extra_cells = [str(v) for v in out.iloc[i][extras].tolist() if _is_value(v)]
        cells = [c.strip() for c in [*key_cells, *extra_cells] if c.strip()]
        said = [c for c in key_cells if c]
        looks = any(_FOOTER.match(c) for c in cells) or (
            not key_cells[2] and bool(said) and all(_COUNT.match(c) for c in said)
        )
        if not looks:
            break
        footer[i] = True
        found.append((int(out[SOURCE_ROW].to_numpy()[i]), " | ".join(cells)))
    return footer, tuple(reversed(found))


def _is_value(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and v != v) and v != ""


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow result as a numpy bool array (no nulls: inputs never hold any)."""
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _trimmed(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The column as Arrow text (cells rendered by cell_text, ``12345678.0`` as
    ``"12345678"``), white and invisible characters stripped from both ends."""
    return pc.utf8_trim(arrow_text(values), characters=_WHITESPACE + _INVISIBLE)


def _bad_characters(values: pa.Array) -> np.ndarray:
    """Which cells hold whitespace, control or invisible characters (:data:`_BAD_SET`).

    In ASCII text those are exactly the characters ``ascii_is_printable`` rejects, and the
    space: two byte scans instead of the regex, which runs on the other cells only.
    """
    bad: np.ndarray = ~_np(pc.ascii_is_printable(values)) | _np(pc.match_substring(values, " "))
    other = ~_np(pc.string_is_ascii(values))
    if other.any():
        where = np.flatnonzero(other)
        bad[where] = _np(pc.match_substring_regex(values.take(pa.array(where)), _BAD_CHARS))
    return bad


def _status_hint(spelling: str, aliases: StatusAliases | None) -> str:
    hint = suggest_status(spelling, aliases)
    text = f"workflowStatus {spelling!r} is not a workflow status"
    return f"{text}; did you mean {hint.value!r}?" if hint else text


def _conflict_text(rows: pd.DataFrame) -> list[str]:
    """Each conflicting row's text, naming every row of its line item in sheet order."""
    pos, lines = rows[PO].tolist(), rows[LINE_ID].tolist()
    listing: dict[tuple[str, str], list[str]] = {}
    for po, line, r, s in zip(
        pos, lines, rows[SOURCE_ROW].tolist(), rows[STATUS].tolist(), strict=True
    ):
        listing.setdefault((po, line), []).append(f"row {r} ({s})")
    joined = {key: ", ".join(parts) for key, parts in listing.items()}
    return [
        f"conflicting statuses for {line}: {joined[(po, line)]}"
        for po, line in zip(pos, lines, strict=True)
    ]


class _Problems:
    """Accumulates per-row problem texts without a per-row Python loop for common cases."""

    def __init__(self, n: int) -> None:
        self.invalid = np.zeros(n, dtype=bool)
        self._parts: list[tuple[np.ndarray, object]] = []
        self._n = n

    def add(self, mask: np.ndarray, message: str) -> None:
        if mask.any():
            self.invalid |= mask
            self._parts.append((mask, message))

    def add_text(self, mask: np.ndarray, messages: object) -> None:
        if mask.any():
            self.invalid |= mask
            self._parts.append((mask, messages))

    def note(self, mask: np.ndarray, messages: object) -> None:
        if mask.any():
            self._parts.append((mask, messages))

    def text(self) -> pa.Array:
        """Every row's problems joined by ``"; "``, in the order they were added (``""``
        for a row without any)."""
        which = np.zeros(self._n, dtype=np.int64)  # 0: no problem, else 1 + distinct text
        if not self._parts:
            return pa.array([""], pa.large_string()).take(pa.array(which))
        rows, texts = [], []
        for mask, message in self._parts:
            where = np.flatnonzero(mask)
            rows.append(where)
            if isinstance(message, str):
                texts.append(np.full(len(where), message, dtype=object))
            else:
                picked = np.asarray(message, dtype=object)[where]
                texts.append(np.array([str(t) for t in picked], dtype=object))
        row = np.concatenate(rows)
        text = np.concatenate(texts)
        order = np.argsort(row, kind="stable")  # by row; a row's problems as they were added
        row, text = row[order], text[order]
        bounds = np.flatnonzero(np.concatenate([[True], row[1:] != row[:-1], [True]]))
        joined = text[bounds[:-1]]
        for k in np.flatnonzero(np.diff(bounds) > 1).tolist():  # rows with several problems
            joined[k] = "; ".join(text[bounds[k] : bounds[k + 1]])
        codes, distinct = pd.factorize(joined)
        which[row[bounds[:-1]]] = codes + 1
        return pa.array(["", *distinct], pa.large_string()).take(pa.array(which))
