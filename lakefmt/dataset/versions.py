"""Version, history, tag and branch objects of the public API.

They sit below the dataset handles that make them: what they need from a handle is the
:class:`VersionedHandle` protocol, generic in the handle types it opens (``Version.open()``
gives a ``ReadOnlyDataset``, ``Branch.open()`` a ``Dataset``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from lakefmt.errors import BranchNotFoundError, CommitIndexError, VersionNotFoundError
from lakefmt.format import layout, refs
from lakefmt.format.manifest import Manifest, TagFile
from lakefmt.format.versions import iter_commits, list_branches, resolve_ref
from lakefmt.storage import Storage

#: The read-only handle a version or tag opens.
PinnedT = TypeVar("PinnedT", covariant=True)
#: The writable handle a branch opens.
WriterT = TypeVar("WriterT", covariant=True)


class VersionedHandle(Protocol[PinnedT, WriterT]):
    """What version, tag and branch objects need from the dataset handle they came from."""

    @property
    def _storage(self) -> Storage: ...

    def _check_writable(self) -> None:
        """Raise ``ReadOnlyError`` unless the handle may write (deleting refs)."""
        ...

    def _pinned_at(self, manifest: Manifest) -> PinnedT:
        """A read-only handle at ``manifest``."""
        ...

    def _open_branch(self, name: str) -> WriterT:
        """A writable handle at the head of branch ``name``."""
        ...


class Version(Generic[PinnedT]):
    """A commit: ``id``, ``message``, ``timestamp``, ``branch`` and ``open()``.

    ``number`` is the manifest number (informative: numbers also count flushes).
    """

    def __init__(self, dataset: VersionedHandle[PinnedT, Any], manifest: Manifest) -> None:
        self._dataset = dataset
        self._manifest = manifest
        self.id: str = manifest.version_id
        self.message = manifest.message
        self.timestamp = datetime.datetime.fromtimestamp(manifest.timestamp / 1000, tz=datetime.UTC)
        self.branch = manifest.branch
        self.number = manifest.version

    @property
    def legacy_id(self) -> str | None:
        """The format-1 id (``v12``, ``dev/v12``) of a commit written in format 1, else None."""
        m = self._manifest
        if m.format_version >= 2:
            return None
        return f"v{m.version}" if m.branch == layout.MAIN_BRANCH else f"{m.branch}/v{m.version}"

    def open(self) -> PinnedT:
        """Open the dataset as it was at this commit (read-only)."""
        return self._dataset._pinned_at(self._manifest)

    def __repr__(self) -> str:
        when = self.timestamp.isoformat()
        return f"Version(id={self.id!r}, message={self.message!r}, timestamp={when})"


class History(Generic[PinnedT]):
    """The commits leading to a dataset's current version, oldest first.

    ``history[id]`` finds a commit by id, ``history[-1]`` is the newest; iteration reads
    the commit manifests lazily.
    """

    def __init__(self, dataset: VersionedHandle[PinnedT, Any], head: Manifest) -> None:
        self._dataset = dataset
        self._head = head
        self._cache: list[Version[PinnedT]] | None = None

    def _versions(self) -> list[Version[PinnedT]]:
        if self._cache is None:
            commits = list(iter_commits(self._dataset._storage, self._head))
            self._cache = [Version(self._dataset, m) for m in reversed(commits)]
        return self._cache

    def __iter__(self) -> Iterator[Version[PinnedT]]:
        return iter(self._versions())

    def __len__(self) -> int:
        return len(self._versions())

    def __getitem__(self, key: int | str) -> Version[PinnedT]:
        versions = self._versions()
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -len(versions) <= key < len(versions):
                raise CommitIndexError(
                    f"commit index {int(key)} is out of range for {len(versions)} commits"
                )
            return versions[key]
        if not isinstance(key, str):
            raise VersionNotFoundError(
                f"commits are found by index or version id, not by {type(key).__name__} {key!r}"
            )
        for version in versions:
            if key in (version.id, version.legacy_id):
                return version
        hint = ""
        if key == self._head.id:
            hint = " (that is this handle's version, which holds changes flushed but not committed)"
        raise VersionNotFoundError(f"no commit {key!r} in this dataset's history{hint}")

    def __repr__(self) -> str:
        return f"History({[v.id for v in self._versions()]})"


class Tag(Generic[PinnedT]):
    """A name for a version: ``name``, ``version`` (its id), ``message``, ``open()``,
    ``delete()``."""

    def __init__(self, dataset: VersionedHandle[PinnedT, Any], info: TagFile) -> None:
        self._dataset = dataset
        self._info = info
        self.name: str = info.name
        self.message: str | None = info.message
        self.timestamp = datetime.datetime.fromtimestamp(info.timestamp / 1000, tz=datetime.UTC)

    @property
    def version(self) -> str:
        """The id of the tagged version.

        Raises:
            VersionNotFoundError: The tagged version no longer exists.
        """
        return refs.tag_version_id(self._dataset._storage, self._info)

    def open(self) -> PinnedT:
        """Open the dataset at the tagged version (read-only).

        Raises:
            VersionNotFoundError: The tagged version no longer exists.
        """
        try:
            manifest = resolve_ref(self._dataset._storage, self._info.ref)
        except BranchNotFoundError as exc:
            raise VersionNotFoundError(f"tag '{self.name}' names a deleted branch: {exc}") from None
        return self._dataset._pinned_at(manifest)

    def delete(self) -> None:
        """Remove the tag."""
        self._dataset._check_writable()
        refs.delete_tag(self._dataset._storage, self.name)

    def __repr__(self) -> str:
        return f"Tag(name={self.name!r}, version={self._info.id or self._info.version!r})"


class Tags(Generic[PinnedT]):
    """The tags of a dataset: ``tags[name]``, ``tags.names()``, ``len``, iteration."""

    def __init__(self, dataset: VersionedHandle[PinnedT, Any]) -> None:
        self._dataset = dataset

    def names(self) -> list[str]:
        """Tag names, sorted."""
        return refs.list_tags(self._dataset._storage)

    def __getitem__(self, name: str) -> Tag[PinnedT]:
        return Tag(self._dataset, refs.read_tag(self._dataset._storage, name))

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[Tag[PinnedT]]:
        return (self[name] for name in self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Tags({self.names()})"


class Branch(Generic[WriterT]):
    """A branch: ``name``, ``open()``, ``delete()``."""

    def __init__(self, dataset: VersionedHandle[Any, WriterT], name: str) -> None:
        self._dataset = dataset
        self.name = name

    def open(self) -> WriterT:
        """Open the branch's head for reading and writing."""
        return self._dataset._open_branch(self.name)

    def delete(self) -> None:
        """Remove the branch (its data files stay until cleanup)."""
        self._dataset._check_writable()
        refs.delete_branch(self._dataset._storage, self.name)

    def __repr__(self) -> str:
        return f"Branch({self.name!r})"


class Branches(Generic[WriterT]):
    """The branches of a dataset: ``branches[name]``, ``branches.names()``, iteration."""

    def __init__(self, dataset: VersionedHandle[Any, WriterT]) -> None:
        self._dataset = dataset

    def names(self) -> list[str]:
        """Branch names, ``main`` first."""
        return list_branches(self._dataset._storage)

    def __getitem__(self, name: str) -> Branch[WriterT]:
        if name not in self.names():
            raise BranchNotFoundError(f"no branch '{name}'")
        return Branch(self._dataset, name)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[Branch[WriterT]]:
        return (Branch(self._dataset, n) for n in self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Branches({self.names()})"
