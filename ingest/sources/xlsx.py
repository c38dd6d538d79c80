"""Excel workbooks (.xlsx), read as all-string record batches through openpyxl.

An .xlsx file is a zip of XML parts, so a small upload can expand enormously
(SECURITY.md §5). Before openpyxl sees the file, the zip itself is inspected:

1. the end-of-central-directory record: entry count (``max_entries``) and directory
   size, read from the last bytes so a forged directory is never loaded;
2. every entry: only stored/deflated, unencrypted, unique names; the declared
   uncompressed total against ``max_uncompressed_bytes`` and each entry's ratio (and the
   workbook's) against ``max_ratio`` (entries under ``ratio_floor_bytes`` cannot bomb and
   are not ratio-checked); no macros (``vbaProject.bin``), external links (which carry
   DDE too) or embedded objects (``xl/embeddings/``, ActiveX), by name and by content type;
3. the actual bytes: every entry is decompressed once, counting, and stopped at the cap
   (Python's zipfile also never returns more than the declared size and checks the CRC);
   worksheets are scanned for the size of each ``<row>`` element (at most twice
   ``max_record_bytes``, because openpyxl materialises a whole row) and refused if they
   contain DOCTYPEs, comments, CDATA or processing instructions, which Excel never writes
   and which could hide fake row tags from that scan.

Then ``openpyxl.load_workbook(read_only=True, data_only=True, keep_links=False)`` parses
it, with defusedxml (refused if openpyxl is not using it), and rows stream from the
sheet into batches of ``batch_rows`` rows (or ``batch_bytes`` of text). The text
produced is capped at ``max_text_ratio`` × the workbook's uncompressed size, because one
long shared string can be referenced by a million cells.

Sheet: the first visible worksheet, or ``sheet=`` by name. Header: row ``header_row``
(1-based), or detected in the first ``header_scan_rows`` rows as the first non-empty row
whose non-empty cells are mostly (more than half) text and which has at least as many
non-empty cells as the next non-empty row, so a title row above the header (common in
Chinese exports) is skipped. Empty rows are skipped; a value to the right of the last
header cell is refused, like a ragged CSV row.

Values are what Excel stores, not what it displays: formulas give their cached value
(nothing, if the file was never calculated), numbers their value with at most 15
significant digits as Excel shows them (``12.5`` not ``12.500000000000002``; integral
values without ``.0``), booleans ``true``/``false``, dates ``2024-01-31`` and date-times
``2024-01-31 10:00:00`` (the cell's number format decides which), durations ``H:MM:SS``,
error cells their code (``#DIV/0!``).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import pyarrow as pa

# openpyxl chooses its XML parser once, when first imported: lxml whenever lxml is installed
# (other libraries pull it in; entity declarations are then silently ignored, not refused),
# else the standard library's parser wrapped by defusedxml. Uploads are hostile
# (SECURITY.md §5): unless an operator chose otherwise, make it the latter. Only this module
# may import openpyxl (ruff TID251), so this runs before openpyxl's first import.
if "openpyxl" not in sys.modules:
    os.environ.setdefault("OPENPYXL_LXML", "False")

import openpyxl
from openpyxl.styles.numbers import is_datetime
from openpyxl.utils import get_column_letter

from catalog.errors import Terminal
from ingest.errors import EmptyFileError, IngestError, MalformedFileError
from ingest.sources.base import ReaderBase, SourceOptions, check_unique_headers
from ingest.sources.xlsx_package import ArchiveInspector, describe_error, malformed


class SheetNotFoundError(IngestError, Terminal, LookupError):
    """The ``sheet`` asked for is not in the workbook."""

    code = "sheet_not_found"

    def __init__(self, *, file: str, sheet: str, available: list[str]) -> None:
        super().__init__(
            f"{file}: the workbook has no worksheet {sheet!r}; it has "
            f"{', '.join(repr(s) for s in available[:20])}; choose one of them",
            file=file,
            sheet=sheet,
            available=available[:100],
        )


class XlsxParserUnsafeError(IngestError):
    """openpyxl is not parsing with defusedxml, so uploads are not parsed at all."""

    code = "xlsx_parser_unsafe"

    def __init__(self) -> None:
        super().__init__(
            "xlsx uploads are disabled: openpyxl is not parsing with defusedxml; install "
            "defusedxml and do not set OPENPYXL_DEFUSEDXML=False or OPENPYXL_LXML=True, "
            "then retry the job"
        )


@dataclass(frozen=True)
class XlsxSource:
    """``Source`` for Excel 2007+ workbooks; the limits below add to ``SourceOptions``."""

    sheet: str | None = None
    header_row: int | None = None
    header_scan_rows: int = 20
    batch_rows: int = 8192
    batch_bytes: int = 8 << 20
    max_entries: int = 1000
    max_uncompressed_bytes: int = 512 << 20
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1 << 20
    max_text_ratio: float = 100.0
    """Largest text output/uncompressed size ratio (below ``text_floor_bytes``: any)."""
    text_floor_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        if not 0 < self.max_entries < 0xFFFF:  # a count of 0xFFFF means "see the zip64 record"
            raise ValueError("max_entries must be between 1 and 65534")
        if self.header_row is not None and self.header_row < 1:
            raise ValueError("header_row is 1-based")

    def open(self, path: Path, options: SourceOptions) -> XlsxReader:
        return XlsxReader(path, options, self)


class _Row(NamedTuple):
    number: int
    """1-based row number in the sheet."""
    values: list[str | None]
    """Cell texts, trailing empty cells removed."""
    text_cells: int
    """Non-empty cells that hold text (for header detection)."""
    size: int
    """UTF-8 bytes of the texts."""


class XlsxReader(ReaderBase):
    """One opened workbook sheet; iterate it for ``pyarrow.RecordBatch`` of strings."""

    def __init__(self, path: Path, options: SourceOptions, source: XlsxSource) -> None:
        self._label = path.name
        self._options = options
        self._source = source
        self.total_bytes = path.stat().st_size
        self._check_size(self._label, self.total_bytes, options)
        uncompressed = ArchiveInspector(path, self.total_bytes, options, source).inspect()
        self._text_limit = max(source.max_text_ratio * uncompressed, source.text_floor_bytes)
        self._text_bytes = 0
        self.bytes_read = 0
        self._workbook: Any = None
        self._handle: BinaryIO = path.open("rb")
        try:
            self._workbook = self._load()
            self._sheet = self._select_sheet()
            self._rows = self._sheet_rows()
            header, self._buffered = self._find_header()
            self.headers = self._header_texts(header)
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        rows: list[list[str | None]] = []
        size = 0
        while len(rows) < self._source.batch_rows and size < self._source.batch_bytes:
            row = self._next_data_row()
            if row is None:
                break
            rows.append(row.values + [None] * (len(self.headers) - len(row.values)))
            size += row.size
        self._text_bytes += size
        self._check_text_volume()
        self.bytes_read = max(self.bytes_read, min(self._handle.tell(), self.total_bytes))
        if not rows:
            self.bytes_read = self.total_bytes
            raise StopIteration
        columns = [pa.array(list(column), pa.string()) for column in zip(*rows, strict=True)]
        return pa.RecordBatch.from_arrays(columns, names=self.headers)

    def close(self) -> None:
        if self._workbook is not None:
            self._workbook.close()
        self._handle.close()

    # -- opening -------------------------------------------------------------------------

    def _load(self) -> Any:
        if not openpyxl.DEFUSEDXML or openpyxl.LXML:
            raise XlsxParserUnsafeError()
        try:
            return openpyxl.load_workbook(
                self._handle, read_only=True, data_only=True, keep_links=False, keep_vba=False
            )
        except Exception as exc:  # a third-party parser on hostile input: any failure is the file's
            raise malformed(
                self._label, "parse_error", f"the workbook cannot be read ({describe_error(exc)})"
            ) from None

    def _select_sheet(self) -> Any:
        sheets = self._workbook.worksheets
        wanted = self._source.sheet
        if wanted is None:
            visible = [sheet for sheet in sheets if sheet.sheet_state == "visible"]
            if not visible:
                raise malformed(self._label, "no_sheet", "the workbook has no visible worksheet")
            return visible[0]
        for sheet in sheets:
            if sheet.title == wanted:
                return sheet
        raise SheetNotFoundError(
            file=self._label, sheet=wanted, available=[sheet.title for sheet in sheets]
        )

    def _find_header(self) -> tuple[_Row, deque[_Row]]:
        """The header row and the rows read after it while looking for it."""
        wanted = self._source.header_row
        if wanted is not None:
            for row in self._rows:
                if row.number == wanted and row.values:
                    return row, deque()
                if row.number >= wanted:
                    break
            raise self._sheet_error("header_not_found", f"row {wanted} is empty", sheet_row=wanted)
        scanned: list[_Row] = []
        for row in self._rows:
            scanned.append(row)
            if len(scanned) >= self._source.header_scan_rows:
                break
        header = _detect_header(scanned)
        if header is None:
            if not any(row.values for row in scanned):
                raise EmptyFileError(file=self._label, has_header=False)
            raise self._sheet_error(
                "header_not_found",
                f"no header row found in the first {self._source.header_scan_rows} rows "
                "(a row of mostly text followed by data); give the header row number",
            )
        return header, deque(row for row in scanned if row.number > header.number)

    def _header_texts(self, row: _Row) -> list[str]:
        headers = [value or "" for value in row.values]
        if len(headers) > self._options.max_columns:
            raise self._sheet_error(
                "too_many_columns",
                f"header row {row.number} has {len(headers)} columns, over the limit of "
                f"{self._options.max_columns}",
                sheet_row=row.number,
            )
        check_unique_headers(self._label, headers)
        return headers

    # -- streaming -----------------------------------------------------------------------

    def _sheet_rows(self) -> Iterator[_Row]:
        """Every row of the sheet in order (gaps as empty rows), as cell texts."""
        self._sheet.reset_dimensions()  # the file's <dimension> is not trusted
        cells_by_row = iter(self._sheet.iter_rows())
        number = 0
        while True:
            try:
                cells = next(cells_by_row)
            except StopIteration:
                return
            except Exception as exc:  # hostile XML can fail anywhere in openpyxl
                raise self._sheet_error(
                    "parse_error",
                    f"the sheet cannot be read after row {number} ({describe_error(exc)})",
                    sheet_row=number + 1,
                ) from None
            number += 1
            yield self._row(number, cells)

    def _row(self, number: int, cells: tuple[Any, ...]) -> _Row:
        values: list[str | None] = []
        text_cells = size = 0
        for cell in cells:
            text = _cell_text(cell)
            if text:
                text_cells += isinstance(cell.value, str)
                size += self._text_size(text, number, len(values) + 1)
            values.append(text)
        while values and not values[-1]:
            values.pop()
        return _Row(number, values, text_cells, size)

    def _text_size(self, text: str, number: int, column: int) -> int:
        try:
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise self._sheet_error(
                "invalid_text",
                f"cell {get_column_letter(column)}{number} holds an unpaired surrogate",
                sheet_row=number,
                column=column,
            ) from None
        if size > self._options.max_cell_bytes:
            raise self._sheet_error(
                "cell_too_large",
                f"cell {get_column_letter(column)}{number} is {size} bytes, over the limit of "
                f"{self._options.max_cell_bytes}",
                sheet_row=number,
                column=column,
            )
        return size

    def _next_data_row(self) -> _Row | None:
        while True:
            row = self._buffered.popleft() if self._buffered else next(self._rows, None)
            if row is None:
                return None
            if not row.values:
                continue
            if len(row.values) > len(self.headers):
                width = len(self.headers)
                raise self._sheet_error(
                    "ragged_row",
                    f"cell {get_column_letter(len(row.values))}{row.number} has a value but "
                    f"the header ends at column {get_column_letter(width) if width else '-'}",
                    sheet_row=row.number,
                )
            return row

    def _check_text_volume(self) -> None:
        if self._text_bytes > self._text_limit:
            raise self._sheet_error(
                "too_compressed",
                f"the cells expand to more than {int(self._text_limit)} bytes of text "
                f"(over {self._source.max_text_ratio:g} times the workbook's XML)",
            )

    def _sheet_error(self, reason: str, detail: str, **extra: Any) -> MalformedFileError:
        return malformed(self._label, reason, f"sheet {self._sheet.title!r}: {detail}", **extra)


# -- header detection ----------------------------------------------------------------------


def _detect_header(rows: list[_Row]) -> _Row | None:
    """First non-empty row, mostly text, with at least as many cells as the next one."""
    filled = [row for row in rows if row.values]
    for index, row in enumerate(filled):
        count = _filled(row)
        if row.text_cells * 2 <= count:
            continue
        following = _filled(filled[index + 1]) if index + 1 < len(filled) else 0
        if count >= following:
            return row
    return None


def _filled(row: _Row) -> int:
    return sum(1 for value in row.values if value)


# -- cell values ---------------------------------------------------------------------------


def _cell_text(cell: Any) -> str | None:
    value = cell.value
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, dt.datetime):
        return _datetime_text(value, cell.number_format)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _duration_text(value)
    return str(value)


def _number_text(value: float) -> str:
    """Excel's 15 significant digits; integral values as integers (exact below 2⁵³)."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = f"{value:.15g}"
    return "0" if text == "-0" else text


def _datetime_text(value: dt.datetime, number_format: str | None) -> str:
    kind = is_datetime(number_format) if number_format else None
    if kind == "date":
        return value.date().isoformat()
    if kind == "time":
        return value.time().isoformat()
    spec = "seconds" if value.microsecond == 0 else "milliseconds"
    return value.isoformat(sep=" ", timespec=spec)


def _duration_text(value: dt.timedelta) -> str:
    seconds = round(value.total_seconds())
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{'-' if seconds < 0 else ''}{hours}:{minutes:02d}:{secs:02d}"
