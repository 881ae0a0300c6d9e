"""Schema changes of the dataset API, checked and turned into commit operations.

Each function validates its arguments against the handle's current version (nothing is
written when one is bad) and returns the operation the handle commits after flushing.
"""

from __future__ import annotations

from typing import Any

from lakefmt.errors import ColumnExistsError, SchemaError
from lakefmt.format import commit as commits
from lakefmt.format.defaults import encode_default
from lakefmt.format.snapshot import Snapshot
from lakefmt.types import check_column_metadata, resolve_type, type_from_json


def check_column_name(name: Any) -> None:
    """Raise ``SchemaError`` unless ``name`` is a non-empty string."""
    if not isinstance(name, str) or not name:
        raise SchemaError(f"column names must be non-empty strings, got {name!r}")


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
