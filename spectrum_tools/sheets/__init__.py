"""Read analysts' spreadsheets into update rows, and write tables back out safely.

I/O: reads CSV/XLSX files, file-like uploads and DataFrames; writes CSV/XLSX files.

Reading keeps every cell as text, so ids survive (``00123`` stays ``00123``, a numeric
Excel cell ``12345678`` becomes ``"12345678"``, ``NA`` stays ``NA``). Writing never
produces a cell Excel would run as a formula.

One concept per module:

``reading``    the entry points: :func:`read_updates`, :func:`list_sheets`, :func:`read_header`
``sniffing``   what a file is: workbook or text, its encoding, its CSV delimiter
``delimited``  CSV into text columns (Arrow's multithreaded reader; pandas for odd files)
``workbook``   ``.xlsx`` into text columns (calamine), the zip-bomb check
``grid``       a sheet as text columns before its header is found
``columns``    finding the API fields among header cells (:func:`resolve_columns`)
``frames``     a grid (or an analyst's DataFrame) into the frame of update rows
``writing``    :func:`write_table`, :func:`write_workbook`
"""

from spectrum_tools.cells import cell_text
from spectrum_tools.sheets.columns import COLUMN_ALIASES, resolve_columns
from spectrum_tools.sheets.frames import CORRECTIONS, HEADER_ROW, HEADERS, NUMBER_CELLS, SheetRows
from spectrum_tools.sheets.reading import Source, list_sheets, read_header, read_updates
from spectrum_tools.sheets.workbook import check_workbook_archive
from spectrum_tools.sheets.writing import write_table, write_workbook

__all__ = [
    "COLUMN_ALIASES",
    "CORRECTIONS",
    "HEADERS",
    "HEADER_ROW",
    "NUMBER_CELLS",
    "SheetRows",
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
