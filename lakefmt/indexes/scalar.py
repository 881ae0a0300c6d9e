"""Sorted-key scalar index: a column's values sorted, with the segment key of each.

A segment's ``keys`` file is a Parquet file of two columns, ``value`` and ``key`` (int64),
in ascending ``value`` order (ties by key), in row groups of :data:`ROW_GROUP_ROWS` rows,
both delta-encoded (sorted values and in-order keys take almost nothing). Null values and
deleted rows are not in it: a null never equals, and is never in the range of, a literal.

* Numeric columns: ``value`` is the column's value in its own Arrow type. Floats sort as
  DuckDB compares them: NaN above every number (numpy's order).
* Text columns: ``value`` is a 32-bit hash of the UTF-8 bytes (:func:`text_hashes`), which
  answers equality only; rows of another string with the same hash are false candidates,
  removed when the query re-applies its WHERE.

Loaded, a segment is two numpy arrays searched with ``searchsorted``.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lakefmt.errors import FormatError

#: Engine file format version of the ``keys`` file.
ENGINE_VERSION = "1"
#: Rows per row group of a ``keys`` file.
ROW_GROUP_ROWS = 65_536
#: Key-value metadata naming the file's contents (``numeric`` or ``text_hash``).
_META = b"lakefmt.scalar"


def text_hashes(values: pa.Array | list[str]) -> np.ndarray:
    """The 32-bit hash (as int64) of each string: the first 4 bytes, little-endian, of
    BLAKE2b with a 4-byte digest (``hashlib.blake2b(utf8, digest_size=4)``)."""
    strings = values.to_pylist() if isinstance(values, pa.Array) else values
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=4).digest(), "little")
            for s in strings
        ),
        dtype=np.int64,
        count=len(strings),
    )


def is_text(arrow_type: pa.DataType) -> bool:
    """Whether values of this type are indexed by hash."""
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def build_sorted_keys(values: pa.Array, live: np.ndarray) -> bytes:
    """The ``keys`` file of the rows ``values`` (key ``i`` is value ``i``); rows whose
    ``live`` is False and null values are left out."""
    if isinstance(values, pa.ExtensionArray):
        values = values.storage
    keep = live.copy()
    if values.null_count:
        keep &= np.asarray(values.is_valid())
    keys = np.flatnonzero(keep).astype(np.int64)
    taken = values.take(pa.array(keys, pa.int64()))
    if is_text(values.type):
        column = text_hashes(taken)
        value_type, content = pa.int64(), b"text_hash"
    else:
        column = taken.to_numpy(zero_copy_only=False)
        value_type, content = values.type, b"numeric"
    order = np.argsort(column, kind="stable")  # NaN last; ties keep key order
    table = pa.table(
        {
            "value": pa.array(column[order], value_type),
            "key": pa.array(keys[order], pa.int64()),
        }
    ).replace_schema_metadata({_META: content})
    encodings = {"key": "DELTA_BINARY_PACKED"}
    if pa.types.is_integer(value_type):
        encodings["value"] = "DELTA_BINARY_PACKED"
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=False,
        column_encoding=encodings,
        compression="zstd",
    )
    return sink.getvalue().to_pybytes()


class SortedKeys:
    """A loaded ``keys`` file: sorted values and their keys.

    Attributes:
        values: Ascending values (hashes for text).
        keys: Segment key of each value.
        hashed: Whether ``values`` are text hashes (equality only).
    """

    def __init__(self, values: np.ndarray, keys: np.ndarray, hashed: bool) -> None:
        self.values = values
        self.keys = keys
        self.hashed = hashed

    @classmethod
    def from_bytes(cls, data: bytes) -> SortedKeys:
        """Read a ``keys`` file.

        Raises:
            FormatError: The file is damaged, or its columns or order are not a keys file's.
        """
        try:
            table = pq.read_table(pa.BufferReader(data))
            meta = (table.schema.metadata or {}).get(_META)
            if table.schema.names != ["value", "key"] or meta not in (b"numeric", b"text_hash"):
                raise FormatError("scalar index: unexpected columns or metadata in its keys file")
            values = table.column("value").to_numpy()
            keys = np.asarray(table.column("key").to_numpy(), dtype=np.int64)
        except (pa.ArrowException, ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"scalar index: damaged keys file ({exc})") from exc
        numbers = values
        if values.dtype.kind == "f":  # NaN last, then every number in order
            nan = np.isnan(values)
            count = len(values) - int(nan.sum())
            if bool(nan[:count].any()):
                raise FormatError("scalar index: keys file values are not in ascending order")
            numbers = values[:count]
        if len(numbers) > 1 and not bool(np.all(numbers[1:] >= numbers[:-1])):
            raise FormatError("scalar index: keys file values are not in ascending order")
        if len(keys) and int(keys.min()) < 0:
            raise FormatError("scalar index: negative key in its keys file")
        return cls(values, keys, meta == b"text_hash")

    def equal(self, wanted: np.ndarray) -> np.ndarray:
        """Keys whose value is one of ``wanted`` (hashes for text), unsorted."""
        wanted = np.unique(np.asarray(wanted, dtype=self.values.dtype))
        lo = np.searchsorted(self.values, wanted, side="left")
        hi = np.searchsorted(self.values, wanted, side="right")
        if len(wanted) == 1:
            return self.keys[int(lo[0]) : int(hi[0])]
        return np.concatenate([self.keys[a:b] for a, b in zip(lo, hi, strict=True)])

    def between(
        self, low: float | None, low_inclusive: bool, high: float | None, high_inclusive: bool
    ) -> np.ndarray:
        """Keys whose value is in the range (None: unbounded on that side), unsorted."""
        start, stop = 0, len(self.values)
        if low is not None:
            side: Literal["left", "right"] = "left" if low_inclusive else "right"
            start = int(np.searchsorted(self.values, low, side=side))
        if high is not None:
            side = "right" if high_inclusive else "left"
            stop = int(np.searchsorted(self.values, high, side=side))
        return self.keys[start:stop] if stop > start else self.keys[:0]

    def max_key(self) -> int:
        """The largest key (-1 when empty), for checking the file against its segment."""
        return int(self.keys.max()) if len(self.keys) else -1
