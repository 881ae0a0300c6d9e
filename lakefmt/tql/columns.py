"""What the query engine needs to know about a column: its kind, DuckDB type and SQL literals.

The engine works from the manifest (type name, parameters) and the Arrow storage type, never
from the type classes themselves, so it understands a column type even before (or without)
the class that implements it for reads.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pyarrow as pa

#: Kinds whose values are small enough to come back with the query result itself; the
#: others (media, bytes, vectors, lists, structs) are read lazily from the dataset by row.
EAGER_KINDS = frozenset({"number", "bool", "text", "json", "class_label"})
#: Kinds a ``*`` inside a subquery leaves out unless the query names the column: reading
#: them costs media bytes.
HEAVY_KINDS = frozenset({"media", "bytes"})

_MEDIA_NAMES = frozenset({"lakefmt.image", "lakefmt.video", "lakefmt.mesh", "lakefmt.audio"})


@dataclasses.dataclass(frozen=True)
class ColumnKind:
    """How queries treat a column.

    Attributes:
        kind: ``number``, ``bool``, ``text``, ``json``, ``class_label``, ``vector`` (fixed
            length), ``list``, ``media``, ``bytes``, ``struct`` or ``other``.
        size: Length of ``vector`` values.
        class_names: Class names of a ``class_label`` column.
        is_list: A ``class_label`` column holding a list of labels per row.
        type_name: The lakefmt type name (``lakefmt.image``...), or the storage type.
        depth: Nesting depth of ``list``/``vector`` values (1 for a vector).
        shape: The fixed shape of each value (fixed-shape arrays stored flat, vectors).
    """

    kind: str
    size: int | None = None
    class_names: tuple[str, ...] = ()
    is_list: bool = False
    type_name: str = ""
    depth: int = 0
    shape: tuple[int, ...] | None = None

    @property
    def eager(self) -> bool:
        """Whether query results carry this column's values (rather than row references)."""
        return self.kind in EAGER_KINDS

    @property
    def heavy(self) -> bool:
        """Whether reading the column means reading media bytes."""
        return self.kind in HEAVY_KINDS

    @property
    def arrayish(self) -> bool:
        """Whether values are arrays (vectors or lists) that element-wise functions apply to."""
        return self.kind in ("vector", "list", "array")


UNKNOWN = ColumnKind("other")
NUMBER = ColumnKind("number")


def _list_depth(t: pa.DataType) -> int:
    depth = 0
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        depth += 1
        t = t.value_type
    return depth


def storage_of(t: pa.DataType) -> pa.DataType:
    """The plain Arrow type under an extension type."""
    return t.storage_type if isinstance(t, pa.ExtensionType) else t


def classify(type_json: dict[str, Any] | None, arrow_type: pa.DataType) -> ColumnKind:
    """Classify a column from its manifest type (``{"name", "params"}``) and Arrow type."""
    name = str((type_json or {}).get("name") or "")
    params = (type_json or {}).get("params") or {}
    storage = storage_of(arrow_type)
    if name in _MEDIA_NAMES:
        return ColumnKind("media", type_name=name)
    if name == "lakefmt.class_label":
        is_list = _list_depth(storage) > 0
        return ColumnKind(
            "class_label",
            class_names=tuple(params.get("class_names") or ()),
            is_list=is_list,
            type_name=name,
        )
    if name in ("lakefmt.dict", "lakefmt.json") and (
        pa.types.is_string(storage) or pa.types.is_large_string(storage)
    ):
        return ColumnKind("json", type_name=name)
    if name == "lakefmt.embedding" and params.get("size"):
        size = int(params["size"])
        return ColumnKind("vector", size=size, type_name=name, depth=1, shape=(size,))
    if name == "lakefmt.array" and params.get("shape"):
        shape = tuple(int(d) for d in params["shape"])
        if len(shape) == 1:
            return ColumnKind("vector", size=shape[0], type_name=name, depth=1, shape=shape)
        # stored flat (fixed_size_list of prod(shape)): indexed by the query translator
        return ColumnKind("array", size=math.prod(shape), type_name=name, depth=1, shape=shape)
    if pa.types.is_boolean(storage):
        return ColumnKind("bool", type_name=name or str(storage))
    if (
        pa.types.is_integer(storage)
        or pa.types.is_floating(storage)
        or pa.types.is_decimal(storage)
    ):
        return ColumnKind("number", type_name=name or str(storage))
    if (
        pa.types.is_string(storage)
        or pa.types.is_large_string(storage)
        or pa.types.is_string_view(storage)
    ):
        return ColumnKind("text", type_name=name or "text")
    if (
        pa.types.is_binary(storage)
        or pa.types.is_large_binary(storage)
        or pa.types.is_fixed_size_binary(storage)
        or pa.types.is_binary_view(storage)
    ):
        return ColumnKind("bytes", type_name=name or "bytes")
    if pa.types.is_fixed_size_list(storage) and _list_depth(storage) == 1:
        return ColumnKind(
            "vector", size=storage.list_size, type_name=name, depth=1, shape=(storage.list_size,)
        )
    if _list_depth(storage):
        return ColumnKind("list", type_name=name, depth=_list_depth(storage))
    if pa.types.is_struct(storage):
        return ColumnKind("struct", type_name=name)
    return ColumnKind("other", type_name=name or str(storage))


_PRIMITIVES = {
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
    pa.float16(): "FLOAT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.large_binary(): "BLOB",
    pa.date32(): "DATE",
    pa.null(): "INTEGER",
}


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def quote_str(text: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + text.replace("'", "''") + "'"


def duck_type(t: pa.DataType) -> str:
    """The DuckDB type name for an Arrow type (extension types by their storage).

    Fixed-size lists become DuckDB ``ARRAY`` types (``FLOAT[384]``), which the vector
    functions need; DuckDB reads them from Parquet as variable lists otherwise.
    """
    t = storage_of(t)
    found = _PRIMITIVES.get(t)
    if found is not None:
        return found
    if pa.types.is_string_view(t):
        return "VARCHAR"
    if pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t):
        return "BLOB"
    if pa.types.is_fixed_size_list(t):
        return f"{duck_type(t.value_type)}[{t.list_size}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"{duck_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f"{quote_ident(f.name)} {duck_type(f.type)}" for f in t)
        return f"STRUCT({inner})"
    if pa.types.is_map(t):
        return f"MAP({duck_type(t.key_type)}, {duck_type(t.item_type)})"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_duration(t):
        return "INTERVAL"
    if pa.types.is_dictionary(t):
        return duck_type(t.value_type)
    raise TypeError(f"no DuckDB type for Arrow type {t}")


def sql_literal(value: Any, storage: pa.DataType) -> str:
    """A DuckDB literal of ``value`` cast to the DuckDB type of ``storage``.

    Used for column defaults (rows written before a column existed) and for ``DATA()``.
    """
    storage = storage_of(storage)
    target = duck_type(storage)
    if value is None:
        return f"CAST(NULL AS {target})"
    if (pa.types.is_string(storage) or pa.types.is_large_string(storage)) and not isinstance(
        value, str
    ):
        value = json.dumps(value)  # JSON-text columns (Dict) keep their default as JSON
    return f"CAST({_literal(value)} AS {target})"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "'NaN'::DOUBLE"
        if math.isinf(value):
            return "'Infinity'::DOUBLE" if value > 0 else "'-Infinity'::DOUBLE"
        return repr(value)
    if isinstance(value, str):
        return quote_str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"from_hex({quote_str(bytes(value).hex())})"
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _literal(value.tolist())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{quote_str(str(k))}: {_literal(v)}" for k, v in value.items())
        return "{" + inner + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a SQL literal")
