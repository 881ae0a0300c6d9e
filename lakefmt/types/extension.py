"""Arrow extension types for lakefmt's multimodal types.

Each lakefmt type with ``is_extension`` gets one ``pa.ExtensionType`` subclass, registered
under the type's stable name (``lakefmt.image``, ...). Its serialized metadata is JSON
``{"v": 1, "params": {...}}``, so pyarrow (after ``import lakefmt``) reads Parquet files back
with the typed column, and without lakefmt sees the plain storage type.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from lakefmt.types.base import Type

EXTENSION_METADATA_VERSION = 1

_CLASSES: dict[str, type[LakefmtExtensionType]] = {}
_LOCK = threading.Lock()
#: Deserialized extension types, by (class, storage type, metadata); a handful in practice.
_DESERIALIZED: dict[tuple[Any, ...], LakefmtExtensionType] = {}
_DESERIALIZED_MAX = 1024
#: Rebuilds a lakefmt type from its manifest form; set by ``types.registry``, which sits above
#: this module (the types it registers build their Arrow types here).
_type_from_json: Callable[[dict[str, Any]], Type] | None = None


def set_type_resolver(resolver: Callable[[dict[str, Any]], Type]) -> None:
    """Install the function rebuilding a lakefmt type from ``{"name", "params"}``."""
    global _type_from_json
    _type_from_json = resolver


class LakefmtExtensionType(pa.ExtensionType):
    """Base of the registered extension types; ``lakefmt_type`` is the lakefmt type it carries."""

    _lakefmt_name: str = ""

    def __init__(self, storage_type: pa.DataType, params: dict[str, Any]) -> None:
        self.params = params
        self._serialized = json.dumps(
            {"v": EXTENSION_METADATA_VERSION, "params": params}, sort_keys=True
        ).encode()
        super().__init__(storage_type, self._lakefmt_name)

    @property
    def lakefmt_type(self) -> Type:
        """The lakefmt type these values belong to."""
        # importing any lakefmt.types module imports the package, which installs it
        assert _type_from_json is not None
        return _type_from_json({"name": self._lakefmt_name, "params": self.params})

    def __arrow_ext_serialize__(self) -> bytes:
        return self._serialized

    @classmethod
    def __arrow_ext_deserialize__(
        cls, storage_type: pa.DataType, serialized: bytes
    ) -> LakefmtExtensionType:
        # pyarrow rebuilds the schema's types on every file opened and row group read; the
        # types are immutable, so one instance per (class, storage, metadata) serves them all
        key = (cls, storage_type, serialized)
        found = _DESERIALIZED.get(key)
        if found is None:
            try:
                meta = json.loads(serialized.decode() or "{}")
            except ValueError:
                meta = {}
            found = cls(storage_type, meta.get("params", {}))
            with _LOCK:
                if len(_DESERIALIZED) >= _DESERIALIZED_MAX:
                    _DESERIALIZED.clear()
                _DESERIALIZED[key] = found
        return found

    def __arrow_ext_class__(self) -> type[pa.ExtensionArray]:
        return LakefmtArray

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self._lakefmt_name, self.storage_type, self.params)


class LakefmtArray(pa.ExtensionArray):
    """Arrays of a lakefmt extension type: ``decode()`` gives what a column read gives."""

    @property
    def lakefmt_type(self) -> Type:
        """The lakefmt type of these values."""
        return self.type.lakefmt_type

    def decode(self) -> Any:
        """Decode the values (images to arrays, JSON to dicts...) with the lakefmt type."""
        return self.lakefmt_type.decode(self)


def _rebuild(name: str, storage_type: pa.DataType, params: dict[str, Any]) -> pa.ExtensionType:
    return extension_class(name)(storage_type, params)


def extension_class(name: str) -> type[LakefmtExtensionType]:
    """Return (creating and registering once) the extension class for a type name."""
    with _LOCK:
        cls = _CLASSES.get(name)
        if cls is None:
            cls = type(
                "".join(p.capitalize() for p in name.split(".")[-1].split("_")) + "ArrowType",
                (LakefmtExtensionType,),
                {"_lakefmt_name": name, "__module__": __name__},
            )
            _CLASSES[name] = cls
            try:
                pa.register_extension_type(cls(pa.binary(), {}))
            except pa.ArrowKeyError:  # registered by an earlier import of this module
                pa.unregister_extension_type(name)
                pa.register_extension_type(cls(pa.binary(), {}))
        return cls


def extension_type_for(lakefmt_type: Type) -> pa.ExtensionType:
    """Return the Arrow extension type instance for a lakefmt type."""
    return extension_class(lakefmt_type.name)(lakefmt_type.storage_type, lakefmt_type.params())
