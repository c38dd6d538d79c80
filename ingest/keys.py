"""The file-wide key check (primary key, ``unique`` columns) in memory that does not grow
with the file.

Each constraint has a ``KeyTracker``: a fixed Bloom filter of every key hash seen so far
and, on disk, a *stream* of the hashes of the rows it accepted for sure, in row order.
A batch's key goes through the filter: when some bit is clear (and it is the first of its
value in the batch) no earlier row can hold it, so the row is accepted on the spot and
its hash appended to the stream. The other rows (true duplicates, and the filter's false
positives: ~0.01% of keys at 8M rows, ~0.4% at 31M) are *deferred*: the pipeline spills
them to the job's scratch directory and ``resolve`` decides them after the last batch,
exactly (first row wins), by one sequential scan of each stream.

Memory: the 64 MiB filter per constraint and ~25 bytes per deferred row; the keys
themselves (8 bytes a row) stay on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

FILTER_BITS = 29
"""A 2^29-bit (64 MiB) Bloom filter per constraint, ``FILTER_HASHES`` bits per key: a
fresh key is deferred with probability ~0.01% at 8M keys, ~0.4% at 31M, ~3% at 80M."""
FILTER_HASHES = 3
_MIXERS = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
    np.uint64(0xD6E8FEB86659FD93),
)
SCAN_CHUNK = 1 << 20
"""Stream entries read at a time when resolving (8 MiB)."""
NEEDLE_BITS = 20
"""Bits of the small filter of the deferred keys that screens a stream scan."""
NOT_FOUND = np.iinfo(np.int64).max


class KeyTracker:
    """One unique constraint's filter and its stream of accepted key hashes.

    ``path``: the stream's file (created on first write); ``None`` keeps the stream in
    memory (small jobs and tests). ``filter_bits`` sizes the filter (tests make it tiny
    so that nearly every key is deferred)."""

    def __init__(self, path: Path | None = None, *, filter_bits: int | None = None) -> None:
        self.path = path
        self.filter_bits = filter_bits or FILTER_BITS
        self.count = 0
        """Hashes in the stream (each an accepted row, or a row already in the dataset)."""
        self._filter: npt.NDArray[np.uint8] | None = None
        self._memory: list[npt.NDArray[np.uint64]] = []
        self._file: BinaryIO | None = None

    def probe(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        """Which of a batch's key hashes may repeat an earlier one: an earlier row in the
        batch, or every filter bit already set. Then sets the bits of all of them."""
        maybe = np.ones(len(hashes), dtype=bool)
        if len(hashes) == 0:
            return maybe
        _, first = np.unique(hashes, return_index=True)
        maybe[first] = False
        slots = self._slots(hashes)
        seen = np.ones(len(hashes), dtype=bool)
        bits = self._bits()
        for byte, bit in slots:
            seen &= (bits[byte] & bit) != 0
        maybe |= seen
        for byte, bit in slots:
            _set_bits(bits, byte, bit)
        return maybe

    def register(self, hashes: npt.NDArray[np.uint64]) -> None:
        """Append accepted (or already stored) keys to the stream, in row order."""
        if len(hashes) == 0:
            return
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        if self.path is None:
            self._memory.append(hashes.copy())
        else:
            if self._file is None:
                self._file = self.path.open("ab")
            self._file.write(hashes.tobytes())
        self.count += len(hashes)

    def seed(self, hashes: npt.NDArray[np.uint64]) -> None:
        """Keys of rows already in the dataset: in the filter and the stream, all of them."""
        if len(hashes) == 0:
            return
        bits = self._bits()
        for byte, bit in self._slots(hashes):
            _set_bits(bits, byte, bit)
        self.register(hashes)

    def find(self, needles: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """The stream index of the first occurrence of each of the sorted, distinct
        ``needles`` (``NOT_FOUND`` when absent): one pass over the stream, screened by a
        small filter of the needles."""
        first = np.full(len(needles), NOT_FOUND, dtype=np.int64)
        if len(needles) == 0 or self.count == 0:
            return first
        screen = np.zeros(1 << (NEEDLE_BITS - 3), dtype=np.uint8)
        byte, bit = _slot(needles, _MIXERS[3], NEEDLE_BITS)
        _set_bits(screen, byte, bit)
        for start, chunk in self._chunks():
            byte, bit = _slot(chunk, _MIXERS[3], NEEDLE_BITS)
            candidates = np.flatnonzero(screen[byte] & bit)
            if len(candidates) == 0:
                continue
            values = chunk[candidates]
            at = np.minimum(np.searchsorted(needles, values), len(needles) - 1)
            hit = needles[at] == values
            at, index = at[hit], candidates[hit] + start
            np.minimum.at(first, at, index)
        return first

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _chunks(self) -> list[tuple[int, npt.NDArray[np.uint64]]] | _FileChunks:
        if self.path is None:
            starts = np.cumsum([0] + [len(a) for a in self._memory[:-1]]).tolist()
            return list(zip(starts, self._memory, strict=True))
        if self._file is not None:
            self._file.flush()
        return _FileChunks(self.path)

    def _bits(self) -> npt.NDArray[np.uint8]:
        if self._filter is None:  # zero pages: memory is touched as bits are set
            self._filter = np.zeros(1 << (self.filter_bits - 3), dtype=np.uint8)
        return self._filter

    def _slots(
        self, hashes: npt.NDArray[np.uint64]
    ) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.uint8]]]:
        return [_slot(hashes, mixer, self.filter_bits) for mixer in _MIXERS[:FILTER_HASHES]]


class _FileChunks:
    """``(first index, hashes)`` of a stream file, ``SCAN_CHUNK`` hashes at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self):  # type: ignore[no-untyped-def]
        if not self.path.exists():
            return
        start = 0
        with self.path.open("rb") as stream:
            while True:
                chunk = np.fromfile(stream, dtype=np.uint64, count=SCAN_CHUNK)
                if len(chunk) == 0:
                    return
                yield start, chunk
                start += len(chunk)


def _slot(
    hashes: npt.NDArray[np.uint64], mixer: np.uint64, bits: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint8]]:
    """Byte index and bit mask of each hash in a ``2^bits``-bit filter (multiplied by an
    odd constant first, so that ordered integer keys spread over the filter too)."""
    with np.errstate(over="ignore"):
        slot = (hashes * mixer) >> np.uint64(64 - bits)
    bit = np.left_shift(np.uint8(1), (slot & np.uint64(7)).astype(np.uint8))
    return (slot >> np.uint64(3)).astype(np.intp), bit


def _set_bits(
    bits: npt.NDArray[np.uint8], byte: npt.NDArray[np.intp], bit: npt.NDArray[np.uint8]
) -> None:
    """``bits[byte] |= bit`` with repeated bytes: one bit position at a time, where every
    write to the same byte writes the same value (cheaper than ``np.bitwise_or.at``)."""
    for position in range(8):
        where = byte[bit == (1 << position)]
        if len(where):
            bits[where] |= np.uint8(1 << position)


@dataclass
class Deferred:
    """Rows whose key check waits for the end of the file, in row order: their 1-based
    row, and per constraint whether the row has that key (no null part), its hash and
    how many hashes the stream held before the row."""

    rows: list[npt.NDArray[np.int64]] = field(default_factory=list)
    has: list[list[npt.NDArray[np.bool_]]] = field(default_factory=list)
    hashes: list[list[npt.NDArray[np.uint64]]] = field(default_factory=list)
    before: list[list[npt.NDArray[np.int64]]] = field(default_factory=list)

    def add(
        self,
        rows: npt.NDArray[np.int64],
        has: Sequence[npt.NDArray[np.bool_]],
        hashes: Sequence[npt.NDArray[np.uint64]],
        before: Sequence[npt.NDArray[np.int64]],
    ) -> None:
        self.rows.append(rows)
        self.has.append(list(has))
        self.hashes.append(list(hashes))
        self.before.append(list(before))

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows)


@dataclass(frozen=True)
class Resolution:
    """For each deferred row (row order): the index of the constraint it repeats, or -1
    (accepted); and per constraint how many deferred rows it checked."""

    duplicate_of: npt.NDArray[np.int64]
    checked: list[int]


def resolve(deferred: Deferred, trackers: Sequence[KeyTracker]) -> Resolution:
    """Decide the deferred rows exactly as a check in row order would have: constraint by
    constraint, a row still standing repeats a key when the stream holds it from an
    earlier row, or an earlier deferred row still standing holds it (first one wins).
    A row rejected by one constraint is not checked (nor registered) by the later ones."""
    count = len(deferred)
    duplicate_of = np.full(count, -1, dtype=np.int64)
    checked: list[int] = []
    if count == 0:
        return Resolution(duplicate_of, [0] * len(trackers))
    for index, tracker in enumerate(trackers):
        has = np.concatenate([h[index] for h in deferred.has])
        hashes = np.concatenate([h[index] for h in deferred.hashes])
        before = np.concatenate([b[index] for b in deferred.before])
        at = np.flatnonzero(has & (duplicate_of < 0))
        checked.append(len(at))
        if len(at) == 0:
            continue
        keys, positions = hashes[at], before[at]
        needles, first_deferred, which = np.unique(keys, return_index=True, return_inverse=True)
        in_stream = tracker.find(needles)[which.reshape(-1)] < positions
        repeated = np.ones(len(at), dtype=bool)
        repeated[first_deferred] = False
        duplicate_of[at[in_stream | repeated]] = index
    return Resolution(duplicate_of, checked)
