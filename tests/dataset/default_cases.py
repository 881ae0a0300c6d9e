"""Column types with strategies for default values each accepts, and exact cell comparison.

Shared by ``tests/dataset/test_default_values.py`` (lakefmt reads its own defaults back) and
``tests/spec/test_reference_reader.py`` (the spec's reader reads the same cells).
"""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lakefmt import types as T

INT_RANGES = {f"{k}{b}": np.iinfo(f"{k}{b}") for k in ("int", "uint") for b in (8, 16, 32, 64)}


def _ints(dtype: str) -> st.SearchStrategy[int]:
    info = INT_RANGES[dtype]
    return st.one_of(
        st.sampled_from([int(info.min), int(info.max), 0]), st.integers(info.min, info.max)
    )


def _floats(width: int) -> st.SearchStrategy[float]:
    if width == 16:  # every float16: from its 16 bits (NaN, +-inf, -0.0, subnormals)
        return st.integers(0, 0xFFFF).map(
            lambda bits: float(np.frombuffer(struct.pack("<H", bits), np.float16)[0])
        )
    specials = st.sampled_from([math.nan, math.inf, -math.inf, -0.0])
    return st.one_of(specials, st.floats(width=width, allow_nan=True, allow_infinity=True))


TEXT = st.text(st.characters(codec="utf-8"), max_size=12)  # any unicode, astral included
BYTES = st.binary(max_size=16)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["$base64", "$float", "a", "b", "😀"]) | TEXT, inner, max_size=3
        )
    ),
    max_leaves=8,
)


def png_bytes(pixels: np.ndarray) -> bytes:
    """``pixels`` encoded as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


PIXELS = hnp.arrays(np.uint8, st.tuples(st.integers(1, 4), st.integers(1, 4), st.just(3)))


def ply_bytes() -> bytes:
    """A one-triangle ASCII PLY mesh."""
    return (
        b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        b"property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
        b"0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
    )


def _vector(dtype: str, size: int) -> st.SearchStrategy[list[Any]]:
    item = _floats(int(dtype[5:])) if dtype.startswith("float") else _ints(dtype)
    return st.lists(item, min_size=size, max_size=size)


def _ragged2(dtype: str) -> st.SearchStrategy[list[list[Any]]]:
    item = _floats(int(dtype[5:])) if dtype.startswith("float") else _ints(dtype)
    return st.integers(1, 3).flatmap(
        lambda width: st.lists(
            st.lists(item, min_size=width, max_size=width), min_size=1, max_size=3
        )
    )


NAMES = ["cat", "dog", "😀 bird"]

#: (column name, type, strategy of default values the type accepts). Every lakefmt type.
CASES: list[tuple[str, T.Type, st.SearchStrategy[Any]]] = [
    *[(d, T.Numeric(d), _ints(d)) for d in INT_RANGES],
    *[(f"float{w}", T.Numeric(f"float{w}"), _floats(w)) for w in (16, 32, 64)],
    ("bool", T.Bool(), st.booleans()),
    ("text", T.Text(), TEXT),
    ("bytes", T.Bytes(), BYTES),
    (
        "label",
        T.ClassLabel("int16", class_names=NAMES),
        st.sampled_from(NAMES) | st.integers(0, len(NAMES) - 1),
    ),
    (
        "labels",
        T.ClassLabel(T.Array("uint8", dimensions=1), class_names=NAMES),
        st.lists(st.sampled_from(NAMES) | st.integers(0, len(NAMES) - 1), max_size=3),
    ),
    ("emb", T.Embedding(3), _vector("float32", 3)),
    ("emb16", T.Embedding(2, dtype="float16"), _vector("float16", 2)),
    ("emb_i8", T.Embedding(2, dtype="int8"), _vector("int8", 2)),
    (
        "arr",
        T.Array("float64", shape=(2, 2)),
        _vector("float64", 4).map(lambda v: np.array(v).reshape(2, 2)),
    ),
    # (uint64 is left out: Array.convert refuses [[0, 2**64 - 1]], numpy infers float64)
    ("ragged", T.Array("float64", dimensions=2), _ragged2("float64")),
    ("ragged_i", T.Array("int16", dimensions=2), _ragged2("int16")),
    ("boxes", T.BoundingBox(), st.lists(_vector("float32", 4), max_size=3)),
    ("points", T.Point(dimensions=3), st.lists(_vector("float32", 3), max_size=3)),
    (
        "polygons",
        T.Polygon(),
        st.lists(st.lists(_vector("float32", 2), min_size=1, max_size=3), max_size=2),
    ),
    ("seg", T.SegmentMask(), hnp.arrays(np.uint8, st.tuples(st.integers(1, 3), st.integers(1, 3)))),
    (
        "seg_png",
        T.SegmentMask(sample_compression="png"),
        hnp.arrays(np.uint8, st.tuples(st.integers(1, 3), st.integers(1, 3))),
    ),
    ("mask", T.BinaryMask(), hnp.arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 3)))),
    (
        "mask_png",
        T.BinaryMask(sample_compression="png"),
        hnp.arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 3))),
    ),
    ("seq_text", T.Sequence(T.Text()), st.lists(TEXT | st.none(), max_size=3)),
    ("seq_bytes", T.Sequence(T.Bytes()), st.lists(BYTES, max_size=3)),
    (
        "rec",
        T.Struct({"b": "bytes", "f": "float32", "t": "text", "e": T.Embedding(2), "n": "int64"}),
        st.fixed_dictionaries(
            {
                "b": BYTES,
                "f": _floats(32),
                "t": TEXT,
                "e": _vector("float32", 2),
                "n": _ints("int64"),
            }
        ),
    ),
    (
        "nested",
        T.Sequence(T.Struct({"x": "bytes", "y": T.Sequence("float64")})),
        st.lists(
            st.fixed_dictionaries({"x": BYTES, "y": st.lists(_floats(64), max_size=2)}), max_size=2
        ),
    ),
    ("dict", T.Dict(), JSON.filter(lambda v: v is not None)),
    (
        "link",
        T.Link(T.Image()),
        st.sampled_from(["s3://bucket/a b.png", "file:///x/😀.png", "rel/p.png"]),
    ),
    ("image", T.Image(), PIXELS.map(png_bytes)),
    ("image_px", T.Image(), PIXELS),
    ("mesh", T.Mesh(), st.just(ply_bytes())),
]


def stored_cell(column_type: T.Type, value: Any) -> Any:
    """The stored (storage-type) cell ``value`` becomes when appended, as a Python value."""
    array = column_type.convert([value], column="c")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    return array.to_pylist()[0]


def same(a: Any, b: Any) -> bool:
    """Exact equality of two Python values of cells: NaN equals NaN, -0.0 is not 0.0."""
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(b, np.generic):
        b = b.item()
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return same(np.asarray(a).tolist(), np.asarray(b).tolist())
    return type(a) is type(b) and a == b


def storage_table(table: pa.Table) -> pa.Table:
    """``table`` with extension columns replaced by their storage (what the spec's reader
    returns for non-scalar columns)."""
    columns = []
    for column in table.columns:
        if isinstance(column.type, pa.ExtensionType):
            column = pa.chunked_array(
                [c.storage for c in column.chunks], type=column.type.storage_type
            )
        columns.append(column)
    return pa.table(columns, names=table.column_names)
