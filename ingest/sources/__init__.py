"""Source plug-ins: one module per file format, all behind ``base.Source``.

``SOURCES`` maps a format name to its source; ``TEXT_FORMATS`` are decoded with the
declared encoding (and checked as they are received), the others are binary.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePath

from ingest.errors import IngestError
from ingest.sources.base import OpenSource, Source, SourceOptions, normalise_header
from ingest.sources.csv import CsvSource
from ingest.sources.jsonl import JsonLinesSource
from ingest.sources.parquet import ParquetSource
from ingest.sources.xlsx import XlsxSource

SOURCES: dict[str, Source] = {
    "csv": CsvSource(),
    "tsv": CsvSource(),
    "jsonl": JsonLinesSource(),
    "parquet": ParquetSource(),
    "xlsx": XlsxSource(),
}
"""Format name → source. TSV is the CSV source with ``SourceOptions(delimiter="\\t")``."""

TEXT_FORMATS = frozenset({"csv", "tsv", "jsonl"})
EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".xlsx": "xlsx"}  # fmt: skip
REFUSED_EXTENSIONS = {
    ".xlsm": "macro-enabled workbooks are refused; save the sheet as .xlsx",
    ".xls": "legacy .xls workbooks cannot be read safely; save the sheet as .xlsx",
    ".xlsb": "binary .xlsb workbooks are not supported; save the sheet as .xlsx",
}


class UnsupportedFormatError(IngestError):
    code = "format_unsupported"


def resolve_format(declared: str | None, filename: str) -> str:
    """The declared format, else the one the file name's extension implies, else CSV."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in REFUSED_EXTENSIONS:
        raise UnsupportedFormatError(REFUSED_EXTENSIONS[suffix], filename=filename)
    name = (declared or EXTENSIONS.get(suffix, "csv")).lower()
    if name == "ndjson":
        name = "jsonl"
    if name not in SOURCES:
        raise UnsupportedFormatError(
            f"format {name!r} is not supported; use one of {', '.join(sorted(SOURCES))}",
            format=name,
        )
    return name


def source_for(fmt: str, *, sheet: str | None = None, header_row: int | None = None) -> Source:
    source = SOURCES[fmt]
    if isinstance(source, XlsxSource) and (sheet is not None or header_row is not None):
        return dataclasses.replace(source, sheet=sheet, header_row=header_row)
    return source


__all__ = [
    "EXTENSIONS",
    "SOURCES",
    "TEXT_FORMATS",
    "CsvSource",
    "JsonLinesSource",
    "OpenSource",
    "ParquetSource",
    "Source",
    "SourceOptions",
    "UnsupportedFormatError",
    "XlsxSource",
    "normalise_header",
    "resolve_format",
    "source_for",
]
