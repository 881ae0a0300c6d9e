"""Dict-like dataset and column metadata, persisted with the manifest."""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

from lakefmt.errors import MetadataKeyError, SchemaError


def _check_json(key: str, value: Any) -> None:
    if not isinstance(key, str):
        raise SchemaError(f"metadata keys must be strings, got {type(key).__name__}")
    try:
        json.dumps(value, allow_nan=False)  # NaN and Infinity are not JSON
    except (TypeError, ValueError) as exc:
        raise SchemaError(
            f"metadata value for '{key}' must be JSON-serialisable (str, number, bool, None, "
            f"list, dict): {exc}"
        ) from exc


class _Metadata(MutableMapping[str, Any]):
    @abc.abstractmethod
    def _data(self) -> dict[str, Any]:
        """The current metadata dict."""

    @abc.abstractmethod
    def _store(self, values: dict[str, Any], removed: list[str]) -> None:
        """Persist new and removed keys."""

    def __getitem__(self, key: str) -> Any:
        data = self._data()
        if not isinstance(key, str) or key not in data:
            raise MetadataKeyError(
                f"no {self._what()} metadata key {key!r}; keys are {sorted(data)}"
            )
        return data[key]

    def _what(self) -> str:
        return "dataset"

    def __setitem__(self, key: str, value: Any) -> None:
        _check_json(key, value)
        self._store({key: value}, [])

    def __delitem__(self, key: str) -> None:
        if not isinstance(key, str) or key not in self._data():
            raise MetadataKeyError(
                f"no {self._what()} metadata key {key!r}; keys are {sorted(self._data())}"
            )
        self._store({}, [key])

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data()))

    def __len__(self) -> int:
        return len(self._data())

    def keys(self) -> Any:
        """The metadata keys."""
        return self._data().keys()

    def to_dict(self) -> dict[str, Any]:
        """A copy as a plain dict."""
        return dict(self._data())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data()!r})"


class DatasetMetadata(_Metadata):
    """Dataset-level metadata: ``ds.metadata["key"] = value`` writes a new version."""

    def __init__(self, view: Any) -> None:
        self._view = view

    def _data(self) -> dict[str, Any]:
        return self._view._snapshot().manifest.metadata

    def _store(self, values: dict[str, Any], removed: list[str]) -> None:
        self._view._writable()._set_metadata(values, removed)


class ColumnMetadata(_Metadata):
    """Per-column metadata: ``ds["col"].metadata["key"] = value``."""

    def __init__(self, view: Any, column: str) -> None:
        self._view = view
        self._column = column

    def _data(self) -> dict[str, Any]:
        return self._view._snapshot().field(self._column).metadata

    def _what(self) -> str:
        return f"column '{self._column}'"

    def _store(self, values: dict[str, Any], removed: list[str]) -> None:
        merged = {k: v for k, v in self._data().items() if k not in removed}
        merged.update(values)
        self._view._writable()._set_column_metadata(self._column, merged)
