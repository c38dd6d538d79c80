"""The file-wide key check (primary key, ``unique`` columns) in memory that does not grow
with the file.

Each constraint has a ``KeyTracker``: a fixed Bloom filter of every key hash seen so far
and, on disk, a *stream* of the hashes of the rows it accepted for sure, in row order.
A batch's key goes through the filter: when some bit is clear (and it is the first of its
value in the batch) no earlier row can hold it, so the row is accepted on the spot and
its hash appended to the stream. The other rows (true duplicates, and the filter's false
positives: ~0.02% of the first 8.5M keys, ~0.7% at 31.5M) are *deferred*: the pipeline spills
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
"""A 2^29-bit (64 MiB) blocked Bloom filter per constraint: ``FILTER_HASHES`` bits a key,
all in one 64-bit word (one gather and one scatter a key). A fresh key is deferred with
probability ~0.02% at 8M keys, ~0.7% at 31.5M (measured on random keys)."""
FILTER_HASHES = 3
_WORD_MIX = np.uint64(0x9E3779B97F4A7C15)
_BIT_MIX = np.uint64(0xC2B2AE3D27D4EB4F)
_NEEDLE_MIX = np.uint64(0x165667B19E3779F9)
NEEDLE_BITS = 20
"""Slots of the small table of the deferred keys that screens a stream scan (1 MiB)."""
SCAN_CHUNK = 1 << 20
"""Stream entries read at a time when resolving (8 MiB)."""
NOT_FOUND = np.iinfo(np.int64).max


class KeyTracker:
    """One unique constraint's filter and its stream of accepted key hashes.

    ``path``: the stream's file (created on first write); ``None`` keeps the stream in
    memory (small jobs and tests). ``filter_bits`` sizes the filter (tests make it a few
    bits so that nearly every key is deferred)."""

    def __init__(self, path: Path | None = None, *, filter_bits: int | None = None) -> None:
        self.path = path
        self.filter_bits = filter_bits or FILTER_BITS
        self.count = 0
        """Hashes in the stream (each an accepted row, or a row already in the dataset)."""
        self._filter: npt.NDArray[np.uint64] | None = None
        self._memory: list[npt.NDArray[np.uint64]] = []
        self._file: BinaryIO | None = None

    def probe(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        """Which of a batch's key hashes may repeat an earlier one: an earlier row in the
        batch, or every filter bit already set. Then sets the bits of all of them."""
        if len(hashes) == 0:
            return np.zeros(0, dtype=bool)
        words = self._words()
        word, mask = self._slots(hashes)
        maybe = (words[word] & mask) == mask
        maybe |= _repeats_in(hashes)
        _set_bits(words, word, mask)
        return np.asarray(maybe, dtype=bool)

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
        _set_bits(self._words(), *self._slots(hashes))
        self.register(hashes)

    def find(self, needles: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """The stream index of the first occurrence of each of the sorted, distinct
        ``needles`` (``NOT_FOUND`` when absent): one pass over the stream, screened by a
        small filter of the needles."""
        first = np.full(len(needles), NOT_FOUND, dtype=np.int64)
        if len(needles) == 0 or self.count == 0:
            return first
        screen = np.zeros(1 << NEEDLE_BITS, dtype=bool)
        screen[_top(needles, _NEEDLE_MIX, NEEDLE_BITS)] = True
        for start, chunk in self._chunks():
            candidates = np.flatnonzero(screen[_top(chunk, _NEEDLE_MIX, NEEDLE_BITS)])
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

    def _words(self) -> npt.NDArray[np.uint64]:
        if self._filter is None:  # zero pages: memory is touched as bits are set
            self._filter = np.zeros(1 << max(self.filter_bits - 6, 0), dtype=np.uint64)
        return self._filter

    def _slots(
        self, hashes: npt.NDArray[np.uint64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64]]:
        """The filter word of each hash and the ``FILTER_HASHES`` bits it sets there."""
        word = _top(hashes, _WORD_MIX, max(self.filter_bits - 6, 0))
        with np.errstate(over="ignore"):
            mixed = hashes * _BIT_MIX
        mask = np.zeros(len(hashes), dtype=np.uint64)
        one, used = np.uint64(1), np.uint64((1 << min(self.filter_bits, 6)) - 1)
        for index in range(FILTER_HASHES):
            mask |= one << ((mixed >> np.uint64(58 - 6 * index)) & used)
        return word, mask


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


def _top(hashes: npt.NDArray[np.uint64], mixer: np.uint64, bits: int) -> npt.NDArray[np.intp]:
    """The top ``bits`` bits of each hash times an odd constant (so that ordered integer
    keys spread too): a slot in a table of ``2^bits``."""
    if bits == 0:
        return np.zeros(len(hashes), dtype=np.intp)
    with np.errstate(over="ignore"):
        return ((hashes * mixer) >> np.uint64(64 - bits)).astype(np.intp)


def _set_bits(
    words: npt.NDArray[np.uint64], word: npt.NDArray[np.intp], mask: npt.NDArray[np.uint64]
) -> None:
    """``words[word] |= mask`` with repeated words: a scatter keeps one write per word, so
    the bits lost that way are written again (a few hundred keys of a 65k batch)."""
    while len(word):
        words[word] |= mask
        lost = (words[word] & mask) != mask
        word, mask = word[lost], mask[lost]


def _repeats_in(hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Which hashes repeat one earlier in the array (a sort; a full ``unique`` only when
    there are repeats)."""
    repeats = np.zeros(len(hashes), dtype=bool)
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated) == 0:
        return repeats
    at = np.flatnonzero(np.isin(hashes, repeated))
    _, first = np.unique(hashes[at], return_index=True)
    repeats[at] = True
    repeats[at[first]] = False
    return repeats


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
