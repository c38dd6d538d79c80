"""The source plug-in interface: turn an uploaded file into batches of text columns.

A source never infers types: every column it yields is ``pyarrow.string()``, named
by the file's own header text, in file order. Typing is the contract's job
(``ingest.transform``). Adding a format means adding a module beside this one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import pyarrow as pa

from ingest.errors import FileTooLargeError, HeaderMismatchError

MAX_COLUMNS = 1000


@dataclass(frozen=True)
class SourceOptions:
    """How to read one upload. Limits are enforced by the source while streaming."""

    encoding: str = "utf-8"
    delimiter: str = ","
    quote_char: str = '"'
    max_columns: int = MAX_COLUMNS
    max_cell_bytes: int = 256 << 10
    max_record_bytes: int = 512 << 10
    max_file_bytes: int | None = None
    chunk_bytes: int = 512 << 10


class OpenSource(Protocol):
    """An opened upload: an iterator of all-string record batches plus what was read so far."""

    @property
    def headers(self) -> list[str]:
        """The header row as written in the file (BOM removed, otherwise untouched)."""
        ...

    @property
    def bytes_read(self) -> int:
        """Bytes of the original file consumed so far (for progress)."""
        ...

    @property
    def total_bytes(self) -> int: ...

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...

    def __next__(self) -> pa.RecordBatch: ...

    def close(self) -> None: ...

    def __enter__(self) -> OpenSource: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Source(Protocol):
    """A file format. ``open`` validates the header and limits, then streams batches."""

    def open(self, path: Path, options: SourceOptions) -> OpenSource: ...


def normalise_header(header: str) -> str:
    """The form used to *match* headers: NFKC (full-width → ASCII etc.) and stripped."""
    return unicodedata.normalize("NFKC", header).strip()


def check_unique_headers(label: str, headers: list[str]) -> None:
    """Headers must stay distinct after NFKC normalisation (``ＩＤ`` and ``ID`` collide)."""
    seen: set[str] = set()
    duplicated = []
    for header in headers:
        key = normalise_header(header)
        if key in seen:
            duplicated.append(header)
        seen.add(key)
    if duplicated:
        raise HeaderMismatchError(file=label, duplicated=duplicated)


class ReaderBase:
    """What every reader shares: the size check on open and context-manager plumbing."""

    def _check_size(self, label: str, total_bytes: int, options: SourceOptions) -> None:
        if options.max_file_bytes is not None and total_bytes > options.max_file_bytes:
            raise FileTooLargeError(file=label, size=total_bytes, limit=options.max_file_bytes)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
