"""Every exception lakefmt raises on purpose.

All of them derive from :class:`LakefmtError`, so ``except lakefmt.errors.LakefmtError``
catches anything the library raises deliberately. Where callers would reasonably catch a
builtin, the error also derives from it (a missing dataset is a ``FileNotFoundError``, a bad
value is a ``ValueError``, an index out of range stays an ``IndexError``).

Every class here is public, listed in ``__all__`` and also exported at the top level
(``lakefmt.TagNotFoundError is lakefmt.errors.TagNotFoundError``): callers catch specific
errors, not only the base, and a rule with no exceptions ("all of them") cannot drift the
way a hand-picked subset did. ``tests/test_public_api.py`` holds both lists to it.

::

    LakefmtError
    ├── DatasetExistsError (FileExistsError)
    ├── DatasetNotFoundError (FileNotFoundError)
    ├── ReadOnlyError (PermissionError)
    ├── SchemaError (ValueError)
    │   ├── ColumnExistsError
    │   ├── ColumnNotFoundError (also KeyError)
    │   ├── ColumnMissingValueError
    │   ├── UnevenColumnsError
    │   └── InvalidTypeError (also TypeError)
    ├── TypeMismatchError (TypeError)
    ├── DecodeError (ValueError)
    ├── VersionNotFoundError (LookupError)
    │   └── CommitIndexError (also IndexError)
    ├── TagExistsError
    ├── TagNotFoundError (LookupError)
    ├── BranchExistsError
    ├── BranchNotFoundError (LookupError)
    ├── BranchInUseError
    ├── InvalidNameError (ValueError)
    ├── UnknownAttributeError (AttributeError)
    ├── RowIndexError (IndexError)
    ├── InvalidIndexError (TypeError)
    ├── InvalidArgumentError (ValueError)
    │   └── InvalidMergeError
    ├── MetadataKeyError (KeyError)
    ├── CommitConflictError
    ├── MergeConflictError
    ├── StorageError (OSError)
    │   └── SourceNotFoundError (also FileNotFoundError)
    ├── MissingDependencyError (ImportError)
    ├── QueryError (ValueError)
    └── FormatError (ValueError)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "BranchExistsError",
    "BranchInUseError",
    "BranchNotFoundError",
    "ColumnExistsError",
    "ColumnMissingValueError",
    "ColumnNotFoundError",
    "CommitConflictError",
    "CommitIndexError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "DecodeError",
    "FormatError",
    "InvalidArgumentError",
    "InvalidIndexError",
    "InvalidMergeError",
    "InvalidNameError",
    "InvalidTypeError",
    "LakefmtError",
    "MergeConflictError",
    "MetadataKeyError",
    "MissingDependencyError",
    "QueryError",
    "ReadOnlyError",
    "RowIndexError",
    "SchemaError",
    "SourceNotFoundError",
    "StorageError",
    "TagExistsError",
    "TagNotFoundError",
    "TypeMismatchError",
    "UnevenColumnsError",
    "UnknownAttributeError",
    "VersionNotFoundError",
]


class LakefmtError(Exception):
    """Base of every error lakefmt raises on purpose."""


class DatasetExistsError(LakefmtError, FileExistsError):
    """A dataset already exists at the URL given to ``create``."""


class DatasetNotFoundError(LakefmtError, FileNotFoundError):
    """No lakefmt dataset is stored at the URL."""


class ReadOnlyError(LakefmtError, PermissionError):
    """A write was attempted on a read-only handle (``open_read_only`` or an old version)."""


class SchemaError(LakefmtError, ValueError):
    """The data does not fit the dataset's schema, or a schema change is invalid."""


class ColumnExistsError(SchemaError):
    """A column of that name already exists."""


class ColumnNotFoundError(SchemaError, KeyError):
    """No column of that name exists."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else ""


class ColumnMissingValueError(SchemaError):
    """An append left out a column that has no ``default_value``."""


class UnevenColumnsError(SchemaError):
    """The columns of a column-batch append have different lengths."""


class InvalidTypeError(SchemaError, TypeError):
    """A column type was built with arguments it does not take (``Embedding(0)``,
    ``Image(sample_compression="gif")``); the message names the argument."""


class TypeMismatchError(LakefmtError, TypeError):
    """A value has the wrong dtype, shape or size for its column."""


class DecodeError(LakefmtError, ValueError):
    """Media bytes (image, video, mesh) are corrupt or not of the expected format."""


class VersionNotFoundError(LakefmtError, LookupError):
    """No version, commit or tag of that id or name exists."""


class CommitIndexError(VersionNotFoundError, IndexError):
    """``history[i]`` with ``i`` out of range for the commits there are."""


class TagExistsError(LakefmtError):
    """A tag of that name already exists."""


class TagNotFoundError(LakefmtError, LookupError):
    """No tag of that name exists."""


class BranchExistsError(LakefmtError):
    """A branch of that name already exists."""


class BranchNotFoundError(LakefmtError, LookupError):
    """No branch of that name exists."""


class BranchInUseError(LakefmtError):
    """A branch cannot be deleted: tags or other branches need its versions (or it is main).

    Attributes:
        tags: The tags naming versions of the branch.
        branches: The branches forked from it.
    """

    def __init__(
        self, message: str, *, tags: Sequence[str] = (), branches: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.tags = list(tags)
        self.branches = list(branches)


class InvalidNameError(LakefmtError, ValueError):
    """A tag or branch name that cannot be used; the message says why."""


class UnknownAttributeError(LakefmtError, AttributeError):
    """An attribute that a dataset handle does not have was assigned (a typo, or an option
    of another library); nothing was set."""


class RowIndexError(LakefmtError, IndexError):
    """A row index, or the length of a boolean mask, is out of range for the rows there are."""


class InvalidIndexError(LakefmtError, TypeError):
    """Rows were indexed by something that is not an int, a slice of ints, a list or array
    of ints, or a boolean mask (a float, a string, a slice of strings...)."""


class InvalidArgumentError(LakefmtError, ValueError):
    """An argument has a value (or type) the function does not take: a batch size of 0, a
    slice step of 0, an unknown ``resolve=``, a commit message that is not a string...; the
    message names the argument."""


class MetadataKeyError(LakefmtError, KeyError):
    """No dataset or column metadata entry of that key."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else ""


class CommitConflictError(LakefmtError):
    """A concurrent writer changed what this commit changes; nothing of it was written.

    Attributes:
        read_version: The version number the failed commit was based on.
        latest_version: The version number that won the race.
        conflicts: Human-readable descriptions of each conflicting change.
    """

    def __init__(
        self,
        message: str,
        *,
        read_version: int | None = None,
        latest_version: int | None = None,
        conflicts: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.read_version = read_version
        self.latest_version = latest_version
        self.conflicts = list(conflicts)


class MergeConflictError(LakefmtError):
    """Both sides of a merge changed the same cells or the schema incompatibly.

    Attributes:
        rows: The row positions (in the target branch) where both sides changed a cell.
        columns: The column names involved.
    """

    def __init__(
        self, message: str, *, rows: Sequence[int] = (), columns: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.rows = list(rows)
        self.columns = list(columns)


class InvalidMergeError(InvalidArgumentError):
    """A merge that cannot mean anything: a branch into itself, or an unknown ``resolve``."""


class StorageError(LakefmtError, OSError):
    """The storage backend failed, or a URL cannot be served."""


class SourceNotFoundError(StorageError, FileNotFoundError):
    """A file or folder given to an importer (or a credentials file) does not exist."""


class MissingDependencyError(LakefmtError, ImportError):
    """An optional package needed for this URL or type is not installed."""


class QueryError(LakefmtError, ValueError):
    """A query could not be parsed or run; the message gives the position and reason.

    Attributes:
        position: Character offset in the query string where the problem is, if known.
    """

    def __init__(self, message: str, *, position: int | None = None, **context: Any) -> None:
        super().__init__(message)
        self.position = position
        self.context = context


class FormatError(LakefmtError, ValueError):
    """Files on storage are unreadable, damaged, or of a newer format version."""
