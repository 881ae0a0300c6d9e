"""The dataset API: Dataset, ReadOnlyDataset, DatasetView, Column, Row and the top-level calls."""

from __future__ import annotations

from lakefmt.dataset.api import (
    copy,
    create,
    create_async,
    delete,
    exists,
    explain_query,
    like,
    open,
    open_async,
    open_read_only,
    open_read_only_async,
    query,
    query_async,
)
from lakefmt.dataset.dataset import Dataset, ReadOnlyDataset
from lakefmt.dataset.futures import Future
from lakefmt.dataset.two_phase import FragmentInfo, write_fragments
from lakefmt.dataset.versions import Branch, Branches, History, Tag, Tags, Version
from lakefmt.dataset.view import Column, DatasetView, Row, RowRange, Schema

__all__ = [
    "Branch",
    "Branches",
    "Column",
    "Dataset",
    "DatasetView",
    "FragmentInfo",
    "Future",
    "History",
    "ReadOnlyDataset",
    "Row",
    "RowRange",
    "Schema",
    "Tag",
    "Tags",
    "Version",
    "copy",
    "create",
    "create_async",
    "delete",
    "exists",
    "explain_query",
    "like",
    "open",
    "open_async",
    "open_read_only",
    "open_read_only_async",
    "query",
    "query_async",
    "write_fragments",
]
