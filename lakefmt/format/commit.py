"""The commit protocol: operations applied to the newest manifest, created if absent.

A writer builds its change as a list of :class:`Operation` objects against the version it
read (its *base*). To commit, it applies them to the newest manifest and tries to create
the next manifest number with the storage's atomic create-if-absent. If another writer got
there first, it reads what landed and applies the same operations again on top (a rebase);
an operation that cannot be re-applied raises :class:`CommitConflictError` naming what
conflicted. Data files are written before any attempt, so a rebase costs a manifest, not a
rewrite (see ``spec/format.md``, "Committing").
"""

from __future__ import annotations

import abc
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.errors import (
    ColumnExistsError,
    ColumnNotFoundError,
    CommitConflictError,
    FormatError,
    StorageError,
)
from lakefmt.format import encoding, layout
from lakefmt.format import fragments as files
from lakefmt.format.defaults import upgraded_fields
from lakefmt.format.manifest import (
    FORMAT_VERSION,
    WRITER_FEATURES,
    DataFile,
    Field,
    Fragment,
    Index,
    IndexSegment,
    Manifest,
    UpdateFile,
    dump_manifest,
    now_ms,
)
from lakefmt.format.snapshot import Snapshot
from lakefmt.format.versions import read_head
from lakefmt.storage import Storage

#: How many times a writer rebases before giving up (each retry waits a little longer).
MAX_ATTEMPTS = 200
#: An update touching more than this share of a fragment's rows rewrites the column group.
FULL_REWRITE_SHARE = 0.25


class Operation(abc.ABC):
    """One change to a manifest, re-applicable on a newer manifest."""

    name: str = "change"

    @abc.abstractmethod
    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Return ``manifest`` with this change applied (version fields untouched).

        Raises:
            CommitConflictError: The change no longer applies to ``manifest``.
        """


def _conflict(message: str, base: Manifest, latest: Manifest) -> CommitConflictError:
    return CommitConflictError(
        f"{message} (based on version {base.id}, newest is {latest.id} of branch "
        f"'{latest.branch}'); nothing was committed",
        read_version=base.version,
        latest_version=latest.version,
        conflicts=[message],
    )


@dataclasses.dataclass
class AppendFragments(Operation):
    """Add fragments whose files are already written; always rebases."""

    drafts: list[tuple[int, list[DataFile]]]
    """(row count, column group files) of each new fragment."""
    name: str = "append"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Give the fragments the next ids and add them.

        Fragments whose (uniquely named) data files ``manifest`` already lists are not added
        again: an earlier attempt of this commit landed although it was reported as failed.
        """
        listed = {d.path for f in manifest.fragments for d in f.files}
        next_id = manifest.next_fragment_id
        new = []
        for rows, data_files in self.drafts:
            if any(d.path in listed for d in data_files):
                continue
            new.append(Fragment(id=next_id, rows=rows, files=data_files))
            next_id += 1
        return manifest.model_copy(
            update={"fragments": [*manifest.fragments, *new], "next_fragment_id": next_id}
        )


@dataclasses.dataclass
class AppendFragmentCopies(Operation):
    """Add fragments taken whole from another branch (deletions and updates included)."""

    templates: list[Fragment]
    name: str = "append"
    assigned: dict[int, int] = dataclasses.field(default_factory=dict)
    """Filled by ``apply``: template fragment id -> id given in the target."""

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Give the copies the next fragment ids and add them."""
        next_id = manifest.next_fragment_id
        new = []
        self.assigned = {}
        for template in self.templates:
            self.assigned[template.id] = next_id
            new.append(template.model_copy(update={"id": next_id}))
            next_id += 1
        return manifest.model_copy(
            update={"fragments": [*manifest.fragments, *new], "next_fragment_id": next_id}
        )


def _fragment_index(manifest: Manifest) -> dict[int, int]:
    return {f.id: i for i, f in enumerate(manifest.fragments)}


@dataclasses.dataclass
class DeleteRows(Operation):
    """Delete physical rows of fragments; rebases by merging with concurrent deletions."""

    base: Manifest
    positions: dict[int, np.ndarray]
    """fragment id -> sorted physical positions to delete."""
    name: str = "delete"
    _written: dict[tuple[int, str | None], Any] = dataclasses.field(default_factory=dict)

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Write (or reuse) the merged deletion files and drop fully deleted fragments."""
        index = _fragment_index(manifest)
        fragments = list(manifest.fragments)
        snapshot = Snapshot(storage, manifest)
        for frag_id, positions in self.positions.items():
            i = index.get(frag_id)
            if i is None:
                raise _conflict(
                    f"rows to delete were in fragment {frag_id}, which a concurrent commit "
                    "rewrote (compaction or delete); delete again on the new version",
                    self.base,
                    manifest,
                )
            fragment = fragments[i]
            current = fragment.deletion.path if fragment.deletion else None
            key = (frag_id, current)
            if key not in self._written:
                merged = np.union1d(snapshot.deleted(fragment), positions)
                # A fully deleted fragment stays (with every row deleted) until compaction,
                # so merges can tell "all rows deleted" from "rewritten by optimize".
                self._written[key] = files.write_deletion_file(storage, frag_id, merged)
            fragments[i] = fragment.model_copy(update={"deletion": self._written[key]})
        return manifest.model_copy(update={"fragments": fragments})


@dataclasses.dataclass
class UpdateCells(Operation):
    """New values for cells, addressed by (fragment, physical position) and field id.

    Rebases when a concurrent commit changed other cells of the same column; raises
    :class:`CommitConflictError` when it changed one of ours to a different value.
    """

    base: Manifest
    changes: dict[tuple[int, int], tuple[np.ndarray, pa.Array]]
    """(fragment id, field id) -> (sorted unique positions, new values)."""
    name: str = "update"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Merge the new values into each touched fragment's update file or column group."""
        index = _fragment_index(manifest)
        base_index = _fragment_index(self.base)
        fragments = list(manifest.fragments)
        latest = Snapshot(storage, manifest)
        base = Snapshot(storage, self.base)
        field_ids = {f.id: f for f in manifest.fields}
        for (frag_id, field_id), (positions, values) in self.changes.items():
            i = index.get(frag_id)
            field = field_ids.get(field_id)
            if i is None or field is None:
                what = f"fragment {frag_id}" if i is None else f"column id {field_id}"
                raise _conflict(
                    f"updated cells belong to {what}, which a concurrent commit removed",
                    self.base,
                    manifest,
                )
            fragment = fragments[i]
            base_fragment = self.base.fragments[base_index[frag_id]]
            if _column_state(fragment, field_id) != _column_state(base_fragment, field_id):
                before = base.read_fragment(base_fragment, [field], positions)[field_id]
                now = latest.read_fragment(fragment, [field], positions)[field_id]
                changed = np.flatnonzero(~_equal(before, now))
                if len(changed):
                    raise _conflict(
                        f"column '{field.name}' rows at positions "
                        f"{positions[changed][:10].tolist()} of fragment {frag_id} were "
                        "changed by a concurrent commit",
                        self.base,
                        manifest,
                    )
            fragments[i] = _merge_update(storage, latest, fragment, field, positions, values)
        return manifest.model_copy(update={"fragments": fragments})


def _column_state(fragment: Fragment, field_id: int) -> tuple[Any, ...]:
    files_with = tuple(d.path for d in fragment.files if field_id in d.field_ids)
    updates = tuple(u.path for u in fragment.updates if u.field_id == field_id)
    return files_with, updates


def _equal(a: pa.Array, b: pa.Array) -> np.ndarray:
    return np.array([x == y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], dtype=bool)


def _merge_update(
    storage: Storage,
    snapshot: Snapshot,
    fragment: Fragment,
    field: Field,
    positions: np.ndarray,
    values: pa.Array,
) -> Fragment:
    old = next((u for u in fragment.updates if u.field_id == field.id), None)
    if old is not None:
        old_pos, old_values = files.read_update_file(storage, old.path, old.size)
        keep = ~np.isin(old_pos, positions)
        all_pos = np.concatenate([old_pos[keep], positions])
        all_values = pa.concat_arrays([old_values.filter(pa.array(keep)), values])
    else:
        all_pos, all_values = positions, values
    order = np.argsort(all_pos, kind="stable")
    all_pos = all_pos[order]
    all_values = all_values.take(pa.array(order))
    others = [u for u in fragment.updates if u.field_id != field.id]
    if len(all_pos) > FULL_REWRITE_SHARE * fragment.rows:
        # Rewrite the column for the whole fragment as a new column group; the last file
        # holding a field id wins, so older groups need no rewrite.
        full = snapshot.read_fragment(
            fragment.model_copy(update={"updates": others}),
            [field],
            np.arange(fragment.rows, dtype=np.int64),
        )[field.id]
        take = np.arange(fragment.rows, dtype=np.int64)
        take[all_pos] = fragment.rows + np.arange(len(all_pos))
        column = pa.concat_arrays([full, all_values.cast(full.type)]).take(pa.array(take))
        data_file = files.write_data_file(
            storage,
            pa.table({field.name: column}),
            [field.id],
            media=snapshot.type_of(field).is_media,
            bloom_filters=[field.id] if encoding.wants_bloom_filter(field) else (),
            lookup_row_groups=encoding.wants_lookup_row_groups(field),
        )
        return fragment.model_copy(
            update={"files": [*fragment.files, data_file], "updates": others}
        )
    update: UpdateFile = files.write_update_file(
        storage, fragment.id, field.id, all_pos, all_values
    )
    return fragment.model_copy(update={"updates": [*others, update]})


# Schema changes: one operation per kind, each replayed by name (or field id) on the newest
# schema. The manifest records them all as operation "schema".


@dataclasses.dataclass
class AddColumn(Operation):
    """Add a column; the newest manifest assigns its field id."""

    new_field: dict[str, Any]
    """The new :class:`Field`'s attributes (``name``, ``type``, defaults...) but its ``id``."""
    name = "schema"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Append the field with the next field id.

        Raises:
            ColumnExistsError: A concurrent commit added a column of the same name.
        """
        column = self.new_field["name"]
        if column in {f.name for f in manifest.fields}:
            raise ColumnExistsError(f"column '{column}' already exists")
        field = Field(id=manifest.next_field_id, **self.new_field)
        return manifest.model_copy(
            update={
                "fields": [*manifest.fields, field],
                "next_field_id": manifest.next_field_id + 1,
            }
        )


@dataclasses.dataclass
class ColumnChange(Operation):
    """A change to an existing column, found by field id on the newest schema (a rename by
    a concurrent commit does not lose it)."""

    column: str
    """The column's name when the change was made (for messages)."""
    field_id: int
    name = "schema"

    def _position(self, fields: Sequence[Field]) -> int:
        """Where the column is in ``fields``.

        Raises:
            ColumnNotFoundError: A concurrent commit removed the column.
        """
        i = next((k for k, f in enumerate(fields) if f.id == self.field_id), None)
        if i is None:
            raise ColumnNotFoundError(
                f"column '{self.column}' no longer exists (removed by a concurrent commit)"
            )
        return i


@dataclasses.dataclass
class DropColumn(ColumnChange):
    """Remove a column from the schema (its data files stay for older versions)."""

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Remove the field.

        Raises:
            ColumnNotFoundError: A concurrent commit removed the column.
        """
        fields = list(manifest.fields)
        del fields[self._position(fields)]
        indexes = [i for i in manifest.indexes if i.field_id != self.field_id]
        return manifest.model_copy(update={"fields": fields, "indexes": indexes})


@dataclasses.dataclass
class RenameColumn(ColumnChange):
    """Rename a column (data files address it by field id, so nothing is rewritten)."""

    new_name: str

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Give the field its new name.

        Raises:
            ColumnNotFoundError: A concurrent commit removed the column.
            ColumnExistsError: A concurrent commit took the new name.
        """
        fields = list(manifest.fields)
        i = self._position(fields)
        if self.new_name in {f.name for f in fields}:
            raise ColumnExistsError(f"column '{self.new_name}' already exists")
        fields[i] = fields[i].model_copy(update={"name": self.new_name})
        return manifest.model_copy(update={"fields": fields})


@dataclasses.dataclass
class SetColumnMetadata(ColumnChange):
    """Replace a column's metadata."""

    metadata: dict[str, Any]

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Set the field's metadata.

        Raises:
            ColumnNotFoundError: A concurrent commit removed the column.
        """
        fields = list(manifest.fields)
        i = self._position(fields)
        fields[i] = fields[i].model_copy(update={"metadata": dict(self.metadata)})
        return manifest.model_copy(update={"fields": fields})


@dataclasses.dataclass
class SetColumnIndexTypes(ColumnChange):
    """Replace the indexes a column's type declares (``index_type`` in its params)."""

    index_type: Any
    """The canonical JSON of the declarations, or None for none."""

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Set the declarations in the field's type.

        Raises:
            ColumnNotFoundError: A concurrent commit removed the column.
        """
        fields = list(manifest.fields)
        i = self._position(fields)
        params = dict(fields[i].type.get("params") or {})
        params.pop("index_type", None)
        if self.index_type is not None:
            params["index_type"] = self.index_type
        new_type = {**fields[i].type, "params": params}
        if not params:
            new_type.pop("params")
        fields[i] = fields[i].model_copy(update={"type": new_type})
        return manifest.model_copy(update={"fields": fields})


@dataclasses.dataclass
class SetMetadata(Operation):
    """Set (value) or remove (``None`` in ``removed``) dataset metadata keys."""

    values: dict[str, Any]
    removed: Sequence[str] = ()
    name: str = "metadata"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Merge the keys into the newest metadata."""
        merged = {k: v for k, v in manifest.metadata.items() if k not in self.removed}
        merged.update(self.values)
        return manifest.model_copy(update={"metadata": merged})


# Index changes (operation "index"): segments are checked against the fragments by every
# reader (spec/format.md, "Indexes"), so they re-apply on any newer manifest unchanged.


@dataclasses.dataclass
class AddIndexSegment(Operation):
    """Add a segment to an index of a column, creating the index if the manifest has none.

    With ``replace`` the segment replaces the index's segments (a rebuild). Re-applied on a
    manifest that no longer has the column, it adds nothing.
    """

    template: Index
    """The index as it should appear if new (``id`` and ``segments`` are assigned here)."""
    segment: IndexSegment
    replace: bool = False
    name: str = "index"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Give the segment the next segment id of its index and add it."""
        if self.template.field_id not in {f.id for f in manifest.fields}:
            return manifest
        indexes = list(manifest.indexes)
        at = next(
            (
                i
                for i, x in enumerate(indexes)
                if x.field_id == self.template.field_id and x.kind == self.template.kind
            ),
            None,
        )
        next_index_id = manifest.next_index_id
        if at is None:
            index = self.template.model_copy(update={"id": next_index_id, "segments": []})
            next_index_id += 1
            indexes.append(index)
            at = len(indexes) - 1
        index = indexes[at]
        if any(
            f.path in {g.path for s in index.segments for g in s.files} for f in self.segment.files
        ):
            return manifest  # an earlier attempt of this commit landed
        segment_id = max((s.id for s in index.segments), default=-1) + 1
        segment = self.segment.model_copy(update={"id": segment_id})
        kept = [] if self.replace else list(index.segments)
        indexes[at] = index.model_copy(
            update={
                "segments": [*kept, segment],
                "engine": self.template.engine,
                "engine_version": self.template.engine_version,
                "params": self.template.params,
            }
        )
        return manifest.model_copy(update={"indexes": indexes, "next_index_id": next_index_id})


@dataclasses.dataclass
class DropIndex(Operation):
    """Remove the indexes of a kind from a column (their files stay for older versions)."""

    field_id: int
    kind: str
    name: str = "index"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Leave the column's index of that kind out."""
        indexes = [
            i for i in manifest.indexes if not (i.field_id == self.field_id and i.kind == self.kind)
        ]
        return manifest.model_copy(update={"indexes": indexes})


@dataclasses.dataclass
class ReplaceFragments(Operation):
    """Swap fragments for rewritten ones (compaction); conflicts if they changed meanwhile."""

    base: Manifest
    removed: list[int]
    drafts: list[tuple[int, list[DataFile]]]
    name: str = "optimize"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Put the new fragments where the first removed one was."""
        base_frags = {f.id: f for f in self.base.fragments}
        latest = {f.id: f for f in manifest.fragments}
        for frag_id in self.removed:
            if latest.get(frag_id) != base_frags.get(frag_id):
                raise _conflict(
                    f"fragment {frag_id} changed while it was being compacted", self.base, manifest
                )
        removed = set(self.removed)
        next_id = manifest.next_fragment_id
        new = []
        for rows, data_files in self.drafts:
            new.append(Fragment(id=next_id, rows=rows, files=data_files))
            next_id += 1
        out: list[Fragment] = []
        inserted = False
        for fragment in manifest.fragments:
            if fragment.id in removed:
                if not inserted:
                    out.extend(new)
                    inserted = True
                continue
            out.append(fragment)
        if not inserted:
            out.extend(new)
        return manifest.model_copy(update={"fragments": out, "next_fragment_id": next_id})


#: Where probing upward for the head is cheap (local disk, memory), the latest hint is
#: refreshed only at versions that are multiples of this: a reader then probes at most this
#: many names past it, and a small commit skips a file write.
HINT_INTERVAL = 16


def write_manifest_if_absent(storage: Storage, manifest: Manifest) -> bool:
    """Create the manifest file unless that version exists; also refresh the latest hint
    (at every version on object stores, every :data:`HINT_INTERVAL` where probes are cheap)."""
    path = layout.manifest_path(manifest.branch, manifest.version, manifest.branch_id)
    data = dump_manifest(manifest)
    try:
        created = storage.put_if_absent(path, data)
    except OSError as exc:
        created = _landed_after_failure(storage, path, data, exc)
    if not created:
        # A retried conditional PUT (after a timeout) can find the object its first attempt
        # created: byte-identical content (same timestamp, same fresh file names) is ours.
        try:
            created = storage.read(path) == data
        except FileNotFoundError:
            created = False
    hint_due = manifest.version % HINT_INTERVAL == 0 or not storage.capabilities.cheap_probes
    if created and hint_due:
        try:
            storage.write(
                layout.latest_hint_path(manifest.branch, manifest.branch_id),
                str(manifest.version).encode(),
                durable=False,
            )
        except OSError:
            pass  # only a hint: readers verify it
    return created


def _landed_after_failure(storage: Storage, path: str, data: bytes, error: OSError) -> bool:
    """After a create reported a failure, whether it landed: a store may write and then
    fail (a lost answer, a timeout), and a commit reported as failed must not exist.

    Returns:
        True if ``path`` holds exactly ``data`` (the commit landed), False if another
        writer's manifest is there (rebase).

    Raises:
        StorageError: Nothing is there (the original failure, naming the path), or the
            read-back failed too (whether the commit landed is unknown).
    """
    try:
        found = storage.read(path)
    except FileNotFoundError:
        if isinstance(error, StorageError):
            raise error from error.__cause__
        raise StorageError(f"{storage.url}: cannot create {path}: {error}") from error
    except OSError as read_error:
        raise StorageError(
            f"{storage.url}: creating {path} failed ({error}) and reading it back failed "
            f"({read_error}): whether this commit landed is unknown; reopen the dataset to "
            "see (committing again does not append the same rows twice)"
        ) from error
    return found == data


def commit(
    storage: Storage,
    base: Manifest,
    operations: Sequence[Operation],
    *,
    is_commit: bool = False,
    message: str | None = None,
    on_retry: Callable[[Manifest], None] | None = None,
) -> Manifest:
    """Apply ``operations`` on the newest manifest of ``base.branch`` and create the next one.

    Returns:
        The manifest that was created.

    Raises:
        CommitConflictError: An operation no longer applies, or too many writers kept winning.
        BranchNotFoundError: The branch was deleted (this handle is stale).
    """
    current = base
    delay = 0.001
    for _attempt in range(MAX_ATTEMPTS):
        manifest = current
        for operation in operations:
            manifest = operation.apply(storage, manifest)
        name = "+".join(dict.fromkeys(op.name for op in operations)) or "commit"
        manifest = manifest.model_copy(
            update={
                "version": current.version + 1,
                "id": layout.make_version_id(current.version + 1),
                "parent": current.ref,
                "timestamp": max(now_ms(), current.timestamp + 1),
                "is_commit": is_commit,
                "message": message if is_commit else None,
                "previous_commit": current.ref if current.is_commit else current.previous_commit,
                "operation": name,
                # every new manifest is of the current format version, even in an older
                # dataset; defaults carried from a format-1 manifest are re-encoded
                "format_version": FORMAT_VERSION,
                "fields": upgraded_fields(manifest.fields),
            }
        )
        if write_manifest_if_absent(storage, manifest):
            return manifest
        # The same folder as the base: a handle on a deleted branch meets its tombstone
        # (BranchNotFoundError) instead of writing into a later branch of the same name.
        current = read_head(storage, base.branch, base.branch_id, at_least=current.version + 1)
        if on_retry is not None:
            on_retry(current)
        time.sleep(delay * random.random())
        delay = min(delay * 2, 0.05)
    raise CommitConflictError(
        f"gave up committing to {storage.url} after {MAX_ATTEMPTS} attempts: other writers "
        "kept committing first",
        read_version=base.version,
        latest_version=current.version,
    )


def check_writer_features(manifest: Manifest, location: str) -> None:
    """Refuse to write a dataset that uses writer features this library does not know.

    Raises:
        FormatError: The manifest lists an unknown writer feature.
    """
    unknown = set(manifest.writer_features) - WRITER_FEATURES
    if unknown:
        raise FormatError(
            f"{location}: needs writer features {sorted(unknown)} that this lakefmt lacks; "
            "open it read-only or upgrade"
        )


def check_atomic(storage: Storage) -> None:
    """Refuse to write where commits could silently overwrite each other.

    Raises:
        StorageError: The backend has no atomic create-if-absent.
    """
    if not storage.capabilities.atomic_create:
        raise StorageError(
            f"{storage.url}: this storage ignores conditional creates, so concurrent "
            "writers could lose commits; if only one process ever writes this dataset, "
            "open it with creds={..., 'single_writer': True}"
        )
