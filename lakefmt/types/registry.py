"""Type name -> class, and the normalisation of what users pass as a dtype."""

from __future__ import annotations

from typing import Any

from lakefmt.errors import FormatError, SchemaError
from lakefmt.types.base import Type
from lakefmt.types.extension import extension_class, set_type_resolver
from lakefmt.types.scalars import NUMERIC_DTYPES, Bytes, Numeric, Text

_BY_NAME: dict[str, type[Type]] = {"text": Text, "bytes": Bytes}

_ALIASES: dict[Any, str] = {
    str: "text",
    "str": "text",
    "string": "text",
    int: "int64",
    "int": "int64",
    float: "float64",
    "float": "float64",
    bool: "bool",
    bytes: "bytes",
    "binary": "bytes",
    "double": "float64",
}


def register_type(cls: type[Type]) -> type[Type]:
    """Register a type class under its ``name`` (a class decorator)."""
    _BY_NAME[cls.name] = cls
    if cls.is_extension:
        extension_class(cls.name)
    return cls


def type_from_json(data: dict[str, Any]) -> Type:
    """Rebuild a type from its manifest form ``{"name": ..., "params": {...}}``.

    Raises:
        FormatError: The type name or its parameters are unknown to this version of lakefmt.
    """
    name = data.get("name")
    params = dict(data.get("params") or {})
    if name in NUMERIC_DTYPES:
        cls: type[Type] = Numeric
        params["dtype"] = name  # numeric types are stored under their dtype
    else:
        found = _BY_NAME.get(name) if isinstance(name, str) else None
        if found is None:
            raise FormatError(f"unknown column type {name!r}; a newer lakefmt may be needed")
        cls = found
    try:
        return cls.from_params(params)
    except (TypeError, ValueError, KeyError) as exc:  # e.g. a parameter added by a newer lakefmt
        raise FormatError(
            f"column type {name!r} has parameters this lakefmt cannot read ({params}): {exc}; "
            "a newer lakefmt may be needed"
        ) from exc


set_type_resolver(type_from_json)


def resolve_type(spec: Any, *, column: str = "?") -> Type:
    """Turn what a user passes as a dtype (``"int32"``, ``str``, ``types.Image()``) into a Type.

    Raises:
        SchemaError: ``spec`` names no type.
    """
    if isinstance(spec, Type):
        return spec
    if spec is None:  # numpy reads None as float64: a forgotten type must not become one
        raise SchemaError(f"column '{column}': None is not a lakefmt type")
    if isinstance(spec, type) and issubclass(spec, Type):
        try:
            return spec()
        except TypeError as exc:
            raise SchemaError(f"column '{column}': {spec.__name__} needs arguments: {exc}") from exc
    try:
        key = _ALIASES.get(spec, spec)
    except TypeError:  # unhashable
        key = spec
    if isinstance(key, str):
        lowered = key.lower()
        lowered = _ALIASES.get(lowered, lowered)
        if lowered in NUMERIC_DTYPES:
            return Numeric(lowered)
        cls = _BY_NAME.get(lowered)
        if cls is not None:
            return cls()
    try:
        import numpy as np

        dtype = np.dtype(spec)
        if dtype.name in NUMERIC_DTYPES:
            return Numeric(dtype.name)
    except (TypeError, ValueError):
        pass
    raise SchemaError(
        f"column '{column}': {spec!r} is not a lakefmt type; use a name such as 'int32', "
        "'float32', 'text', 'bytes' or a lakefmt.types constructor"
    )
