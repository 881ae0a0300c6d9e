"""Schema changes of the dataset API, checked and turned into commit operations.

Each function validates its arguments against the handle's current version (nothing is
written when one is bad) and returns the operation the handle commits after flushing.
"""

from __future__ import annotations

from typing import Any

from lakefmt.errors import ColumnExistsError, InvalidArgumentError, SchemaError
from lakefmt.format import commit as commits
from lakefmt.format.defaults import encode_default
from lakefmt.format.snapshot import Snapshot
from lakefmt.indexes.kinds import KINDS
from lakefmt.indexes.maintain import Declared
from lakefmt.types import Dict, Embedding, Text, check_column_metadata, resolve_type, type_from_json
from lakefmt.types.base import Type
from lakefmt.types.indexes import (
    ColumnKind,
    canonical_index_type,
    check_buildable,
    declared_index_types,
)


def check_column_name(name: Any) -> None:
    """Raise ``SchemaError`` unless ``name`` is a non-empty string."""
    if not isinstance(name, str) or not name:
        raise SchemaError(f"column names must be non-empty strings, got {name!r}")


def check_declared_indexes(column_type: Type) -> None:
    """Refuse a new column whose type declares an index this lakefmt does not build.

    Raises:
        InvalidTypeError: A JSON index or binary quantization.
    """
    for declaration in declared_index_types(column_type.params()):
        check_buildable(declaration, repr(column_type))


def add_column(snap: Snapshot, name: str, dtype: Any, default_value: Any) -> commits.Operation:
    """The operation adding column ``name`` of type ``dtype``.

    Raises:
        SchemaError: ``name`` is not a non-empty string, or ``dtype`` not a lakefmt type.
        ColumnExistsError: The name is taken.
        TypeMismatchError: ``default_value`` does not fit ``dtype``.
        DecodeError: ``default_value`` is corrupt media bytes.
    """
    check_column_name(name)
    if name in {f.name for f in snap.fields}:
        raise ColumnExistsError(f"column '{name}' already exists")
    column_type = resolve_type(dtype, column=name)
    check_declared_indexes(column_type)
    # validated and converted now, as an appended value would be, not on read
    encoded = (
        None if default_value is None else encode_default(default_value, column_type, column=name)
    )
    field = {
        "name": name,
        "type": column_type.to_json(),
        "arrow_type": str(column_type.storage_type),
        "default": encoded,
        "has_default": default_value is not None,
    }
    return commits.AddColumn(field)


def remove_column(snap: Snapshot, name: str) -> commits.Operation:
    """The operation removing column ``name``.

    Raises:
        ColumnNotFoundError: No such column.
    """
    field = snap.field(name)
    return commits.DropColumn(name, field.id)


def rename_column(snap: Snapshot, name: str, new_name: str) -> commits.Operation:
    """The operation renaming column ``name`` to ``new_name``.

    Raises:
        SchemaError: ``new_name`` is not a non-empty string.
        ColumnNotFoundError: No column ``name``.
        ColumnExistsError: ``new_name`` is taken.
    """
    check_column_name(new_name)
    field = snap.field(name)
    if new_name in {f.name for f in snap.fields}:
        raise ColumnExistsError(f"column '{new_name}' already exists")
    return commits.RenameColumn(name, field.id, new_name)


def set_column_metadata(snap: Snapshot, column: str, metadata: dict[str, Any]) -> commits.Operation:
    """The operation replacing the metadata of ``column``.

    Raises:
        ColumnNotFoundError: No such column.
        SchemaError: ``metadata`` does not suit the column's type.
    """
    field = snap.field(column)
    check_column_metadata(type_from_json(field.type), metadata, column=column)
    return commits.SetColumnMetadata(column, field.id, metadata)


def _index_kind(t: Type) -> ColumnKind | None:
    """What a column of type ``t`` is indexed as, or None if it cannot be."""
    if isinstance(t, Embedding):
        return "embedding"
    if isinstance(t, Text):
        return "text"
    if isinstance(t, Dict):
        return "json"
    if hasattr(t, "index_type"):
        return "numeric"
    return None


def _declarations(snap: Snapshot, column: str) -> tuple[Any, list[Any]]:
    field = snap.field(column)
    raw = (field.type.get("params") or {}).get("index_type")
    stored = [] if raw is None else (list(raw) if isinstance(raw, list) else [raw])
    return field, stored


def _one(index_type: Any, kind: ColumnKind, t: Type) -> str | dict[str, Any]:
    form = canonical_index_type(index_type, kind, repr(t))
    if form is None or isinstance(form, list):
        raise InvalidArgumentError("create_index/drop_index take one index type")
    return form


def _name(form: str | dict[str, Any]) -> str:
    return form if isinstance(form, str) else str(form["name"])


def declare_index(
    snap: Snapshot, column: str, index_type: Any
) -> tuple[commits.Operation, Declared | None]:
    """The operation declaring an index on ``column``, and what to build now (None for
    kinds that are written with the data files: numeric and JSON indexes).

    Raises:
        ColumnNotFoundError: No such column.
        SchemaError: The column's type cannot have an index.
        InvalidTypeError: ``index_type`` is not an index of that column's kind.
        InvalidArgumentError: The column already has an index of that kind.
    """
    field, stored = _declarations(snap, column)
    t = snap.type_of(field)
    kind = _index_kind(t)
    if kind is None:
        raise SchemaError(f"column '{column}' of type {t!r} cannot have an index")
    form = _one(index_type, kind, t)
    check_buildable(declared_index_types({"index_type": form})[0], repr(t))
    if _name(form) in {_name(f) for f in stored}:
        raise InvalidArgumentError(f"column '{column}' already has a {_name(form)} index")
    combined = [*stored, form]
    value = combined[0] if len(combined) == 1 else combined
    type_from_json(
        {**field.type, "params": {**(field.type.get("params") or {}), "index_type": value}}
    )
    op = commits.SetColumnIndexTypes(column, field.id, value)
    declaration = declared_index_types({"index_type": form})[0]
    build_kind = KINDS.get(declaration.name)
    if build_kind is None:
        return op, None
    return op, Declared(field, build_kind, declaration.index_params())


def undeclare_index(snap: Snapshot, column: str, index_type: Any) -> list[commits.Operation]:
    """The operations removing an index of ``column``: its declaration and its segments.

    Raises:
        ColumnNotFoundError: No such column.
        InvalidArgumentError: The column has no index of that kind.
    """
    field, stored = _declarations(snap, column)
    t = snap.type_of(field)
    kind = _index_kind(t)
    if kind is None:
        raise InvalidArgumentError(f"column '{column}' has no index")
    name = _name(_one(index_type, kind, t))
    kept = [f for f in stored if _name(f) != name]
    if len(kept) == len(stored):
        raise InvalidArgumentError(f"column '{column}' has no {name} index")
    value = None if not kept else (kept[0] if len(kept) == 1 else kept)
    return [
        commits.SetColumnIndexTypes(column, field.id, value),
        commits.DropIndex(field.id, name),
    ]
