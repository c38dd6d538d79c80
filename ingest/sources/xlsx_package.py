"""The OOXML package of an uploaded workbook, checked before openpyxl parses anything.

Zip entry count, declared and actual uncompressed sizes and ratios, macros, external
links and embedded objects (``ArchiveInspector``), and a streaming scan of each row's
XML size (``_RowScan``): openpyxl holds a whole row in memory, so rows are bounded first.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from defusedxml import ElementTree as SafeElementTree

from ingest.errors import (
    MalformedFileError,
)
from ingest.sources.base import SourceOptions

if TYPE_CHECKING:
    from ingest.sources.xlsx import XlsxSource

_EOCD = b"PK\x05\x06"
_EOCD_FORMAT = "<4s4H2LH"
_ZIP64_LOCATOR = b"PK\x06\x07"
_CONTENT_TYPES = "[Content_Types].xml"
_FORBIDDEN_PARTS = (
    ("vbaproject", "macros (VBA project); save it as .xlsx, not .xlsm"),
    ("xl/externallinks/", "links to other workbooks or DDE; break the links and save again"),
    ("xl/embeddings/", "embedded objects; remove them and save again"),
    ("xl/activex/", "ActiveX controls; remove them and save again"),
)
_FORBIDDEN_TYPES = (
    ("macroenabled", "macros (macro-enabled workbook); save it as .xlsx, not .xlsm"),
    ("vbaproject", "macros (VBA project); save it as .xlsx, not .xlsm"),
    ("externallink", "links to other workbooks or DDE; break the links and save again"),
    ("oleobject", "embedded objects; remove them and save again"),
    ("activex", "ActiveX controls; remove them and save again"),
)
_MARKUP = re.compile(rb"<(/?)(?:[A-Za-z_][\w.-]*:)?(row|sheetData)[\s/>]|<!|<\?")
_SCAN_OVERLAP = 256


# -- the zip, before parsing -----------------------------------------------------------


class ArchiveInspector:
    """Checks the zip container of a workbook; ``inspect`` returns its uncompressed size."""

    def __init__(
        self, path: Path, total_bytes: int, options: SourceOptions, source: XlsxSource
    ) -> None:
        self._path = path
        self._label = path.name
        self._total_bytes = total_bytes
        self._options = options
        self._source = source

    def inspect(self) -> int:
        self._check_directory_record()
        try:
            with zipfile.ZipFile(self._path) as archive:
                infos = archive.infolist()
                self._check_entries(infos)
                self._check_content_types(archive)
                return self._measure(archive, infos)
        except (zipfile.BadZipFile, zlib.error, struct.error, EOFError, OSError, ValueError) as exc:
            raise self._error("bad_zip", f"the zip container is damaged ({exc})") from None

    def _check_directory_record(self) -> None:
        with self._path.open("rb") as raw:
            raw.seek(max(self._total_bytes - (22 + 0xFFFF), 0))
            tail = raw.read()
        position = tail.rfind(_EOCD)
        if position < 0 or len(tail) - position < 22:
            raise self._error(
                "not_xlsx",
                "the file is not an .xlsx workbook (no zip directory); old .xls files and "
                "password-protected workbooks are not accepted, save it as .xlsx",
            )
        if position >= 20 and tail[position - 20 : position - 16] == _ZIP64_LOCATOR:
            raise self._error("bad_zip", "zip64 archives are not accepted for workbooks")
        fields = struct.unpack(_EOCD_FORMAT, tail[position : position + 22])
        entries, directory_bytes = fields[4], fields[5]
        if entries > self._source.max_entries or directory_bytes > self._source.max_entries * 1024:
            raise self._error(
                "too_many_entries",
                f"the zip lists {entries} entries ({directory_bytes} bytes of directory), "
                f"over the limit of {self._source.max_entries}",
            )

    def _check_entries(self, infos: list[zipfile.ZipInfo]) -> None:
        source = self._source
        if len(infos) > source.max_entries:
            raise self._error("too_many_entries", f"the zip holds {len(infos)} entries")
        if len({info.filename for info in infos}) != len(infos):
            raise self._error("bad_zip", "an entry name appears twice in the zip")
        declared = 0
        for info in infos:
            self._check_entry(info)
            declared += info.file_size
        if declared > source.max_uncompressed_bytes:
            raise self._error(
                "too_large_uncompressed",
                f"the entries declare {declared} bytes uncompressed, over the limit of "
                f"{source.max_uncompressed_bytes}",
            )
        if declared > source.ratio_floor_bytes and declared > source.max_ratio * self._total_bytes:
            raise self._error(
                "too_compressed",
                f"{declared} bytes uncompressed from a {self._total_bytes}-byte file "
                f"is over the {source.max_ratio:g}:1 limit",
            )

    def _check_entry(self, info: zipfile.ZipInfo) -> None:
        name, source = info.filename.lower(), self._source
        for marker, what in _FORBIDDEN_PARTS:
            if marker in name:
                raise self._error("forbidden_content", f"the workbook contains {what}")
        if info.flag_bits & 0x1:
            raise self._error("encrypted", f"zip entry {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self._error(
                "bad_zip", f"zip entry {info.filename!r} uses compression {info.compress_type}"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > source.ratio_floor_bytes and ratio > source.max_ratio:
            raise self._error(
                "too_compressed",
                f"zip entry {info.filename!r} expands {ratio:.0f}:1 "
                f"({info.compress_size} → {info.file_size} bytes), over {source.max_ratio:g}:1",
            )

    def _check_content_types(self, archive: zipfile.ZipFile) -> None:
        try:
            info = archive.getinfo(_CONTENT_TYPES)
        except KeyError:
            raise self._error("not_xlsx", "the zip has no [Content_Types].xml") from None
        if info.file_size > 1 << 20:
            raise self._error("too_large_uncompressed", "[Content_Types].xml is over 1 MiB")
        try:
            root = SafeElementTree.fromstring(archive.read(info))
        except Exception as exc:  # defusedxml raises its own classes for DTDs and entities
            raise self._error(
                "parse_error", f"[Content_Types].xml cannot be read ({describe_error(exc)})"
            ) from None
        for element in root.iter():
            content_type = str(element.get("ContentType", "")).lower()
            for marker, what in _FORBIDDEN_TYPES:
                if marker in content_type:
                    raise self._error("forbidden_content", f"the workbook contains {what}")

    def _measure(self, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> int:
        """Decompress every entry once, counting; returns the actual uncompressed total."""
        total = 0
        row_limit = 2 * self._options.max_record_bytes
        for info in infos:
            scan = _RowScan(info.filename, row_limit)
            with archive.open(info) as stream:
                while chunk := stream.read(1 << 20):
                    total += len(chunk)
                    if total > self._source.max_uncompressed_bytes:
                        raise self._error(
                            "too_large_uncompressed",
                            "the entries expand to more than "
                            f"{self._source.max_uncompressed_bytes} bytes",
                        )
                    self._check_scan(scan.feed(chunk))
            self._check_scan(scan.finish())
        return total

    def _check_scan(self, problem: str | None) -> None:
        if problem is not None:
            raise self._error("bad_sheet_xml", problem)

    def _error(self, reason: str, detail: str) -> MalformedFileError:
        return malformed(self._label, reason, detail)


class _RowScan:
    """Streams one zip entry and reports a ``<row>`` element longer than ``limit`` bytes.

    Every entry is scanned, whatever its name (the workbook's relationships, not the
    name, decide which part openpyxl reads as a sheet). A part with rows must not contain
    ``<!`` (DOCTYPE, comment, CDATA) or ``<?`` after the XML declaration: in well-formed
    XML without them, ``<`` only starts a tag, so the row tags found are the real ones.
    """

    def __init__(self, name: str, limit: int) -> None:
        self._name = name
        self._limit = limit
        self._tail = b""
        self._offset = 0
        self._last_match = -1
        self._row_start: int | None = None
        self._rows = 0
        self._suspicious = False

    def feed(self, data: bytes) -> str | None:
        window = self._tail + data
        base = self._offset - len(self._tail)
        for match in _MARKUP.finditer(window):
            start = base + match.start()
            if start <= self._last_match:
                continue  # seen in the previous window's overlap
            self._last_match = start
            problem = self._markup(match, start)
            if problem is not None:
                return problem
        self._offset += len(data)
        self._tail = window[-_SCAN_OVERLAP:]
        if self._row_start is not None and self._offset - self._row_start > self._limit:
            return self._too_long()
        return None

    def finish(self) -> str | None:
        return self._hidden_markup() if self._suspicious and self._rows else None

    def _markup(self, match: re.Match[bytes], start: int) -> str | None:
        token = match.group(0)
        if token == b"<!" or token == b"<?":
            self._suspicious = self._suspicious or token == b"<!" or start > 3
            return None
        if self._suspicious:
            return self._hidden_markup()
        closing, name = match.group(1), match.group(2)
        if name == b"row" and closing:
            return None
        if self._row_start is not None and start - self._row_start > self._limit:
            return self._too_long()
        if name == b"row":
            self._row_start = start
            self._rows += 1
        elif name == b"sheetData" and closing:
            self._row_start = None
        return None

    def _hidden_markup(self) -> str:
        return (
            f"{self._name} has rows and a DOCTYPE, comment, CDATA section or processing "
            "instruction, which Excel never writes; save the workbook again from Excel"
        )

    def _too_long(self) -> str:
        return (
            f"{self._name}: the XML of row element {self._rows} is over {self._limit} bytes "
            "(too many cells in one row)"
        )


def malformed(file: str, reason: str, detail: str, **extra: Any) -> MalformedFileError:
    """``MalformedFileError`` whose message names xlsx (its class text says CSV)."""
    error = MalformedFileError(file=file, reason=reason, detail=detail, format="xlsx", **extra)
    error.message = error.message.replace("malformed CSV", "malformed xlsx", 1)
    error.args = (error.message,)
    return error


def describe_error(exc: BaseException) -> str:
    """The innermost cause (openpyxl re-raises with a generic message naming the path)."""
    for _ in range(10):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"
