"""Read analysts' spreadsheets into update rows, and write tables back out safely.

I/O: reads CSV/XLSX files, file-like uploads and DataFrames; writes CSV/XLSX files.

Reading keeps every cell as text, so ids survive (``00123`` stays ``00123``, a numeric
Excel cell ``12345678`` becomes ``"12345678"``, ``NA`` stays ``NA``). Writing never
produces a cell Excel would run as a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from spectrum_tools.errors import ColumnError, ConfigError, SpreadsheetError
from spectrum_tools.schema import KEY_COLUMNS, LINE_ID, PO, SOURCE_ROW, SOURCE_SHEET, STATUS

__all__ = [
    "COLUMN_ALIASES",
    "Source",
    "cell_text",
    "check_workbook_archive",
    "list_sheets",
    "read_header",
    "read_updates",
    "resolve_columns",
    "write_table",
    "write_workbook",
]

Source = str | Path | IO[bytes] | pd.DataFrame
"""What :func:`read_updates` accepts: a path, a binary file-like object, or a DataFrame."""

# Header spellings per API field, compared after dropping case, spaces and punctuation.
COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = {
    PO: (
        "purchaseOrderNumber",
        "PO",
        "PO Number",
        "PO No",
        "PO #",
        "PO Num",
        "Purchase Order",
        "Purchase Order No",
        "Purchase Order Number",
        "Order Number",
        "Order No",
    ),
    LINE_ID: (
        "recipeSetReadableId",
        "recipeSetId",
        "Recipe Set ID",
        "Recipe Set",
        "Readable ID",
        "Recipe Set Readable ID",
        "Line Item",
        "Line Item ID",
        "Line ID",
    ),
    STATUS: (
        "workflowStatus",
        "Status",
        "New Status",
        "Workflow Status",
        "Target Status",
        "New Workflow Status",
    ),
}

# How far down a sheet the header row may be (title rows above it are common).
_HEADER_SCAN_ROWS = 20
# Untrusted workbooks: refuse archives that would inflate beyond these.
# Reading costs about 5x the sheet XML in memory: 1 GiB of XML is ~5 GB of RAM already.
_MAX_UNZIPPED_BYTES = 1024**3
_MAX_ZIP_RATIO = 200
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A CSV cell that was escaped on export (see write_table) is unescaped on read.
_ESCAPED = re.compile(r"^'+[=+\-@\t\r]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _squash(name: object) -> str:
    return re.sub(r"[\W_]+", "", str(name)).lower()


_ALIAS_INDEX: dict[str, str] = {
    _squash(alias): field for field, aliases in COLUMN_ALIASES.items() for alias in aliases
}


@dataclass(frozen=True)
class _Grid:
    """A sheet as a frame of text cells (integer column labels), with where it came from."""

    frame: pd.DataFrame
    file: str
    sheet: str


def resolve_columns(
    headers: Sequence[object], columns: Mapping[str, str] | None = None
) -> tuple[dict[str, int], list[str]]:
    """Find the API fields among a header row.

    Parameters
    ----------
    headers
        The header cells, left to right.
    columns
        Overrides: API field name -> header text, e.g. ``{"purchaseOrderNumber": "My PO"}``.

    Returns
    -------
    (found, problems)
        ``found`` maps each API field found to its column index; ``problems`` lists one
        sentence per field that is missing or ambiguous.

    Examples
    --------
    >>> resolve_columns(["PO Number", "Recipe Set ID", "New Status"])[0]
    {'purchaseOrderNumber': 0, 'recipeSetReadableId': 1, 'workflowStatus': 2}
    """
    overrides = dict(columns or {})
    unknown = set(overrides) - set(KEY_COLUMNS)
    if unknown:
        raise ConfigError(
            f"columns= keys must be {', '.join(KEY_COLUMNS)}; got {', '.join(sorted(unknown))}"
        )
    squashed = [_squash(h) for h in headers]
    found: dict[str, int] = {}
    problems: list[str] = []
    for field in KEY_COLUMNS:
        if field in overrides:
            want = overrides[field]
            exact = [i for i, h in enumerate(headers) if str(h) == want]
            hits = exact or [i for i, s in enumerate(squashed) if s == _squash(want)]
            if not hits:
                problems.append(f"no column {want!r} (given for {field})")
                continue
            found[field] = hits[0]
            continue
        hits = [i for i, s in enumerate(squashed) if _ALIAS_INDEX.get(s) == field]
        hits = [i for i in hits if i not in found.values()]
        if len(hits) == 1:
            found[field] = hits[0]
        elif not hits:
            problems.append(f"no column for {field} (e.g. {', '.join(COLUMN_ALIASES[field][1:4])})")
        else:
            names = ", ".join(repr(str(headers[i])) for i in hits)
            problems.append(f"{names} could each be {field}; pass columns={{{field!r}: ...}}")
    return found, problems


def read_updates(
    source: Source,
    *,
    sheet: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read status-update rows from a workbook, CSV, upload or DataFrame, every cell as text.

    Parameters
    ----------
    source
        A path to ``.xlsx``/``.xlsm``/``.csv``/``.txt``, a binary file-like object (a
        notebook upload), or a DataFrame. The format is recognised from the content.
    sheet
        Workbook sheet name. Default: the first visible sheet whose header has the
        needed columns.
    columns
        Overrides for column detection: API field -> header text.

    Returns
    -------
    pandas.DataFrame
        Columns ``purchaseOrderNumber``, ``recipeSetReadableId``, ``workflowStatus``,
        ``source_sheet``, ``source_row`` (the row number the spreadsheet shows), then the
        sheet's other columns. All cells are ``str``; nothing is trimmed or dropped yet.

    Raises
    ------
    SpreadsheetError
        One line naming the file, sheet, row and column: unreadable file, unknown
        sheet, missing or ambiguous columns, ragged CSV rows.

    Examples
    --------
    >>> df = read_updates(io.BytesIO(b"PO;Recipe Set ID;Status\\n00123;AB12CD34;In Progress\\n"))
    >>> df.loc[0, ["purchaseOrderNumber", "workflowStatus"]].tolist(), int(df.loc[0, "source_row"])
    (['00123', 'In Progress'], 2)
    """
    if isinstance(source, pd.DataFrame):
        return _from_frame(source, columns)
    data, label = _read_bytes(source)
    if not data.strip():
        raise SpreadsheetError("the file is empty", file=label)
    if data.startswith(_OLE_MAGIC):
        raise SpreadsheetError(
            "this is a password-protected workbook or an old .xls file; "
            "save it as .xlsx without a password, or as CSV UTF-8",
            file=label,
        )
    if data.startswith(_ZIP_MAGIC):
        grids = _xlsx_grids(data, label, sheet, columns)
    else:
        if label.lower().endswith((".xlsx", ".xlsm", ".xls")):
            looks = "binary data of another kind" if b"\x00" in data[:4096] else "text"
            raise SpreadsheetError(
                f"this is not an Excel workbook (it holds {looks}); save it again from "
                "Excel as .xlsx" + (", or rename it to .csv" if looks == "text" else ""),
                file=label,
            )
        if sheet is not None:
            raise SpreadsheetError(f"sheet {sheet!r} was given but this is a CSV file", file=label)
        grids = [_csv_grid(data, label)]
    return _grid_to_frame(grids, columns)


def list_sheets(source: str | Path | IO[bytes]) -> list[str]:
    """Return the visible worksheet names of a workbook (``[]`` for a CSV).

    Raises
    ------
    SpreadsheetError
        The file cannot be read.
    """
    data, label = _read_bytes(source)
    if not data.startswith(_ZIP_MAGIC):
        return []
    book = _open_workbook(data, label)
    return [m.name for m in book.sheets_metadata if _is_visible_worksheet(m)]


def read_header(source: str | Path | IO[bytes], *, sheet: str | None = None) -> list[str]:
    """Return the header row of a sheet, found the way :func:`read_updates` finds it.

    The header may sit below title rows. When no row has the needed columns, the first
    non-blank row is returned, so a person can map the columns by hand.

    Parameters
    ----------
    source
        A path or a binary file-like object (``.xlsx`` or ``.csv``).
    sheet
        The workbook sheet; ignored for a CSV. Default: the first visible sheet.

    Raises
    ------
    SpreadsheetError
        The file cannot be read, or the sheet does not exist.

    Examples
    --------
    >>> read_header(io.BytesIO(b"Report\\n\\nPO;Recipe Set ID;Status\\nP1;A;done\\n"))
    ['PO', 'Recipe Set ID', 'Status']
    """
    data, label = _read_bytes(source)
    if data.startswith(_ZIP_MAGIC):
        book = _open_workbook(data, label)
        names = list(book.sheet_names)
        visible = [m.name for m in book.sheets_metadata if _is_visible_worksheet(m)]
        name = sheet if sheet is not None else (visible or names or [""])[0]
        if name not in names:
            raise SpreadsheetError(
                f"no sheet {name!r}; the sheets are {', '.join(map(repr, names))}", file=label
            )
        rows = _sheet_rows(book, name, label, nrows=_HEADER_SCAN_ROWS)
    else:
        grid = _csv_grid(data, label)
        rows = grid.frame.head(_HEADER_SCAN_ROWS).astype(str).to_numpy().tolist()
    index, _, _ = _find_header(rows, None)
    if index is None:
        index = next((i for i, r in enumerate(rows) if any(str(c).strip() for c in r)), None)
    return [] if index is None else [str(c).strip() for c in rows[index]]


# --------------------------------------------------------------------------- reading


def _read_bytes(source: str | Path | IO[bytes]) -> tuple[bytes, str]:
    if isinstance(source, str | Path):
        path = Path(source)
        label = str(source)
        try:
            return path.read_bytes(), label
        except FileNotFoundError:
            raise SpreadsheetError("no such file", file=label) from None
        except IsADirectoryError:
            raise SpreadsheetError("this is a folder, not a file", file=label) from None
        except OSError as exc:
            raise SpreadsheetError(f"cannot read the file ({exc.strerror})", file=label) from None
    label = str(getattr(source, "name", "") or "upload")
    data = source.read()
    if isinstance(data, str):  # a text-mode handle: accept it, it is unambiguous
        return data.encode("utf-8"), label
    return bytes(data), label


def check_workbook_archive(data: bytes, label: str) -> None:
    """Refuse a workbook that is not a valid zip, is no Excel workbook, or would inflate
    past the size limits (a zip bomb). Reads only the zip's directory.

    Raises
    ------
    SpreadsheetError
        One line naming ``label``.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        raise SpreadsheetError("the workbook is corrupt (not a valid .xlsx)", file=label) from None
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > _MAX_UNZIPPED_BYTES or (total > 50 * 1024**2 and total / packed > _MAX_ZIP_RATIO):
        raise SpreadsheetError(
            f"the workbook would expand to {total / 1024**2:,.0f} MB; refusing to open it "
            "(a damaged or malicious file)",
            file=label,
        )
    if not any(i.filename == "xl/workbook.xml" for i in infos):
        raise SpreadsheetError("this zip file is not an Excel workbook", file=label)


def _open_workbook(data: bytes, label: str) -> Any:
    import python_calamine

    check_workbook_archive(data, label)
    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises several unrelated types for bad files
        raise SpreadsheetError(
            f"the workbook cannot be read ({type(exc).__name__})", file=label
        ) from None


def _is_visible_worksheet(meta: Any) -> bool:
    return str(meta.typ).endswith("WorkSheet") and str(meta.visible).endswith(".Visible")


def _xlsx_grids(
    data: bytes, label: str, sheet: str | None, columns: Mapping[str, str] | None
) -> list[_Grid]:
    book = _open_workbook(data, label)
    names: list[str] = list(book.sheet_names)
    if sheet is not None:
        if sheet not in names:
            raise SpreadsheetError(
                f"no sheet {sheet!r}; the sheets are {', '.join(map(repr, names))}", file=label
            )
        return [_grid(_sheet_rows(book, sheet, label), label, sheet)]
    visible = [m.name for m in book.sheets_metadata if _is_visible_worksheet(m)]
    heads = {}
    for name in visible:
        head = _sheet_rows(book, name, label, nrows=_HEADER_SCAN_ROWS)
        if _find_header(head, columns)[0] is not None:
            return [_grid(_sheet_rows(book, name, label), label, name)]
        heads[name] = head
    if len(heads) == 1:  # one sheet: say exactly what it lacks, as for a CSV
        name, head = next(iter(heads.items()))
        _grid_to_frame([_grid(head, label, name)], columns)
    raise ColumnError(
        "no sheet has the columns purchaseOrderNumber, recipeSetReadableId and workflowStatus "
        f"(sheets: {', '.join(map(repr, heads)) or 'none visible'}); pick one with --sheet "
        "/ sheet= to see what it lacks",
        file=label,
    )


def _sheet_rows(book: Any, name: str, label: str, nrows: int | None = None) -> list[list[str]]:
    try:
        ws = book.get_sheet_by_name(name)
        raw: list[list[Any]] = ws.to_python(skip_empty_area=False, nrows=nrows)
        merged = ws.merged_cell_ranges or []
    except Exception as exc:
        raise SpreadsheetError(
            f"the sheet cannot be read ({type(exc).__name__})", file=label, sheet=name
        ) from None
    rows = [[cell_text(v) for v in row] for row in raw]
    # A merged cell shows its value across the whole area; the analyst reads it that way.
    for (r0, c0), (r1, c1) in merged:
        if r0 >= len(rows) or c0 >= len(rows[r0]):
            continue
        value = rows[r0][c0]
        for r in range(r0, min(r1 + 1, len(rows))):
            for c in range(c0, min(c1 + 1, len(rows[r]))):
                rows[r][c] = value
    return rows


def _grid(rows: list[list[str]], label: str, sheet: str) -> _Grid:
    width = max((len(r) for r in rows), default=0)
    frame = pd.DataFrame(rows, columns=range(width), dtype=object).fillna("")
    return _Grid(frame, label, sheet)


def cell_text(value: object) -> str:
    """Render one cell as the text an analyst means by it.

    Examples
    --------
    >>> cell_text(12345678.0), cell_text(float('nan')), cell_text(True), cell_text(1.5)
    ('12345678', '', 'TRUE', '1.5')
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value != value:  # NaN: an empty cell of a float column
            return ""
        # Whole numbers up to 2**53 are exact; beyond that Excel already lost digits, and
        # the scientific repr makes validation flag the id instead of sending garbage.
        if value.is_integer() and abs(value) <= 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return ""
    return str(value)


def _decode(data: bytes, label: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if b"\x00" in data[:4096]:
        raise SpreadsheetError(
            "this is not a CSV or Excel file (it contains binary data)", file=label
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Excel's plain "CSV" on Windows writes cp1252; latin-1 decodes any byte left over.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _sniff_delimiter(text: str) -> tuple[str, int]:
    """Return the delimiter that splits the first lines most consistently, and the width."""
    lines = [ln for ln in text[:65536].splitlines()[:30] if ln.strip()]
    best, best_score, best_width = ",", (0, 0), 1
    for delim in (",", ";", "\t", "|"):
        counts = Counter(len(r) for r in csv.reader(lines, delimiter=delim))
        # The usual width: title rows above the header may be narrower, and a row wider
        # than the rest is an error the parser reports with its row number.
        width, consistent = max(counts.items(), key=lambda kv: (kv[1], kv[0]), default=(1, 0))
        if width < 2:
            continue
        score = (consistent, width)
        if score > best_score:
            best, best_score, best_width = delim, score, width
    return best, best_width


def _csv_grid(data: bytes, label: str) -> _Grid:
    text = _decode(data, label)
    delim, width = _sniff_delimiter(text)
    # Plain UTF-8 (the usual case): let the parser read the bytes, a third faster than a
    # StringIO, which it would encode back to UTF-8 first. Same cells either way.
    utf8 = text.encode("utf-8", errors="surrogatepass") == data
    try:
        frame = pd.read_csv(
            io.BytesIO(data) if utf8 else io.StringIO(text),
            encoding="utf-8",
            sep=delim,
            header=None,
            names=range(width),
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            want, line, saw = match.groups()
            raise SpreadsheetError(
                f"has {saw} cells but the rows above have {want}; "
                f"check for a stray {delim!r} or an unclosed quote",
                file=label,
                row=int(line),
            ) from None
        raise SpreadsheetError(
            f"cannot be parsed as CSV ({' '.join(str(exc).split())})", file=label
        ) from None
    except pd.errors.EmptyDataError:
        raise SpreadsheetError("the file is empty", file=label) from None
    frame.columns = pd.RangeIndex(len(frame.columns))
    return _Grid(frame, label, "")


def _find_header(
    rows: Sequence[Sequence[str]], columns: Mapping[str, str] | None
) -> tuple[int | None, dict[str, int], list[str]]:
    """Return (header row index, field -> column index, problems of the first non-blank row)."""
    first_problems: list[str] | None = None
    for index, row in enumerate(rows[:_HEADER_SCAN_ROWS]):
        if not any(str(c).strip() for c in row):
            continue
        found, problems = resolve_columns(row, columns)
        if not problems:
            return index, found, []
        if first_problems is None:
            first_problems = problems
    return None, {}, first_problems or ["no header row"]


def _grid_to_frame(grids: list[_Grid], columns: Mapping[str, str] | None) -> pd.DataFrame:
    grid = grids[0]
    head = grid.frame.head(_HEADER_SCAN_ROWS).astype(str).to_numpy().tolist()
    header_at, found, problems = _find_header(head, columns)
    if header_at is None:
        seen = next((r for r in head if any(str(c).strip() for c in r)), [])
        shown = ", ".join(repr(str(c)) for c in seen if str(c).strip())[:300]
        raise ColumnError(
            f"{'; '.join(problems)}. Found columns: {shown or 'none'}",
            file=grid.file,
            sheet=grid.sheet or None,
        )
    header = [str(c) for c in head[header_at]]
    if grid.sheet == "":  # undo write_table's escape of header cells too
        header = [h[1:] if _ESCAPED.match(h) else h for h in header]
    frame = grid.frame.iloc[header_at + 1 :].reset_index(drop=True)
    if grid.sheet == "" and not frame.empty:
        # Undo the formula escape that write_table applies to CSV cells.
        for col in frame.columns:
            values = frame[col].astype(object)
            if not _may_hold_escapes(values):
                continue
            mask = values.str.match(_ESCAPED).fillna(False).astype(bool)
            if mask.any():
                frame.loc[mask, col] = values[mask].str.slice(1)
    return _assemble(frame, header, found, sheet=grid.sheet, first_row=header_at + 2)


def _may_hold_escapes(values: pd.Series) -> bool:
    """False when no cell can start with ``'``: one C-speed search instead of a regex a cell.

    A cell starting with ``'`` puts ``"\\n'"`` in the newline-joined column, so no hit
    means no escaped cell (a hit just sends the column through the exact regex).
    """
    try:
        return "\n'" in "\n" + "\n".join(values.tolist())
    except TypeError:  # a non-text cell (a short row's NaN): check the slow way
        return True


def _assemble(
    frame: pd.DataFrame,
    header: Sequence[str],
    found: Mapping[str, int],
    *,
    sheet: str | Sequence[str],
    first_row: int | Sequence[int],
) -> pd.DataFrame:
    out: dict[str, Any] = {field: frame[found[field]].astype(object) for field in KEY_COLUMNS}
    out[SOURCE_SHEET] = sheet if isinstance(sheet, str) else list(sheet)
    if isinstance(first_row, int):
        out[SOURCE_ROW] = range(first_row, first_row + len(frame))
    else:
        out[SOURCE_ROW] = list(first_row)
    taken = set(out)
    for index in range(len(frame.columns)):
        if index in found.values():
            continue
        name = str(header[index]).strip() if index < len(header) else ""
        name = name or f"column {_column_letter(index)}"
        if name in taken:
            name = f"{name} ({_column_letter(index)})"
        if not name or name in taken:
            continue
        taken.add(name)
        out[name] = frame[frame.columns[index]].astype(object)
    result = pd.DataFrame(out, index=pd.RangeIndex(len(frame)))
    result[SOURCE_ROW] = result[SOURCE_ROW].astype("int64")
    return result


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _from_frame(df: pd.DataFrame, columns: Mapping[str, str] | None) -> pd.DataFrame:
    headers = [str(c) for c in df.columns]
    found, problems = resolve_columns(headers, columns)
    if problems:
        raise ColumnError(
            f"{'; '.join(problems)}. Found columns: {', '.join(map(repr, headers))[:300]}",
            file="DataFrame",
        )
    frame = pd.DataFrame(
        {i: _text_column(df.iloc[:, i]) for i in range(len(df.columns))},
        index=pd.RangeIndex(len(df)),
    )
    keep = [i for i, h in enumerate(headers) if h not in (SOURCE_ROW, SOURCE_SHEET)]
    extras = {i: h for i, h in enumerate(headers) if i in keep}
    sheet: str | list[str] = ""
    first_row: int | list[int] = 2  # as if written with df.to_excel(index=False)
    if SOURCE_ROW in headers:
        first_row = [int(v) for v in pd.to_numeric(df[SOURCE_ROW]).tolist()]
    if SOURCE_SHEET in headers:
        sheet = [str(v) for v in df[SOURCE_SHEET].tolist()]
    frame = frame[keep]
    frame.columns = pd.RangeIndex(len(keep))
    renumber = {old: new for new, old in enumerate(keep)}
    header = [extras[i] for i in keep]
    return _assemble(
        frame, header, {f: renumber[i] for f, i in found.items()}, sheet=sheet, first_row=first_row
    )


def _text_column(values: pd.Series) -> list[str]:
    return [v if type(v) is str else cell_text(v) for v in values.tolist()]


# --------------------------------------------------------------------------- writing


def _excel_safe(value: str) -> str:
    """Escape text that Excel would run as a formula when it opens a CSV."""
    if value.startswith(_FORMULA_START) or _ESCAPED.match(value):
        return "'" + value  # read_updates strips exactly one leading quote back off
    return value


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write one table to ``.csv`` or ``.xlsx``, ids as text and nothing executable.

    CSV is UTF-8 with a BOM (so Excel reads accents right); a text cell starting with
    ``= + - @`` tab or CR gets a leading ``'`` (the OWASP CSV-injection escape, which
    :func:`read_updates` undoes). XLSX cells are typed strings, which Excel never runs.

    Raises
    ------
    ConfigError
        The extension is neither ``.csv`` nor ``.xlsx``.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".xlsx":
        return write_workbook(target, {"Sheet1": df})
    if suffix != ".csv":
        raise ConfigError(f"{target}: write .csv or .xlsx, not {suffix or 'no extension'!r}")
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            escaped = [_excel_safe(v) if isinstance(v, str) else v for v in safe[col].tolist()]
            # dtype=object: a list of ints and None would otherwise become floats ("200.0").
            safe[col] = pd.Series(escaped, index=safe.index, dtype=object)
    # Headers too: an analyst's column may be called "=Notes".
    safe.columns = pd.Index([_excel_safe(str(c)) for c in safe.columns], dtype=object)
    target.parent.mkdir(parents=True, exist_ok=True)
    # CRLF as Excel writes it; it also makes pandas quote a cell holding a bare CR.
    safe.to_csv(target, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return target


def write_workbook(
    path: str | Path,
    sheets: Mapping[str, pd.DataFrame],
    *,
    decorate: Any = None,
) -> Path:
    """Write several tables to one ``.xlsx``: typed text cells, sized columns, filters.

    Parameters
    ----------
    path
        The workbook to write (parent folders are created).
    sheets
        Sheet name -> table. Text stays text; ints, floats and bools stay numbers.
    decorate
        Optional callable ``decorate(workbook)`` run before saving (charts, extra sheets).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for name, df in sheets.items():
        ws = book.create_sheet(title=name[:31])
        ws.freeze_panes = "A2"
        widths = [min(60, max(8, len(str(c)) + 2)) for c in df.columns]
        for i, col in enumerate(df.columns):
            sample = df[col].head(200).tolist()
            longest = max((len(str(v)) for v in sample), default=0)
            widths[i] = min(60, max(widths[i], longest + 2))
            ws.column_dimensions[_column_letter(i)].width = widths[i]
        if len(df.columns):
            ws.auto_filter.ref = f"A1:{_column_letter(len(df.columns) - 1)}{len(df) + 1}"
        header = []
        for col in df.columns:
            cell = WriteOnlyCell(ws, value=str(col))
            cell.data_type = "s"
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for record in df.itertuples(index=False, name=None):
            ws.append([_xlsx_cell(ws, v) for v in record])
    if decorate is not None:
        decorate(book)
    book.save(target)
    return target


# Characters an .xlsx cannot hold (openpyxl raises IllegalCharacterError on them), and the
# texts openpyxl would store as error cells rather than strings.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_EXCEL_ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})


def _xlsx_cell(ws: Any, value: object) -> Any:
    from openpyxl.cell import WriteOnlyCell

    if type(value) is str:  # most cells of a report: the fast path (100k-order reports)
        if not value:
            return None  # reads back as "" all the same, and costs nothing to write
        if _XML_ILLEGAL.search(value):
            value = _XML_ILLEGAL.sub("\ufffd", value)  # a pasted control character
        if value[0] != "=" and value not in _EXCEL_ERRORS:
            return value  # openpyxl stores any other text as a plain string cell
    if value is None or value is pd.NA or value is pd.NaT:  # a blank cell, not "<NA>" text
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bool | int | float) and not isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _xlsx_cell(ws, value.item())
    text = value if isinstance(value, str) else _XML_ILLEGAL.sub("\ufffd", cell_text(value))
    cell = WriteOnlyCell(ws, value=text)
    # openpyxl treats "=..." as a formula; a typed string cell is never executed.
    cell.data_type = "s"
    return cell
