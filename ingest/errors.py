"""The ingest package's exception tree.

``IngestError`` is the root; every class below it is ``Terminal``: the same file
with the same options fails the same way, so a retry loop must not retry it.
Each carries structured attributes (``attrs()``) and a message that says what
the provider should do next. Row-level problems are *not* exceptions: they are
quarantined as data (``ingest.writers.QuarantineWriter``).

Class names follow STYLE N6 (``...Error``); the short names used in the design
brief (``HeaderMismatch``, ``MalformedFile``, ...) are kept as aliases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog.errors import PlatformError, Terminal

ENCODING_HINT = (
    "declare the file's encoding, e.g. encoding=gbk (Simplified-Chinese Excel), "
    "encoding=big5hkscs (Hong Kong) or encoding=utf-8-sig (Excel 'CSV UTF-8')"
)


def _listing(values: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values) - limit} more)"
    return shown


class IngestError(PlatformError):
    """Root of the ingest package's errors."""

    code = "ingest_error"


class ContractError(IngestError, Terminal):
    """The data contract cannot be applied (e.g. an allowed value that is not of the column's
    type)."""

    code = "contract_invalid"

    def __init__(self, column: str, problem: str) -> None:
        super().__init__(
            f"data contract column {column!r}: {problem}; fix the contract and upload again",
            column=column,
            problem=problem,
        )
        self.column = column


class ValidationEngineError(IngestError, Terminal):
    """An expectation crashed inside Great Expectations instead of returning a result."""

    code = "validation_engine_failed"

    def __init__(self, *, expectation: str, column: str | None, message: str) -> None:
        super().__init__(
            f"expectation {expectation} on column {column!r} could not be evaluated: {message}; "
            "check the data contract rule (e.g. its pattern) and report it if it looks valid",
            expectation=expectation,
            column=column,
            detail=message,
        )


class UnsupportedEncodingError(IngestError, Terminal):
    code = "encoding_unsupported"

    def __init__(self, encoding: str, supported: Sequence[str]) -> None:
        super().__init__(
            f"encoding {encoding!r} is not accepted; use one of: {', '.join(supported)}",
            encoding=encoding,
            supported=list(supported),
        )
        self.encoding = encoding


class EncodingError(IngestError, Terminal):
    """A byte sequence is not valid in the declared encoding (never replaced silently)."""

    code = "encoding_invalid"

    def __init__(
        self,
        *,
        encoding: str,
        offset: int,
        file: str | None = None,
        line: int | None = None,
        bad_bytes: bytes | None = None,
    ) -> None:
        shown = f"bytes {bad_bytes.hex(' ')}" if bad_bytes else "the bytes"
        where = f"byte offset {offset}" + (f" (line {line})" if line is not None else "")
        super().__init__(
            f"{file or 'upload'}: {shown} at {where} are not valid {encoding}; {ENCODING_HINT}",
            file=file,
            encoding=encoding,
            offset=offset,
            line=line,
            bad_bytes=bad_bytes.hex(" ") if bad_bytes else None,
            hint=ENCODING_HINT,
        )
        self.file = file
        self.encoding = encoding
        self.offset = offset
        self.line = line


class HeaderMismatchError(IngestError, Terminal):
    """The file's header row does not match the contract's source headers."""

    code = "header_mismatch"

    def __init__(
        self,
        *,
        file: str,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        duplicated: Sequence[str] = (),
    ) -> None:
        problems = []
        if missing:
            problems.append(f"missing {_listing(missing)}")
        if unexpected:
            problems.append(f"unexpected {_listing(unexpected)}")
        if duplicated:
            problems.append(f"duplicated {_listing(duplicated)}")
        super().__init__(
            f"{file}: header row does not match the data contract: {'; '.join(problems)}; "
            "rename the columns in the file or update the contract's 'source' headers",
            file=file,
            missing=list(missing),
            unexpected=list(unexpected),
            duplicated=list(duplicated),
        )
        self.file = file
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.duplicated = list(duplicated)


class MalformedFileError(IngestError, Terminal):
    """The file is not well-formed CSV (ragged row, unbalanced quote, oversized record...).

    ``reason`` is a short code; ``line`` is the 1-based physical line where the bad
    record starts and ``row`` its 1-based data-row number, when known.
    """

    code = "file_malformed"

    def __init__(
        self,
        *,
        file: str,
        reason: str,
        detail: str,
        line: int | None = None,
        row: int | None = None,
        **extra: Any,
    ) -> None:
        where = f" on line {line}" if line is not None else ""
        if row is not None:
            where += f" (data row {row})"
        super().__init__(
            f"{file}: malformed CSV{where}: {detail}; fix the file and upload it again",
            file=file,
            reason=reason,
            detail=detail,
            line=line,
            row=row,
            **extra,
        )
        self.file = file
        self.reason = reason
        self.line = line
        self.row = row


class EmptyFileError(IngestError, Terminal):
    code = "file_empty"

    def __init__(self, *, file: str | None = None, has_header: bool = False) -> None:
        what = "has a header row but no data rows" if has_header else "is empty"
        super().__init__(
            f"{file or 'upload'} {what}; upload a file with at least one data row",
            file=file,
            has_header=has_header,
        )
        self.file = file


class FileTooLargeError(IngestError, Terminal):
    code = "file_too_large"

    def __init__(self, *, size: int, limit: int, file: str | None = None) -> None:
        super().__init__(
            f"{file or 'upload'} is {size} bytes, over the limit of {limit} bytes; split it into "
            "smaller uploads",
            file=file,
            size=size,
            limit=limit,
        )
        self.size = size
        self.limit = limit


class TooManyRejectedRowsError(IngestError, Terminal):
    """More rows failed validation than the dataset's error budget allows.

    The quarantine file is complete when this is raised, so the provider can see why.
    """

    code = "too_many_rejected_rows"

    def __init__(
        self,
        *,
        file: str,
        rows_read: int,
        rows_rejected: int,
        limit: float,
        quarantine_path: str | None,
    ) -> None:
        ratio = rows_rejected / rows_read if rows_read else 0.0
        super().__init__(
            f"{file}: {rows_rejected} of {rows_read} rows ({ratio:.2%}) failed validation, "
            f"over the limit of {limit:.2%}; see the quarantine report for the reason per row, "
            "fix the file and upload it again",
            file=file,
            rows_read=rows_read,
            rows_rejected=rows_rejected,
            ratio=ratio,
            limit=limit,
            quarantine_path=quarantine_path,
        )
        self.rows_read = rows_read
        self.rows_rejected = rows_rejected
        self.ratio = ratio
        self.limit = limit
        self.quarantine_path = quarantine_path


# Short names used by the design brief and by callers written against it.
HeaderMismatch = HeaderMismatchError
MalformedFile = MalformedFileError
EmptyFile = EmptyFileError
FileTooLarge = FileTooLargeError
TooManyErrors = TooManyRejectedRowsError
