"""CSV and TSV uploads, in any of the encodings partners really send.

The bytes are decoded to Unicode *before* any CSV parsing (Big5 and GBK trail
bytes can be 0x5C, a backslash; DOMAIN.md §3.1), strictly and incrementally: an
undecodable byte raises ``EncodingError`` with its byte offset, never a
replacement character. The decoded text is re-encoded as UTF-8 with the BOM
removed and newlines normalised to ``\\n``, and streamed through
``pyarrow.csv.open_csv`` with the delimiter and quoting pinned (nothing is
sniffed) and every column read as a string. Memory is bounded by a few blocks,
whatever the file size.

Problems the parser reports (ragged rows, records over the size cap) and an odd
number of quote characters at the end of the file are turned into
``MalformedFileError`` naming the line; the line is found by re-scanning the
file with the standard library's ``csv`` module, which only happens on that
error path.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ingest.errors import (
    EmptyFileError,
    EncodingError,
    MalformedFileError,
    UnsupportedEncodingError,
)
from ingest.sources.base import ReaderBase, SourceOptions, check_unique_headers

# Declared encodings we accept (Python codec names after codecs.lookup). GB2312 is
# read as GBK, its superset, because GB2312-labelled files routinely contain GBK-only
# characters (DOMAIN.md §3.1).
SUPPORTED_ENCODINGS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
    "gbk": "gbk",
    "gb2312": "gbk",
    "gb18030": "gb18030",
    "big5": "big5",
    "cp950": "cp950",
    "big5hkscs": "big5hkscs",
}

_RAGGED = re.compile(r"(?:Row #(\d+): )?Expected (\d+) columns, got (\d+)")


def resolve_encoding(name: str) -> str:
    """Map a declared encoding to the codec used to read it, or raise."""
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        canonical = name.lower()
    codec = SUPPORTED_ENCODINGS.get(canonical)
    if codec is None:
        raise UnsupportedEncodingError(name, sorted(SUPPORTED_ENCODINGS))
    return codec


class Utf8Transcoder(io.RawIOBase):
    """A read-only binary stream: the file's bytes decoded strictly, as normalised UTF-8.

    Reads ``chunk_bytes`` of the original file at a time. Counts the original bytes
    consumed, the newlines and the quote characters emitted.
    """

    def __init__(self, path: Path, encoding: str, *, chunk_bytes: int, quote_char: str) -> None:
        super().__init__()
        self._file: BinaryIO = path.open("rb")
        self._label = path.name
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._chunk_bytes = chunk_bytes
        self._quote_char = quote_char
        self._buf = b""
        self._pos = 0
        self._at_start = True
        self._held_cr = False
        self._eof = False
        self.bytes_read = 0
        self.newlines = 0
        self.quotes = 0
        self.error: EncodingError | None = None
        quote = quote_char.encode("utf-8")
        self._quote_byte = quote
        # UTF-8 in, UTF-8 out: bytes pass through unless a CR needs normalising
        self._passthrough = encoding == "utf-8" and len(quote) == 1

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        """Exactly ``size`` bytes unless the file ends first (pyarrow's CSV block reader
        takes a short read without a newline for a record longer than the block)."""
        if size is None or size < 0:
            return self.readall()
        pieces: list[bytes] = []
        wanted = size
        while wanted > 0:
            if self._pos >= len(self._buf):
                if self._eof:
                    break
                self._fill()
                continue
            if self._pos == 0 and wanted >= len(self._buf):
                piece = self._buf
            else:
                piece = self._buf[self._pos : self._pos + wanted]
            self._pos += len(piece)
            wanted -= len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def read_buffer(self, size: int) -> pa.Buffer:
        """``read`` into Arrow-allocated memory (pyarrow prefers this method when present).

        pyarrow's CSV reader keeps a read-ahead queue of blocks; holding them as Python
        ``bytes`` left the C heap fragmented (~+80 MB RSS), Arrow's pool returns them.
        """
        data = self.read(size)
        buffer = pa.allocate_buffer(len(data))
        memoryview(buffer).cast("B")[:] = data
        return buffer

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(self._chunk_bytes), b""))

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()

    def _fill(self) -> None:
        data = self._file.read(self._chunk_bytes)
        final = not data
        pending = self._decoder.getstate()[0]
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            self.error = self._encoding_error(exc, self.bytes_read - len(pending))
            raise self.error from None
        self.bytes_read += len(data)
        if self._passthrough and not self._held_cr:
            consumed = pending + data if pending else data
            held = len(self._decoder.getstate()[0])
            raw = consumed[: len(consumed) - held] if held else consumed
            if b"\r" not in raw:
                self._emit_utf8(raw, final)
                return
        if self._at_start and text:
            self._at_start = False
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._held_cr:
            text = "\r" + text
            self._held_cr = False
        if not final and text.endswith("\r"):
            text = text[:-1]
            self._held_cr = True
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.newlines += text.count("\n")
        self.quotes += text.count(self._quote_char)
        self._buf = text.encode("utf-8")
        self._pos = 0
        self._eof = final

    def _emit_utf8(self, raw: bytes, final: bool) -> None:
        """``_fill`` for UTF-8 input without carriage returns: the decoded text would
        re-encode to exactly the bytes consumed, so those pass through as they are (the
        strict decode above still validated them). Saves an encode and two ``str`` scans
        per chunk, about 3 CPU seconds per GiB."""
        if self._at_start and raw:
            self._at_start = False
            if raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
        self.newlines += raw.count(b"\n")
        self.quotes += raw.count(self._quote_byte)
        self._buf = raw
        self._pos = 0
        self._eof = final

    def _encoding_error(self, exc: UnicodeDecodeError, object_offset: int) -> EncodingError:
        before = exc.object[: exc.start]
        prefix = before.decode(self._encoding, errors="replace")
        prefix = prefix.replace("\r\n", "\n").replace("\r", "\n")
        return EncodingError(
            file=self._label,
            encoding=self._encoding,
            offset=object_offset + exc.start,
            line=self.newlines + prefix.count("\n") + 1,
            bad_bytes=exc.object[exc.start : max(exc.end, exc.start + 4)],
        )


class CsvReader(ReaderBase):
    """One opened CSV/TSV file; iterate it for ``pyarrow.RecordBatch`` of strings."""

    def __init__(self, path: Path, options: SourceOptions) -> None:
        self._path = path
        self._options = options
        self._label = path.name
        self._encoding = resolve_encoding(options.encoding)
        self.total_bytes = path.stat().st_size
        self._check_size(self._label, self.total_bytes, options)
        self._rows = 0
        self.headers = self._read_headers()
        self._check_headers()
        self._transcoder = self._new_transcoder()
        self._reader = self._open_arrow(self._transcoder, self.headers)
        self._check_arrow_schema()

    @property
    def bytes_read(self) -> int:
        return self._transcoder.bytes_read

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        try:
            batch = self._reader.read_next_batch()
        except StopIteration:
            self._check_quotes_balanced()
            raise
        except pa.ArrowException as exc:
            raise self._translate(exc) from None
        self._check_cell_sizes(batch)
        self._rows += batch.num_rows
        return batch

    def close(self) -> None:
        self._transcoder.close()

    # -- opening -----------------------------------------------------------------------

    def _new_transcoder(self) -> Utf8Transcoder:
        return Utf8Transcoder(
            self._path,
            self._encoding,
            chunk_bytes=self._options.chunk_bytes,
            quote_char=self._options.quote_char,
        )

    def _open_arrow(self, stream: Utf8Transcoder, headers: list[str]) -> pa_csv.CSVStreamingReader:
        opts = self._options
        convert = pa_csv.ConvertOptions(
            column_types=dict.fromkeys(headers, pa.string()),
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        try:
            return pa_csv.open_csv(
                stream,
                read_options=pa_csv.ReadOptions(
                    block_size=opts.max_record_bytes, use_threads=False, encoding="utf8"
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=opts.delimiter,
                    quote_char=opts.quote_char,
                    double_quote=True,
                    escape_char=False,
                    newlines_in_values=True,
                    ignore_empty_lines=True,
                ),
                convert_options=convert,
            )
        except pa.ArrowException as exc:
            stream.close()
            raise self._translate(exc, stream) from None

    def _read_headers(self) -> list[str]:
        """The first record, read with the stdlib csv module (pyarrow then re-reads it and
        must agree, see ``_check_arrow_schema``)."""
        try:
            with closing(_records(self._new_transcoder, self._options, strict=False)) as records:
                for _line, record in records:
                    if record:
                        return record
        except _ScanError as exc:
            raise MalformedFileError(
                file=self._label, reason="parse_error", detail=str(exc), line=exc.line
            ) from None
        raise EmptyFileError(file=self._label, has_header=False)

    def _check_arrow_schema(self) -> None:
        schema = self._reader.schema
        if schema.names != self.headers or any(t != pa.string() for t in schema.types):
            self.close()
            raise MalformedFileError(
                file=self._label,
                reason="parse_error",
                detail="the header row could not be read consistently; check its quoting",
                line=1,
            )

    def _check_headers(self) -> None:
        if len(self.headers) > self._options.max_columns:
            raise MalformedFileError(
                file=self._label,
                reason="too_many_columns",
                detail=f"{len(self.headers)} columns, over the limit of "
                f"{self._options.max_columns}",
                line=1,
            )
        check_unique_headers(self._label, self.headers)

    # -- checks while streaming --------------------------------------------------------

    def _check_cell_sizes(self, batch: pa.RecordBatch) -> None:
        limit = self._options.max_cell_bytes
        for index, column in enumerate(batch.columns):
            data = column.buffers()[2]
            if data is None or data.size <= limit:
                continue  # the whole column's text fits in one cell's limit
            lengths = pc.binary_length(column)
            longest = pc.max(lengths).as_py()
            if longest is not None and longest > limit:
                position = pc.index(pc.greater(lengths, limit), True).as_py()
                raise MalformedFileError(
                    file=self._label,
                    reason="cell_too_large",
                    detail=f"a value in column {self.headers[index]!r} is {longest} bytes, "
                    f"over the limit of {limit} (often an unbalanced quote)",
                    row=self._rows + position + 1,
                    column=self.headers[index],
                )

    def _check_quotes_balanced(self) -> None:
        if self._transcoder.quotes % 2 == 0:
            return
        located = _find_quote_problem(self._new_transcoder, self._options)
        if located is not None:
            line, message = located
            raise MalformedFileError(
                file=self._label,
                reason="unbalanced_quote",
                detail=f"the quoted value starting on this line is not closed ({message})",
                line=line,
            )

    # -- error translation -------------------------------------------------------------

    def _translate(self, exc: BaseException, stream: Utf8Transcoder | None = None) -> Exception:
        stream = stream or self._transcoder
        if stream.error is not None:
            return stream.error
        message = str(exc)
        if "Empty CSV file" in message:
            return EmptyFileError(file=self._label, has_header=False)
        ragged = _RAGGED.search(message)
        if ragged is not None:
            expected, actual = int(ragged.group(2)), int(ragged.group(3))
            line, row = _find_ragged_record(self._new_transcoder, self._options, expected)
            return MalformedFileError(
                file=self._label,
                reason="ragged_row",
                detail=f"expected {expected} fields, found {actual}",
                line=line,
                row=row if row is not None or ragged.group(1) is None else int(ragged.group(1)) - 1,
                expected_fields=expected,
                actual_fields=actual,
            )
        if "straddling object" in message:
            return MalformedFileError(
                file=self._label,
                reason="record_too_large",
                detail=f"a record is longer than {self._options.max_record_bytes} bytes "
                "(often an unbalanced quote)",
            )
        return MalformedFileError(file=self._label, reason="parse_error", detail=message)


class CsvSource:
    """``Source`` for delimited text (CSV, TSV: pass ``delimiter="\\t"``)."""

    def open(self, path: Path, options: SourceOptions) -> CsvReader:
        return CsvReader(path, options)


# -- locating problems (error path only) -------------------------------------------------

StreamFactory = Callable[[], Utf8Transcoder]


class _ScanError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _records(
    new_stream: StreamFactory, options: SourceOptions, *, strict: bool
) -> Generator[tuple[int, list[str]], None, None]:
    """Yield ``(start line, fields)`` per record with the stdlib csv module.

    Raises ``_ScanError`` naming the start line of a record the csv module rejects.
    """
    text = io.TextIOWrapper(io.BufferedReader(new_stream()), encoding="utf-8", newline="")
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(max(previous_limit, options.max_record_bytes))
    try:
        reader = csv.reader(
            text,
            delimiter=options.delimiter,
            quotechar=options.quote_char,
            doublequote=True,
            strict=strict,
        )
        consumed = 0
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _ScanError(consumed + 1, str(exc)) from None
            yield consumed + 1, record
            consumed = reader.line_num
    finally:
        csv.field_size_limit(previous_limit)
        text.close()


def _find_ragged_record(
    new_stream: StreamFactory, options: SourceOptions, expected: int
) -> tuple[int | None, int | None]:
    """The start line and data-row number of the first record with the wrong field count."""
    row = 0
    try:
        for line, record in _records(new_stream, options, strict=False):
            if not record:
                continue  # a blank line is not a record (pyarrow skips it too)
            if row > 0 and len(record) != expected:
                return line, row
            row += 1
    except _ScanError:
        pass
    return None, None


def _find_quote_problem(
    new_stream: StreamFactory, options: SourceOptions
) -> tuple[int, str] | None:
    """The start line of the record whose quoting is broken, if strict parsing finds one."""
    try:
        for _record in _records(new_stream, options, strict=True):
            pass
    except _ScanError as exc:
        return exc.line, str(exc)
    return None
