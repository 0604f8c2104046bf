"""Recognise what a file is: workbook or text, its text encoding, its CSV delimiter.

Pure: works on bytes already read. Format is told by content (magic bytes), never by the
file name alone, so an upload without a name and a mis-named file read the same.
"""

from __future__ import annotations

import csv
from collections import Counter
from typing import Final

from spectrum_tools.errors import SpreadsheetError

__all__ = ["OLE_MAGIC", "SNIFF_CHARS", "ZIP_MAGIC", "decode", "sniff_delimiter"]

ZIP_MAGIC: Final = b"PK\x03\x04"
OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DELIMITERS: Final = (",", ";", "\t", "|")
SNIFF_CHARS: Final = 65536
"""How much of the text :func:`sniff_delimiter` looks at."""


def decode(data: bytes, label: str) -> tuple[str, bytes]:
    """The text of a CSV file, and that text as UTF-8 bytes.

    UTF-16 and UTF-8 are told by their BOM; else UTF-8, then cp1252 (Excel's plain "CSV" on
    Windows), then latin-1, which decodes any byte. Plain UTF-8, the usual case, costs no
    copy: the bytes returned are ``data`` itself.

    Raises
    ------
    SpreadsheetError
        The data holds NUL bytes and no UTF-16 BOM (binary data, not text).

    Examples
    --------
    >>> decode("café;x".encode("cp1252"), "f.csv")
    ('café;x', b'caf\xc3\xa9;x')
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    elif data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", errors="replace")
    elif b"\x00" in data[:4096]:
        raise SpreadsheetError(
            "this is not a CSV or Excel file (it contains binary data)", file=label
        )
    else:
        try:
            return data.decode("utf-8"), data
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
    return text, text.encode("utf-8", errors="surrogatepass")


def sniff_delimiter(text: str) -> tuple[str, int]:
    """Return the delimiter that splits the first lines most consistently, and the width.

    Examples
    --------
    >>> sniff_delimiter("PO;Line;Status\\nP1;A;done\\n")
    (';', 3)
    """
    lines = [ln for ln in text[:SNIFF_CHARS].splitlines()[:30] if ln.strip()]
    best, best_score, best_width = ",", (0, 0), 1
    for delim in _DELIMITERS:
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
