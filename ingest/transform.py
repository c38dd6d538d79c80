"""Typing and validating one batch of text columns against the data contract.

A batch goes through ``STEPS`` in order; each step has the signature
``(BatchState, TransformContext) -> BatchState`` (STYLE L4) and records row
problems as data in ``state.reasons`` instead of raising. A row with any reason
is rejected (quarantined by the caller); later steps only look at rows that are
still clean. Tests can run any sub-tuple of steps.

1. ``select_columns``: source columns → contract columns (headers are bound once per
   job by ``bind_columns``, which raises ``HeaderMismatchError``).
2. ``reject_control_characters``: NUL and other C0 controls (tab, CR, LF allowed).
3. ``parse_types``: empty string → null; integer, double, boolean, date and timestamp
   parsing with rule ``type`` and the raw value on failure. Nothing is trimmed.
4. ``check_primary_key``: duplicate keys across the whole file (first one wins).
5. ``check_expectations``: the GX suite on the typed values of the remaining rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest.contracts import ColumnContract, ColumnType, DataContract
from ingest.errors import HeaderMismatchError
from ingest.sources.base import normalise_header
from ingest.validate import ValidationSession, merge_results, to_frame, truncate

CONTROL_CHARACTERS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"
INTEGER_SYNTAX = r"^[+-]?[0-9]+$"
DOUBLE_SYNTAX = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
TRUE_WORDS = ["true", "1", "yes", "是"]
FALSE_WORDS = ["false", "0", "no", "否"]
DEFAULT_FORMATS: dict[str, tuple[str, ...]] = {
    "date": ("%Y-%m-%d",),
    "timestamp": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"),
}
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),  # Parquet has no second unit; ms is what it stores
}
_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Reason:
    """Why a row was rejected. ``column`` is the header as written in the file."""

    column: str
    rule: str
    expected: str
    actual: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "column": self.column,
            "rule": self.rule,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class ColumnBinding:
    """A contract column and where it sits in the file."""

    contract: ColumnContract
    header: str
    position: int

    @property
    def name(self) -> str:
        return self.contract.name


def bind_columns(headers: Sequence[str], contract: DataContract, file: str) -> list[ColumnBinding]:
    """Match the file's headers (NFKC, stripped) to the contract; every column, both ways."""
    by_key = {normalise_header(h): (i, h) for i, h in enumerate(headers)}
    wanted = {normalise_header(c.header): c for c in contract.columns}
    missing = [c.header for key, c in wanted.items() if key not in by_key]
    unexpected = [h for key, (_, h) in by_key.items() if key not in wanted]
    if missing or unexpected:
        raise HeaderMismatchError(file=file, missing=missing, unexpected=unexpected)
    return [ColumnBinding(c, by_key[key][1], by_key[key][0]) for key, c in wanted.items()]


def arrow_schema(contract: DataContract) -> pa.Schema:
    """The typed output schema; primary-key and non-nullable columns are ``not null``."""
    return pa.schema(
        [
            pa.field(
                c.name,
                ARROW_TYPES[c.type],
                nullable=c.nullable and c.name not in contract.primary_key,
            )
            for c in contract.columns
        ]
    )


class KeyTracker:
    """Primary-key hashes seen so far in the file: sorted uint64 runs, merged like an LSM.

    Costs 8 bytes per accepted row. Keys are compared by a 64-bit hash of their typed
    values, so two different keys collide with probability about n²/2⁶⁵ (≈3·10⁻⁶ for ten
    million rows); a collision quarantines the later row as a duplicate, never silently.
    """

    def __init__(self) -> None:
        self._runs: list[npt.NDArray[np.uint64]] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self._runs)

    def add(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        """Register a batch of key hashes; returns which are duplicates (first one wins)."""
        duplicate = np.ones(len(hashes), dtype=bool)
        _, first = np.unique(hashes, return_index=True)
        duplicate[first] = False
        for run in self._runs:
            at = np.searchsorted(run, hashes)
            found = at < len(run)
            found[found] &= run[at[found]] == hashes[found]
            duplicate |= found
        fresh = np.sort(hashes[~duplicate])
        if len(fresh):
            self._runs.append(fresh)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            last = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), last])
            merged.sort()
            self._runs.append(merged)
        return duplicate


@dataclass
class TransformContext:
    """What the steps share across the batches of one job."""

    contract: DataContract
    bindings: list[ColumnBinding]
    session: ValidationSession | None
    keys: KeyTracker = field(default_factory=KeyTracker)
    rejections: Counter[str] = field(default_factory=Counter)
    gx_summary: dict[str, Any] | None = None
    """Running ``merge_results`` of every batch validated so far."""

    def binding(self, name: str) -> ColumnBinding:
        for binding in self.bindings:
            if binding.name == name:
                return binding
        raise KeyError(name)


@dataclass
class BatchState:
    """One batch on its way through the steps."""

    source: pa.RecordBatch
    first_row: int
    raw: dict[str, pa.Array] = field(default_factory=dict)
    typed: dict[str, pa.Array] = field(default_factory=dict)
    reasons: dict[int, list[Reason]] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return int(self.source.num_rows)

    def reject(
        self, positions: Sequence[int] | npt.NDArray[np.intp], reason_for: Callable[[int], Reason]
    ) -> None:
        for position in positions:
            self.reasons.setdefault(int(position), []).append(reason_for(int(position)))

    def add_reason(self, position: int, reason: Reason) -> None:
        self.reasons.setdefault(position, []).append(reason)

    def clean_mask(self) -> npt.NDArray[np.bool_]:
        mask = np.ones(self.num_rows, dtype=bool)
        if self.reasons:
            mask[list(self.reasons)] = False
        return mask

    def valid_table(self, schema: pa.Schema) -> pa.Table:
        mask = pa.array(self.clean_mask())
        return pa.Table.from_arrays(
            [self.typed[f.name].filter(mask) for f in schema], schema=schema
        )

    def rejected_rows(self) -> Iterator[tuple[int, dict[str, Any], list[Reason]]]:
        """``(1-based data row, {header: raw value}, reasons)`` for each rejected row."""
        positions = sorted(self.reasons)
        values = self.source.take(pa.array(positions, pa.int64())).to_pylist()
        for position, row in zip(positions, values, strict=True):
            yield self.first_row + position, row, self.reasons[position]


Step = Callable[[BatchState, TransformContext], BatchState]


def _failures(
    state: BatchState, binding: ColumnBinding, failed: pa.Array, rule: str, expected: str
) -> None:
    """Record a reason for each position where ``failed`` is true (nulls count as false)."""
    positions = np.flatnonzero(pc.fill_null(failed, False).to_numpy(zero_copy_only=False))
    if len(positions) == 0:
        return
    raw = state.raw[binding.name]
    state.reject(
        positions,
        lambda i: Reason(binding.header, rule, expected, truncate(raw[i].as_py())),
    )


# -- steps -------------------------------------------------------------------------------


def select_columns(state: BatchState, ctx: TransformContext) -> BatchState:
    state.raw = {b.name: state.source.column(b.position) for b in ctx.bindings}
    return state


def reject_control_characters(state: BatchState, ctx: TransformContext) -> BatchState:
    for binding in ctx.bindings:
        bad = pc.match_substring_regex(state.raw[binding.name], CONTROL_CHARACTERS)
        _failures(
            state, binding, bad, "control_character", "no control characters except tab/newline"
        )
    return state


def parse_types(state: BatchState, ctx: TransformContext) -> BatchState:
    for binding in ctx.bindings:
        raw = state.raw[binding.name]
        values = pc.if_else(pc.equal(raw, ""), pa.scalar(None, pa.string()), raw)
        column = binding.contract
        typed = PARSERS[column.type](values, column)
        state.typed[binding.name] = typed
        failed = pc.and_(pc.is_valid(values), pc.is_null(typed))
        _failures(state, binding, failed, "type", _type_text(column))
    return state


def check_primary_key(state: BatchState, ctx: TransformContext) -> BatchState:
    key = ctx.contract.primary_key
    if not key:
        return state
    candidates = state.clean_mask()
    for name in key:
        candidates &= state.typed[name].is_valid().to_numpy(zero_copy_only=False)
    positions = np.flatnonzero(candidates)
    if len(positions) == 0:
        return state
    take = pa.array(positions, pa.int64())
    hashes = np.zeros(len(positions), dtype=np.uint64)
    for name in key:
        column = state.typed[name].take(take)
        hashes = hashes * np.uint64(0x9E3779B97F4A7C15) ^ hash_values(column)
    duplicate = positions[ctx.keys.add(hashes)]
    first = ctx.binding(key[0])
    state.reject(
        duplicate,
        lambda i: Reason(
            first.header if len(key) == 1 else "+".join(ctx.binding(k).header for k in key),
            "unique",
            "a primary key not used by an earlier row",
            truncate(" | ".join(str(state.raw[k][i].as_py()) for k in key)),
        ),
    )
    return state


def check_expectations(state: BatchState, ctx: TransformContext) -> BatchState:
    if ctx.session is None:
        return state
    positions = np.flatnonzero(state.clean_mask())
    if len(positions) == 0:
        return state
    take = pa.array(positions, pa.int64())
    table = pa.table({b.name: state.typed[b.name].take(take) for b in ctx.bindings})
    result = ctx.session.validate(to_frame(table, index=positions))
    ctx.gx_summary = merge_results([ctx.gx_summary or {}, result])
    for position, failures in result.failures.items():
        for failure in failures:
            binding = ctx.binding(failure.column)
            actual = truncate(state.raw[binding.name][position].as_py())
            state.add_reason(
                position, Reason(binding.header, failure.rule, failure.expected, actual)
            )
    return state


STEPS: tuple[Step, ...] = (
    select_columns,
    reject_control_characters,
    parse_types,
    check_primary_key,
    check_expectations,
)


def transform_batch(
    batch: pa.RecordBatch, first_row: int, ctx: TransformContext, steps: Sequence[Step] = STEPS
) -> BatchState:
    """Run ``steps`` over one source batch whose first row is data row ``first_row``."""
    state = BatchState(source=batch, first_row=first_row)
    for step in steps:
        state = step(state, ctx)
    for reasons in state.reasons.values():
        ctx.rejections.update(r.rule for r in reasons)
    return state


# -- parsers -----------------------------------------------------------------------------

Parser = Callable[[pa.Array, ColumnContract], pa.Array]


def _type_text(column: ColumnContract) -> str:
    if column.type in DEFAULT_FORMATS:
        formats = column.formats or DEFAULT_FORMATS[column.type]
        return f"{column.type} ({' or '.join(formats)})"
    if column.type == "boolean":
        return "boolean (" + "/".join(TRUE_WORDS + FALSE_WORDS) + ")"
    return column.type


def parse_string(values: pa.Array, _column: ColumnContract) -> pa.Array:
    return values


def _parse_number(values: pa.Array, syntax: str, target: pa.DataType) -> pa.Array:
    ok = pc.match_substring_regex(values, syntax)
    candidate = pc.if_else(ok, pc.replace_substring_regex(values, r"^\+", ""), None)
    try:
        return candidate.cast(target)
    except pa.ArrowInvalid:  # out of range for int64: decide value by value
        return pa.array([_int64_or_none(v) for v in candidate.to_pylist()], type=target)


def _int64_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def parse_integer(values: pa.Array, _column: ColumnContract) -> pa.Array:
    return _parse_number(values, INTEGER_SYNTAX, pa.int64())


def parse_double(values: pa.Array, _column: ColumnContract) -> pa.Array:
    parsed = _parse_number(values, DOUBLE_SYNTAX, pa.float64())
    return pc.if_else(pc.is_finite(parsed), parsed, None)


def parse_boolean(values: pa.Array, _column: ColumnContract) -> pa.Array:
    lower = pc.utf8_lower(values)
    true = pc.is_in(lower, value_set=pa.array(TRUE_WORDS))
    false = pc.is_in(lower, value_set=pa.array(FALSE_WORDS))
    return pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))


def parse_timestamp(values: pa.Array, column: ColumnContract) -> pa.Array:
    """Parse with the contract's strptime format (date → date32, timestamp → ms).

    ``pyarrow.compute.strptime`` is the fast path, but it is more lenient than Python's
    strptime: 2024-02-30 becomes 2024-03-01, second 60 rolls into the next minute,
    leading whitespace and year 0 are accepted. Values that could have hit one of those,
    and values pyarrow rejects, are decided by Python's strict ``datetime.strptime``.
    """
    formats = column.formats or DEFAULT_FORMATS[column.type]
    seconds = np.zeros(len(values), dtype=np.int64)
    done = np.zeros(len(values), dtype=bool)
    pending = pc.is_valid(values).to_numpy(zero_copy_only=False)
    for fmt in formats:
        parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
        trusted = pc.and_not(pc.is_valid(parsed), _maybe_lenient(values, parsed))
        fast = pending & pc.fill_null(trusted, False).to_numpy(zero_copy_only=False)
        seconds[fast] = pc.fill_null(parsed.cast(pa.int64()), 0).to_numpy()[fast]
        done |= fast
        pending &= ~fast
    for position in np.flatnonzero(pending):
        value = _python_strptime(values[position].as_py(), formats)
        if value is not None:
            seconds[position] = value
            done[position] = True
    typed = pa.array(seconds, type=pa.timestamp("s"), mask=~done)
    return typed.cast(ARROW_TYPES[column.type])


def _maybe_lenient(values: pa.Array, parsed: pa.Array) -> pa.Array:
    """Rows where pyarrow may have accepted what strict strptime rejects (see above)."""
    day_overflow = pc.and_(
        pc.less_equal(pc.day(parsed), 3), pc.match_substring_regex(values, "29|30|31")
    )
    leap_second = pc.and_(
        pc.less_equal(pc.second(parsed), 1), pc.match_substring_regex(values, "6[01]")
    )
    padded = pc.match_substring_regex(values, r"^\s|\s$")
    year_zero = pc.less(pc.year(parsed), 1)
    return pc.or_(pc.or_(day_overflow, leap_second), pc.or_(padded, year_zero))


def _python_strptime(text: str, formats: Sequence[str]) -> int | None:
    for fmt in formats:
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return (parsed - _EPOCH) // dt.timedelta(seconds=1)
    return None


PARSERS: dict[ColumnType, Parser] = {
    "string": parse_string,
    "integer": parse_integer,
    "double": parse_double,
    "boolean": parse_boolean,
    "date": parse_timestamp,
    "timestamp": parse_timestamp,
}


def hash_values(column: pa.Array) -> npt.NDArray[np.uint64]:
    """64-bit hashes of a typed, null-free column (pandas' vectorised siphash)."""
    if pa.types.is_string(column.type):
        data = column.to_numpy(zero_copy_only=False)
    elif pa.types.is_boolean(column.type):
        data = column.cast(pa.uint8()).to_numpy()
    elif pa.types.is_date32(column.type):
        data = column.cast(pa.int32()).to_numpy().astype(np.int64)
    elif pa.types.is_timestamp(column.type):
        data = column.cast(pa.int64()).to_numpy()
    else:
        data = column.to_numpy()
    return np.asarray(pd.util.hash_array(data), dtype=np.uint64)
