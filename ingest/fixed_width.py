"""The UTF-8 bytes of Arrow string arrays as numpy arrays.

Identifiers (``ingest.validators.fast``) and dates in a fixed layout (``ingest.parsing``)
are checked column by column on an ``(n, width)`` matrix of their UTF-8 bytes: a few
numpy operations per batch instead of a regular expression or Python per value.
``utf8_bytes`` answers "does any value hold this byte?" with one vectorised compare.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc


def _plain_string(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    return values


def utf8_bytes(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.uint8]:
    """The bytes of all of ``values`` back to back (a read-only view of the data buffer;
    it may include bytes of null slots, never fewer than the values' own)."""
    values = _plain_string(values)
    _, offsets_buffer, data_buffer = values.buffers()
    if data_buffer is None or len(values) == 0:
        return np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)
    first, last = offsets[values.offset], offsets[values.offset + len(values)]
    return np.frombuffer(data_buffer, dtype=np.uint8)[first:last]


def byte_matrix(
    values: pa.Array, width: int, candidates: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint8]]:
    """Positions of the ``candidates`` whose UTF-8 form has ``width`` bytes, and those
    values as a ``(k, width)`` byte matrix: a read-only view of the Arrow data buffer
    when every value qualifies, else of a copy of just those values."""
    values = _plain_string(values)
    lengths = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    positions = np.flatnonzero(candidates & (lengths == width))
    if len(positions) == 0 or width == 0:
        return positions, np.zeros((len(positions), width), dtype=np.uint8)
    if len(positions) < len(values):  # Arrow copies the rest's bytes faster than a gather
        keep = np.zeros(len(values), dtype=bool)
        keep[positions] = True
        values = values.filter(pa.array(keep))
    # every value left has ``width`` bytes: they sit back to back in the data buffer
    _, offsets_buffer, data_buffer = values.buffers()
    start = int(np.frombuffer(offsets_buffer, dtype=np.int32)[values.offset])
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    return positions, data[start : start + width * len(positions)].reshape(-1, width)


def byte_columns(
    values: pa.Array, width: int, candidates: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint8]]:
    """``byte_matrix`` transposed: a ``(width, k)`` array, one contiguous row per byte
    position, so that checks across positions are element-wise operations on rows (a
    numpy reduction along a short last axis costs ~20x more)."""
    positions, matrix = byte_matrix(values, width, candidates)
    return positions, np.ascontiguousarray(matrix.T)
