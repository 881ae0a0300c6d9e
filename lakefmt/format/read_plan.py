"""A version's read plan: every file another engine reads, and what to do with each.

A folder of a lakefmt dataset holds more than one version's rows: column groups, deletion
files, update files and files that later versions superseded sit side by side, so a glob over
``data/*.parquet`` returns wrong rows. The plan lists, for one version, exactly the files to
read and how to combine them (``spec/format.md`` section 15): per fragment, the data files
and which Parquet column holds which column, the deletion file whose positions to skip, the
update files whose cells replace stored ones, and the columns no file holds (their default).
It is a pydantic document, so ``plan.model_dump_json()`` is what ``lakefmt plan`` prints.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lakefmt.format import fragments as files
from lakefmt.format.column_stats import parquet_stats_trusted
from lakefmt.format.manifest import FORMAT_VERSION, Field, Fragment
from lakefmt.format.snapshot import Snapshot

__all__ = [
    "PlanColumn",
    "PlanDataFile",
    "PlanDeletion",
    "PlanFragment",
    "PlanUpdate",
    "ReadPlan",
    "read_plan",
]


class _PlanModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanColumn(_PlanModel):
    """A column of the version, in schema order."""

    field_id: int
    name: str
    type: dict[str, Any]
    """The lakefmt type (``spec/format.md`` section 7)."""
    arrow_type: str
    """The Arrow storage type every file stores the column in (media columns: bytes)."""
    default: Any = None
    """The value of rows whose fragment has no file holding the column, JSON-encoded as the
    manifest encodes defaults (``default_encoding``, section 6.2.3); null when it has none."""
    has_default: bool = False
    default_encoding: int = 2


class PlanFileColumn(_PlanModel):
    """Where one column sits in a data file."""

    field_id: int
    parquet_column: str
    """The Parquet column name, which is the name the column had when the file was written
    (a rename keeps it): select by this name, never by the column's current name."""
    nan_safe_statistics: bool = True
    """False for a floating column whose Parquet ``min``/``max`` may leave NaN out (files of
    older writers, ``spec/format.md`` 6.2.5.1): an engine that orders NaN above numbers must
    not filter by those statistics."""


class PlanDataFile(_PlanModel):
    """A Parquet data file of a fragment (one column group)."""

    path: str
    """Relative to the dataset's root."""
    url: str
    """The absolute location."""
    columns: list[PlanFileColumn]
    """Only the columns this version reads from this file (a later file of the same fragment
    wins for a column both hold)."""
    rows: int


class PlanDeletion(_PlanModel):
    """A Parquet file with one ``position`` column: rows of the fragment to skip."""

    path: str
    url: str
    count: int


class PlanUpdate(_PlanModel):
    """A Parquet file with ``position`` and ``value``: cells of one column to replace."""

    field_id: int
    path: str
    url: str
    count: int


class PlanFragment(_PlanModel):
    """A run of rows: the data files have ``rows`` rows each, row ``i`` of every file is the
    same row (position ``i``)."""

    id: int
    rows: int
    """Physical rows, deleted ones included."""
    live_rows: int
    files: list[PlanDataFile]
    deletion: PlanDeletion | None = None
    updates: list[PlanUpdate] = []
    default_columns: list[int] = []
    """Field ids no file of the fragment holds: every row has the column's default."""


class ReadPlan(_PlanModel):
    """What to read for one version, and how (``spec/format.md`` section 15)."""

    plan_version: int = 1
    format_version: int = FORMAT_VERSION
    dataset: str
    """The dataset's URL."""
    branch: str
    version: int
    version_id: str | None
    rows: int
    """Live rows of the version: what a correct read returns."""
    columns: list[PlanColumn]
    fragments: list[PlanFragment]


def read_plan(snap: Snapshot, branch: str) -> ReadPlan:
    """The read plan of a snapshot's version (reads each data file's Parquet footer once, for
    its column names; footers are cached).

    Raises:
        FormatError: A data file is missing, damaged or has other columns than the manifest
            lists.
    """
    storage = snap.storage
    fields = snap.fields
    wanted = {f.id for f in fields}
    out: list[PlanFragment] = []
    for fragment in snap.manifest.fragments:
        out.append(_fragment_plan(snap, fragment, fields, wanted))
    manifest = snap.manifest
    return ReadPlan(
        format_version=manifest.format_version,
        dataset=storage.url,
        branch=branch,
        version=manifest.version,
        version_id=manifest.id,
        rows=snap.num_rows,
        columns=[_column(snap, f) for f in fields],
        fragments=out,
    )


def _column(snap: Snapshot, field: Field) -> PlanColumn:
    return PlanColumn(
        field_id=field.id,
        name=field.name,
        type=field.type,
        arrow_type=str(snap.type_of(field).storage_type),
        default=field.default,
        has_default=field.has_default,
        default_encoding=field.default_encoding,
    )


def _fragment_plan(
    snap: Snapshot, fragment: Fragment, fields: list[Field], wanted: set[int]
) -> PlanFragment:
    storage = snap.storage
    by_id = {f.id: f for f in fields}
    covered: set[int] = set()
    plan_files: list[PlanDataFile] = []
    for data_file in reversed(fragment.files):  # the last file holding a field wins
        fids = [fid for fid in data_file.field_ids if fid in wanted and fid not in covered]
        if not fids:
            continue
        covered.update(fids)
        pf = files.parquet_file(storage, data_file.path, data_file.size, verify=False)
        names = files.column_names(storage, pf, data_file, fids)
        columns = [
            PlanFileColumn(
                field_id=fid,
                parquet_column=name,
                nan_safe_statistics=parquet_stats_trusted(
                    data_file, fid, snap.type_of(by_id[fid]).storage_type
                ),
            )
            for fid, name in zip(fids, names, strict=True)
        ]
        plan_files.append(
            PlanDataFile(
                path=data_file.path,
                url=f"{storage.url}/{data_file.path}",
                columns=columns,
                rows=fragment.rows,
            )
        )
    plan_files.reverse()
    deletion = fragment.deletion
    return PlanFragment(
        id=fragment.id,
        rows=fragment.rows,
        live_rows=fragment.live_rows,
        files=plan_files,
        deletion=None
        if deletion is None
        else PlanDeletion(
            path=deletion.path, url=f"{storage.url}/{deletion.path}", count=deletion.count
        ),
        updates=[
            PlanUpdate(
                field_id=u.field_id, path=u.path, url=f"{storage.url}/{u.path}", count=u.count
            )
            for u in fragment.updates
            if u.field_id in wanted
        ],
        default_columns=[f.id for f in fields if f.id not in covered],
    )
