"""JSON Lines uploads: one JSON object per line, read as all-string record batches.

The file is read ``chunk_bytes`` at a time and split on ``\\n`` (UTF-8 never has a
0x0A byte inside a multi-byte character, so each line decodes on its own). Each line is
decoded strictly as UTF-8 (a BOM at the start of the file is dropped) and parsed with
the standard library's ``json``; a line over ``max_record_bytes`` is refused before it
is parsed, whatever its content. Blank lines are skipped.

Values become text so that the contract's typing step decides validity: numbers
exactly as written (``1.50`` stays ``1.50``, ``1e3`` stays ``1e3``), booleans
``true``/``false``, strings unchanged, ``null`` and missing keys as null. ``NaN`` and
``Infinity`` (accepted by Python's parser, not by JSON) and duplicate keys are refused.

Nested objects and arrays are refused with the line and key rather than serialised to
JSON text: every contract type is a scalar, and the text of a nested value depends on
the writer (key order, spacing, escapes), so storing it would accept data nobody can
validate or query reliably. A partner who means text sends a JSON string.

Headers are the union of the keys of the first batch (``batch_rows`` records or
``batch_bytes`` of lines, whichever comes first), in order of first appearance. A key
first seen after that batch raises ``MalformedFileError`` naming its line.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import pyarrow as pa

from ingest.errors import (
    EmptyFileError,
    EncodingError,
    MalformedFileError,
    UnsupportedEncodingError,
)
from ingest.sources.base import ReaderBase, SourceOptions, check_unique_headers

ACCEPTED_ENCODINGS = ("utf-8", "utf-8-sig")

Record = dict[str, str | None]


class _Object(list[tuple[str, Any]]):
    """A JSON object as parsed: its key/value pairs in file order (duplicates kept)."""


@dataclass(frozen=True)
class JsonLinesSource:
    """``Source`` for JSON Lines (``.jsonl``/``.ndjson``). Always UTF-8."""

    batch_rows: int = 8192
    batch_bytes: int = 8 << 20

    def open(self, path: Path, options: SourceOptions) -> JsonLinesReader:
        return JsonLinesReader(path, options, self)


class JsonLinesReader(ReaderBase):
    """One opened JSON Lines file; iterate it for ``pyarrow.RecordBatch`` of strings."""

    def __init__(self, path: Path, options: SourceOptions, source: JsonLinesSource) -> None:
        self._label = path.name
        self._options = options
        self._source = source
        _check_encoding(options.encoding)
        self.total_bytes = path.stat().st_size
        self._check_size(self._label, self.total_bytes, options)
        self.bytes_read = 0
        self._file: BinaryIO = path.open("rb")
        try:
            self._lines = self._read_lines()
            first = self._next_records()
            if not first:
                raise EmptyFileError(file=self._label, has_header=False)
            self.headers = self._union_of_keys(first)
            self._check_headers()
        except BaseException:
            self.close()
            raise
        self._known = set(self.headers)
        self._pending: list[tuple[int, Record]] | None = first

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._pending is not None:
            records, self._pending = self._pending, None
        else:
            records = self._next_records()
            for line, record in records:
                self._check_known_keys(line, record)
        if not records:
            raise StopIteration
        columns = [
            pa.array([record.get(h) for _line, record in records], pa.string())
            for h in self.headers
        ]
        return pa.RecordBatch.from_arrays(columns, names=self.headers)

    def close(self) -> None:
        self._file.close()

    # -- reading lines -------------------------------------------------------------------

    def _read_lines(self) -> Iterator[tuple[int, int, bytes]]:
        """``(line number, byte offset, bytes without the newline)``; never a line over the cap."""
        limit = self._options.max_record_bytes
        buffer, offset, number = b"", 0, 0
        while chunk := self._file.read(self._options.chunk_bytes):
            self.bytes_read += len(chunk)
            buffer = buffer + chunk if buffer else chunk
            start = 0
            while (end := buffer.find(b"\n", start)) != -1:
                number += 1
                if end - start > limit:
                    raise self._line_too_long(number)
                yield number, offset + start, buffer[start:end]
                start = end + 1
            buffer, offset = buffer[start:], offset + start
            if len(buffer) > limit:
                raise self._line_too_long(number + 1)
        if buffer:
            yield number + 1, offset, buffer

    def _next_records(self) -> list[tuple[int, Record]]:
        """The next batch: up to ``batch_rows`` records or ``batch_bytes`` of lines."""
        records: list[tuple[int, Record]] = []
        size = 0
        for number, offset, raw in self._lines:
            record = self._parse(number, offset, raw)
            if record is None:
                continue
            records.append((number, record))
            size += len(raw)
            if len(records) >= self._source.batch_rows or size >= self._source.batch_bytes:
                break
        return records

    # -- parsing one line ----------------------------------------------------------------

    def _parse(self, number: int, offset: int, raw: bytes) -> Record | None:
        text = self._decode(number, offset, raw)
        if not text.strip():
            return None
        try:
            parsed = json.loads(
                text,
                object_pairs_hook=_Object,
                parse_int=str,
                parse_float=str,
                parse_constant=_reject_constant,
            )
        except RecursionError:
            raise self._malformed("nested_value", "values are nested too deeply", number) from None
        except ValueError as exc:
            raise self._malformed(
                "parse_error", f"not valid JSON: {_reason(exc)}", number
            ) from None
        if not isinstance(parsed, _Object):
            kind = "an array" if isinstance(parsed, list) else "a single value"
            raise self._malformed("not_an_object", f"expected a JSON object, found {kind}", number)
        record: Record = {}
        for key, value in parsed:
            self._check_text(key, number, key)
            if key in record:
                raise self._malformed("duplicate_key", f"key {key!r} appears twice", number)
            record[key] = self._text(value, number, key)
        return record

    def _decode(self, number: int, offset: int, raw: bytes) -> str:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError(
                file=self._label,
                encoding="utf-8",
                offset=offset + exc.start,
                line=number,
                bad_bytes=raw[exc.start : max(exc.end, exc.start + 4)],
            ) from None
        return text[1:] if number == 1 and text.startswith("\ufeff") else text

    def _text(self, value: Any, number: int, key: str) -> str | None:
        if value is None:
            return None
        if value is True or value is False:
            return "true" if value else "false"
        if isinstance(value, list):  # an array, or a nested object (_Object is a list)
            kind = "an object" if isinstance(value, _Object) else "an array"
            raise self._malformed(
                "nested_value",
                f"the value of key {key!r} is {kind}; only strings, numbers, booleans and "
                "null are accepted (flatten it into separate keys)",
                number,
                column=key,
            )
        text = str(value)  # strings, and numbers kept as written by parse_int/parse_float
        self._check_text(text, number, key)
        return text

    def _check_text(self, text: str, number: int, key: str) -> None:
        """Size cap in UTF-8 bytes; lone surrogates (``"\\ud800"``) are not text."""
        try:
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise self._malformed(
                "invalid_text",
                f"key {key!r} holds an unpaired surrogate escape (\\ud800-\\udfff)",
                number,
                column=key,
            ) from None
        limit = self._options.max_cell_bytes
        if size > limit:
            raise self._malformed(
                "cell_too_large",
                f"the value of key {key!r} is {size} bytes, over the limit of {limit}",
                number,
                column=key,
            )

    # -- headers -------------------------------------------------------------------------

    def _union_of_keys(self, records: list[tuple[int, Record]]) -> list[str]:
        headers: dict[str, None] = {}
        for number, record in records:
            headers.update(dict.fromkeys(record))
            if len(headers) > self._options.max_columns:
                raise self._malformed(
                    "too_many_columns",
                    f"{len(headers)} distinct keys, over the limit of {self._options.max_columns}",
                    number,
                )
        if not headers:
            raise self._malformed("no_columns", "the objects have no keys", records[0][0])
        return list(headers)

    def _check_headers(self) -> None:
        check_unique_headers(self._label, self.headers)

    def _check_known_keys(self, number: int, record: Record) -> None:
        unknown = [key for key in record if key not in self._known]
        if unknown:
            raise self._malformed(
                "unknown_key",
                f"key {unknown[0]!r} does not appear in the first batch of records (up to "
                f"{self._source.batch_rows}), whose keys define the columns; give every "
                "record the same keys (null when there is no value)",
                number,
                column=unknown[0],
            )

    # -- errors --------------------------------------------------------------------------

    def _line_too_long(self, number: int) -> MalformedFileError:
        return self._malformed(
            "record_too_large",
            f"the line is longer than {self._options.max_record_bytes} bytes",
            number,
        )

    def _malformed(self, reason: str, detail: str, line: int, **extra: Any) -> MalformedFileError:
        """``MalformedFileError`` whose message names JSON Lines (its class text says CSV)."""
        error = MalformedFileError(
            file=self._label, reason=reason, detail=detail, line=line, format="jsonl", **extra
        )
        error.message = error.message.replace("malformed CSV", "malformed JSON Lines", 1)
        error.args = (error.message,)
        return error


def _check_encoding(encoding: str) -> None:
    try:
        canonical = codecs.lookup(encoding).name
    except LookupError:
        canonical = encoding.lower()
    if canonical not in ACCEPTED_ENCODINGS:
        raise UnsupportedEncodingError(encoding, list(ACCEPTED_ENCODINGS))


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value (write null, or the number as a string)")


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc)
