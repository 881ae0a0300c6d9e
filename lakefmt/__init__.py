"""lakefmt: Deep Lake's dataset API on open Parquet files and a versioned JSON manifest.

>>> import lakefmt
>>> ds = lakefmt.create("mem://doctest-intro", schema={"id": "int64", "text": "text"})
>>> ds.append({"id": [1, 2], "text": ["a", "b"]})
>>> ds.commit("first rows")
'v1'
>>> ds["text"][:]
['a', 'b']
"""

from __future__ import annotations

from lakefmt import errors, types
from lakefmt.dataset import (
    Branch,
    Branches,
    Column,
    Dataset,
    DatasetView,
    Future,
    History,
    ReadOnlyDataset,
    Row,
    RowRange,
    Schema,
    Tag,
    Tags,
    Version,
    copy,
    create,
    create_async,
    delete,
    exists,
    like,
    open,
    open_async,
    open_read_only,
    open_read_only_async,
)
from lakefmt.errors import (
    BranchExistsError,
    ColumnMissingValueError,
    ColumnNotFoundError,
    CommitConflictError,
    DatasetExistsError,
    DatasetNotFoundError,
    DecodeError,
    FormatError,
    LakefmtError,
    MergeConflictError,
    QueryError,
    ReadOnlyError,
    StorageError,
    TagExistsError,
    TypeMismatchError,
    UnevenColumnsError,
    VersionNotFoundError,
)
from lakefmt.format import FORMAT_VERSION

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "Branch",
    "BranchExistsError",
    "Branches",
    "Column",
    "ColumnMissingValueError",
    "ColumnNotFoundError",
    "CommitConflictError",
    "Dataset",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "DatasetView",
    "Future",
    "DecodeError",
    "FormatError",
    "History",
    "LakefmtError",
    "MergeConflictError",
    "QueryError",
    "ReadOnlyDataset",
    "ReadOnlyError",
    "Row",
    "RowRange",
    "Schema",
    "StorageError",
    "Tag",
    "TagExistsError",
    "Tags",
    "TypeMismatchError",
    "UnevenColumnsError",
    "Version",
    "VersionNotFoundError",
    "__version__",
    "copy",
    "create",
    "create_async",
    "delete",
    "errors",
    "exists",
    "like",
    "open",
    "open_async",
    "open_read_only",
    "open_read_only_async",
    "types",
]
