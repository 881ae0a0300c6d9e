"""The dataset API: Dataset, ReadOnlyDataset, DatasetView, Column, Row and the top-level calls."""

from __future__ import annotations

from lakefmt.dataset.api import copy, create, delete, exists, like, open, open_read_only
from lakefmt.dataset.dataset import Dataset, ReadOnlyDataset
from lakefmt.dataset.versions import Branch, Branches, History, Tag, Tags, Version
from lakefmt.dataset.view import Column, DatasetView, Row, RowRange, Schema

__all__ = [
    "Branch",
    "Branches",
    "Column",
    "Dataset",
    "DatasetView",
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
    "delete",
    "exists",
    "like",
    "open",
    "open_read_only",
]
