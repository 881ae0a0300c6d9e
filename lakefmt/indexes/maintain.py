"""Keeping indexes current: which segments a commit builds, and building them.

Columns declare indexes in their stored type (``index_type`` in the type's params, read by
:func:`lakefmt.types.indexes.declared_index_types`); the
manifest lists the indexes that exist. A build covers the fragments no segment covers yet
(a *delta segment*), reading the column's current values (updates applied), and writes the
segment's files before the commit that lists them, like data files. ``optimize`` rebuilds
each index as one segment over every fragment.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.errors import InvalidArgumentError, InvalidTypeError
from lakefmt.format.commit import AddIndexSegment, Operation
from lakefmt.format.index_files import new_segment_folder, write_index_file
from lakefmt.format.manifest import Field, Index, IndexedFragment, IndexSegment, now_ms
from lakefmt.format.snapshot import Snapshot
from lakefmt.indexes.config import IndexBuildConfig
from lakefmt.indexes.coverage import coverage, field_update_files, source_file
from lakefmt.indexes.kinds import KINDS, IndexKind, kind
from lakefmt.types.indexes import check_buildable, declared_index_types

#: A commit in automatic indexing mode adds a delta segment once this many live rows of an
#: indexed column are not covered (fewer are searched exactly at little cost).
DELTA_ROWS = 10_000


@dataclasses.dataclass(frozen=True)
class Declared:
    """An index a column asks for: the column, the kind, its build parameters."""

    field: Field
    kind: IndexKind
    params: dict[str, Any]


def declared(snapshot: Snapshot) -> list[Declared]:
    """Every index the version's columns declare that this lakefmt can build."""
    out = []
    for field in snapshot.fields:
        try:
            declarations = declared_index_types(field.type.get("params") or {})
        except InvalidTypeError:
            continue  # declared by a newer lakefmt: ignoring an index never changes rows
        for d in declarations:
            try:
                check_buildable(d, field.name)
            except InvalidTypeError:
                continue  # declared by another writer; this lakefmt does not build it
            if d.name in KINDS:
                out.append(Declared(field, KINDS[d.name], d.index_params()))
    return out


def find_index(snapshot: Snapshot, field_id: int, kind_name: str) -> Index | None:
    """The version's index of a kind on a column, if built."""
    return next(
        (i for i in snapshot.manifest.indexes if i.field_id == field_id and i.kind == kind_name),
        None,
    )


def index_operations(
    snapshot: Snapshot,
    *,
    delta_rows: int = DELTA_ROWS,
    rebuild: bool = False,
    config: IndexBuildConfig | None = None,
) -> list[Operation]:
    """The segments to build for ``snapshot`` (built and written by this call).

    A declared index gets a segment over its uncovered fragments when it has none yet, or
    when ``delta_rows`` or more live rows are uncovered; with ``rebuild``, one segment over
    every fragment replaces its segments.
    """
    ops: list[Operation] = []
    for want in declared(snapshot):
        index = find_index(snapshot, want.field.id, want.kind.name)
        fragments = buildable_fragments(snapshot, want.field.id)
        if index is not None and rebuild:
            cov = coverage(snapshot, index)
            if (
                len(index.segments) == 1
                and not cov.uncovered
                and not any(len(p.dirty) for _, parts in cov.segments for p in parts)
            ):
                continue  # already one segment over every row
        if index is not None and not rebuild:
            uncovered = set(coverage(snapshot, index).uncovered)
            fragments = [k for k in fragments if k in uncovered]
            rows = sum(snapshot.manifest.fragments[k].live_rows for k in fragments)
            if not rows or (index.segments and rows < delta_rows):
                continue
        elif not fragments:
            continue
        ops.append(build_operation(snapshot, want, fragments, replace=rebuild, config=config))
    return ops


def buildable_fragments(snapshot: Snapshot, field_id: int) -> list[int]:
    """Fragments with live rows whose field is read from a data file (not a default): the
    ones a segment can cover."""
    return [
        k
        for k, f in enumerate(snapshot.manifest.fragments)
        if f.live_rows and source_file(f, field_id) is not None
    ]


def build_operation(
    snapshot: Snapshot,
    want: Declared,
    fragments: list[int],
    *,
    replace: bool = False,
    config: IndexBuildConfig | None = None,
) -> AddIndexSegment:
    """Build a segment over ``fragments`` (indices into the manifest) and write its files,
    with the effort ``config`` asks for.

    Raises:
        InvalidArgumentError: The column's type cannot have this kind of index.
        MissingDependencyError: The kind's engine is not installed.
    """
    field = want.field
    if not want.kind.accepts(snapshot.type_of(field)):
        raise InvalidArgumentError(f"column '{field.name}' cannot have a {want.kind.name} index")
    entries: list[IndexedFragment] = []
    values: list[pa.Array] = []
    live: list[np.ndarray] = []
    key = 0
    for k in fragments:
        fragment = snapshot.manifest.fragments[k]
        path = source_file(fragment, field.id)
        assert path is not None
        positions = np.arange(fragment.rows, dtype=np.int64)
        column = snapshot.read_fragment(fragment, [field], positions)[field.id]
        values.append(column.storage if isinstance(column, pa.ExtensionArray) else column)
        alive = np.ones(fragment.rows, dtype=bool)
        alive[snapshot.deleted(fragment)] = False
        live.append(alive)
        entries.append(
            IndexedFragment(
                data_file=path,
                rows=fragment.rows,
                key_start=key,
                update_files=field_update_files(fragment, field.id),
            )
        )
        key += fragment.rows
    storage_type = snapshot.type_of(field).storage_type
    merged = pa.concat_arrays(values) if values else pa.array([], storage_type)
    mask = np.concatenate(live) if live else np.zeros(0, dtype=bool)
    params = dict(want.params)
    effort = config or IndexBuildConfig()
    if want.kind.name == "clustered":  # an HNSW graph
        params["ef_construction"] = effort.ef_construction
    elif want.kind.name in ("clustered_quantized", "pooled_quantized"):  # IVF lists
        params["niter"] = effort.niter
    built = want.kind.build(merged, mask, params)
    folder = new_segment_folder()
    files = [
        write_index_file(snapshot.storage, folder, f"{role}.bin", role, data)
        for role, data in built.items()
    ]
    segment = IndexSegment(id=0, fragments=entries, files=files, rows=key, built_at=now_ms())
    template = Index(
        id=0,
        field_id=field.id,
        kind=want.kind.name,
        engine=want.kind.engine,
        engine_version=want.kind.engine_version(),
        params=params,
    )
    return AddIndexSegment(template, segment, replace=replace)


__all__ = [
    "DELTA_ROWS",
    "Declared",
    "build_operation",
    "buildable_fragments",
    "declared",
    "find_index",
    "index_operations",
    "kind",
]
