"""ReadOnlyDataset and Dataset: the handles of a branch head (or a pinned version).

A handle owns its storage, its version and its lock; the work is elsewhere: the pending
writes and write-behind in :mod:`~lakefmt.dataset.writer`, the compaction policy in
:mod:`~lakefmt.dataset.compaction`, schema changes in :mod:`~lakefmt.dataset.schema_changes`,
the on-disk steps in :mod:`lakefmt.format`.

Writes go through a buffer: ``append`` converts and validates the input at once (a bad
append leaves nothing behind), and a flush (automatic past ``FLUSH_BYTES``, and on
``flush``, ``commit``, context exit and interpreter exit) writes fragments and a new manifest
that every reader of the branch sees. ``commit`` additionally marks the version as a commit
in history.

(A little over 800 lines: the two handle classes stay together, as each opens the other,
and the read-only one spells out a refusal for each write of the other.)
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa

from lakefmt._progress import Progress
from lakefmt.dataset import backfill, schema_changes, two_phase, upsert
from lakefmt.dataset.attributes import check_public_attribute
from lakefmt.dataset.compaction import (
    DEFAULT_CLEANUP_AGE,
    auto_compaction,
    cleanup_seconds,
    full_compaction,
)
from lakefmt.dataset.interop import duckdb_relation, plan_of, plan_sql, pyarrow_dataset
from lakefmt.dataset.lifecycle import flush_dropped, register_writer
from lakefmt.dataset.metadata import DatasetMetadata
from lakefmt.dataset.query_view import QueryView, dataset_source, explain_query, run_query
from lakefmt.dataset.upsert import MergeInsertResult
from lakefmt.dataset.versions import Branch, Branches, History, Tag, Tags
from lakefmt.dataset.view import DatasetView, RowSource, normalize_index
from lakefmt.dataset.writer import (
    APPEND_SLICE_ROWS,
    LARGE_APPEND_ROWS,
    Drafts,
    PendingWrites,
    column_specs,
    updated_values,
)
from lakefmt.errors import (
    BranchNotFoundError,
    ColumnMissingValueError,
    CommitConflictError,
    DatasetNotFoundError,
    InvalidArgumentError,
    MissingDependencyError,
    QueryError,
    ReadOnlyError,
    VersionNotFoundError,
)
from lakefmt.format import commit as commits
from lakefmt.format import layout, maintenance, protocol, refs
from lakefmt.format.manifest import Manifest
from lakefmt.format.merge import Resolve, check_merge_arguments, plan_merge
from lakefmt.format.read_plan import ReadPlan
from lakefmt.format.snapshot import Snapshot
from lakefmt.format.stats import VersionStats, version_stats
from lakefmt.format.verify import verify_manifest, verify_refs
from lakefmt.format.versions import physical_ref, read_head
from lakefmt.indexes.config import IndexBuildConfig, IndexingMode, SearchConfig
from lakefmt.indexes.coverage import coverage
from lakefmt.indexes.maintain import (
    DELTA_ROWS,
    build_operation,
    buildable_fragments,
    declared,
    find_index,
    index_operations,
)
from lakefmt.storage import Storage, open_storage
from lakefmt.types.convert import ColumnSpec, to_table

if TYPE_CHECKING:
    import pyarrow.dataset as pads


class ReadOnlyDataset(DatasetView):
    """A dataset opened for reading: the head of a branch or a pinned version.

    Any write raises :class:`~lakefmt.errors.ReadOnlyError`.
    """

    def __init__(self, storage: Storage, manifest: Manifest, *, pinned: bool = False) -> None:
        super().__init__(self, None)
        self._storage = storage
        self._manifest = manifest
        self._snap = Snapshot(storage, manifest)
        self._pinned = pinned
        self._lock = threading.RLock()
        self._search_config = SearchConfig()

    def __setattr__(self, name: str, value: Any) -> None:
        # Refuse typos and options of other libraries (``ds.auto_commit_enabled = True``),
        # which would otherwise be stored and silently do nothing. Private names (the
        # handle's own state) take one string test.
        if name[:1] != "_":
            check_public_attribute(self, name)
        object.__setattr__(self, name, value)

    # A dataset is its own source. A property rather than an attribute, so a handle holds
    # no reference cycle and is freed (and flushed) as soon as the user drops it.
    @property
    def _source(self) -> RowSource:
        return self

    @_source.setter
    def _source(self, value: RowSource) -> None:
        pass

    # -- reading ----------------------------------------------------------------------------
    def _snapshot(self) -> Snapshot:
        return self._snap

    def _data(self) -> Snapshot:
        return self._snap

    def __len__(self) -> int:
        return self._snap.num_rows

    def _set_manifest(self, manifest: Manifest) -> None:
        self._manifest = manifest
        self._snap = Snapshot(self._storage, manifest)

    @property
    def url(self) -> str:
        """The dataset's root URL."""
        return self._storage.url

    @property
    def metadata(self) -> DatasetMetadata:
        """Dataset-level metadata (dict-like)."""
        return DatasetMetadata(self)

    # -- versions ---------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """Id of the version this handle is at: a commit's id, or, after changes flushed
        but not committed, the id of that flushed version (``lakefmt.open(url,
        version=ds.version)`` always reads what this handle reads; only commits are in
        ``history``, and cleanup may remove flushed versions)."""
        return self._manifest.version_id

    @property
    def history(self) -> History[ReadOnlyDataset]:
        """The commits leading here, oldest first."""
        return History(self, self._manifest)

    @property
    def tags(self) -> Tags[ReadOnlyDataset]:
        """The dataset's tags."""
        return Tags(self)

    @property
    def branches(self) -> Branches[Dataset]:
        """The dataset's branches."""
        return Branches(self)

    @property
    def current_branch(self) -> Branch[Dataset]:
        """The branch this handle reads (and writes)."""
        return Branch(self, self._manifest.branch)

    def refresh(self) -> None:
        """Move to the newest version of the branch, to see other writers' changes.

        A handle opened at a fixed version stays there.
        """
        if self._pinned:
            return
        with self._lock:
            self._set_manifest(self._read_head())

    def _read_head(self) -> Manifest:
        # The folder this handle was opened on: a deleted branch raises, never moves into
        # a later branch of the same name.
        m = self._manifest
        return read_head(self._storage, m.branch, m.branch_id)

    def _resolve(self, version: str) -> Manifest:
        m = self._manifest
        return protocol.resolve_version(self._storage, version, (m.branch, m.branch_id))

    def _pinned_at(self, manifest: Manifest) -> ReadOnlyDataset:
        return ReadOnlyDataset(self._storage, manifest, pinned=True)

    def _pinned_now(self) -> ReadOnlyDataset:
        """A read-only handle pinned at the version this handle reads now (pending writes
        flushed): what a query's rows refer to, unmoved by later writes."""
        snap = self._data()
        if type(self) is ReadOnlyDataset and self._pinned:
            return self
        return ReadOnlyDataset(self._storage, snap.manifest, pinned=True)

    def _open_branch(self, name: str) -> Dataset:
        return open_writer(open_storage(self.url, self._storage.creds), name)

    # -- queries ------------------------------------------------------------------------------
    def _link_creds(self) -> dict[str, Any] | None:
        return self._storage.creds

    def _query_creds(self, rows: np.ndarray | None) -> dict[str, Any] | None:
        # The datasets a query names open with this handle's credentials; a view of some of
        # its rows (``ds[a:b].query``) has always used the default ones.
        return self._storage.creds if rows is None else None

    def _query(self, rows: np.ndarray | None, query: str) -> QueryView:
        source = dataset_source(self._pinned_now(), rows)
        return run_query(
            query, source, open_query_source, self._query_creds(rows), self.query_config
        )

    def _explain(self, rows: np.ndarray | None, query: str) -> str:
        source = dataset_source(self._pinned_now(), rows)
        return explain_query(
            query, source, open_query_source, self._query_creds(rows), self.query_config
        )

    @property
    def query_config(self) -> SearchConfig:
        """How this handle's queries use indexes (``SearchConfig(exact=True)``: never)."""
        return self._search_config

    @query_config.setter
    def query_config(self, config: SearchConfig) -> None:
        if not isinstance(config, SearchConfig):
            raise InvalidArgumentError(
                f"query_config must be a lakefmt.SearchConfig, not {type(config).__name__}"
            )
        self._search_config = config

    # -- writes are refused -------------------------------------------------------------------
    # Each writing method of Dataset has its refusal here, with the same signature, so that
    # type checkers and help() see what a read-only handle offers.
    def _read_only_error(self) -> ReadOnlyError:
        return ReadOnlyError(
            f"{self.url} is open read-only (at {self.version}); use lakefmt.open() to write"
        )

    def _check_writable(self) -> None:
        raise self._read_only_error()

    def _writable(self) -> Dataset:
        raise self._read_only_error()

    def append(self, data: Any, *, progress: bool | None = None) -> None:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.append`)."""
        raise self._read_only_error()

    def add_column(
        self,
        name: str,
        dtype: Any,
        default_value: Any = None,
        *,
        fill: Callable[[pa.Table], Any] | None = None,
        fill_columns: Sequence[str] | None = None,
    ) -> None:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.add_column`)."""
        raise self._read_only_error()

    def fill_column(
        self,
        name: str,
        fill: Callable[[pa.Table], Any],
        *,
        columns: Sequence[str] | None = None,
        batch_size: int = 65_536,
        message: str | None = None,
        progress: bool | None = None,
    ) -> int:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.fill_column`)."""
        raise self._read_only_error()

    def remove_column(self, name: str) -> None:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.remove_column`)."""
        raise self._read_only_error()

    def rename_column(self, name: str, new_name: str) -> None:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.rename_column`)."""
        raise self._read_only_error()

    def delete(self, index: Any) -> None:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.delete`)."""
        raise self._read_only_error()

    def merge_insert(
        self,
        data: Any,
        on: str,
        *,
        when_not_matched_by_source: str | None = None,
        message: str | None = None,
    ) -> MergeInsertResult:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.merge_insert`)."""
        raise self._read_only_error()

    def flush(self) -> None:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.flush`)."""
        raise self._read_only_error()

    def commit(self, message: str | None = None) -> str:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.commit`)."""
        raise self._read_only_error()

    def commit_fragments(
        self,
        infos: Sequence[Any],
        message: str | None = None,
        transaction_id: str | None = None,
    ) -> str:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.commit_fragments`)."""
        raise self._read_only_error()

    def rollback(self) -> None:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.rollback`)."""
        raise self._read_only_error()

    def tag(
        self, name: str, message: str | None = None, version: str | None = None
    ) -> Tag[ReadOnlyDataset]:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.tag`)."""
        raise self._read_only_error()

    def branch(self, name: str, version: str | None = None) -> Branch[Dataset]:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.branch`)."""
        raise self._read_only_error()

    def optimize(self, *, progress: bool | None = None) -> str:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.optimize`)."""
        raise self._read_only_error()

    def cleanup(
        self,
        older_than: datetime.timedelta | float = DEFAULT_CLEANUP_AGE,
        *,
        dry_run: bool = False,
        progress: bool | None = None,
    ) -> maintenance.CleanupReport:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.cleanup`)."""
        raise self._read_only_error()

    def merge(self, branch: str, *, resolve: str = "error") -> str | None:
        """Refused: raises ReadOnlyError (see :meth:`Dataset.merge`)."""
        raise self._read_only_error()

    def verify(self, *, deep: bool = False, progress: bool | None = None) -> list[str]:
        """Check every file this version references: present, readable, as the manifest says.

        Every page of every data, deletion and update file is read and its CRC32 checked,
        and the dataset's format file, tags and branches are read (a progress bar shows on
        a terminal). Damaged files are listed, never raised.

        Args:
            deep: Also decode every image, video and mesh (slow: a full decode of each) and
                list each row that does not decode.
            progress: Show a progress bar (default: on a terminal).

        Returns:
            The problems found; an empty list means the version is intact.
        """
        total = sum(len(f.files) for f in self._manifest.fragments)
        with Progress(total, "verify", progress, "files") as bar:
            problems = verify_manifest(self._storage, self._manifest, on_file=bar.update, deep=deep)
        return [*problems, *verify_refs(self._storage)]

    def summary(self) -> None:
        """Print rows, columns with types, version, fragments and bytes on storage."""
        print(self._summary_text())

    @property
    def stats(self) -> VersionStats:
        """Sizes of the version this handle is at: fragments, bytes of data files referenced
        and (estimated) still live, rows deleted pending compaction. Read from the manifest,
        no file is opened; rows appended but not flushed are not counted."""
        return version_stats(self._manifest)

    def read_plan(self) -> ReadPlan:
        """Every file another engine reads for this version, and how to combine them.

        For each fragment: its data files with the Parquet column holding each column, the
        deletion file (positions to skip), update files (cells to replace) and the columns
        read as their default (``spec/format.md`` section 15). ``plan.model_dump_json()``
        is what ``lakefmt plan URL`` prints. Pending writes of a writable handle are
        flushed first, as for a query.

        Raises:
            FormatError: A data file is missing or damaged.
        """
        return plan_of(self._data())

    def to_pyarrow_dataset(self) -> pads.Dataset:
        """A ``pyarrow.dataset.Dataset`` over this version's Parquet files, for tools that
        want one (columns as their Arrow storage types).

        Only where the files hold exactly the version's rows: no deleted rows, no updated
        cells, one file per fragment, no renamed column and no non-null default read by old
        rows (``optimize()`` makes a dataset so). Otherwise use :meth:`to_batches`, which
        streams any version, or :meth:`to_duckdb`.

        Raises:
            InvalidArgumentError: The version does not qualify (the message says why) or
                the dataset is not on local disk.
        """
        return pyarrow_dataset(self._data())

    def duckdb_sql(self, *, ordered: bool = True) -> str:
        """The DuckDB ``SELECT`` that reads this version from its Parquet files (what
        :meth:`to_duckdb` runs and ``lakefmt plan --format sql`` prints): it needs no
        lakefmt, only DuckDB and the files (``spec/format.md`` section 15).

        Args:
            ordered: End with ``ORDER BY`` so rows come in the dataset's order.
        """
        return plan_sql(self._data(), ordered=ordered)

    def to_duckdb(
        self, con: Any | None = None, name: str | None = None, *, ordered: bool = True
    ) -> Any:
        """A DuckDB relation of this version's rows that reads its Parquet files directly:
        deletions, updates, renames, column groups and defaults applied, nothing copied.

        DuckDB pushes projections and filters into the Parquet scans, and the relation
        joins with the connection's other tables or feeds ``COPY ... TO``. Media columns
        hold their stored bytes. Datasets on object stores need DuckDB's ``httpfs`` and
        credentials set up on ``con`` (``CREATE SECRET``).

        Args:
            con: The DuckDB connection; DuckDB's default connection (``duckdb.sql``) if None.
            name: Also create (or replace) a view of this name on ``con``, which stays
                pinned at this version.
            ordered: Rows in the dataset's order (row ``i`` is ``ds[i]``), at the cost of a
                sort; ``False`` lets DuckDB return them in any order.

        Raises:
            InvalidArgumentError: The dataset is in memory (``mem://``), the version has no
                columns, or ``con``/``name`` is not a connection/name.
        """
        return duckdb_relation(self._data(), con, name, ordered=ordered)

    def _summary_text(self) -> str:
        m = self._manifest
        stats = self.stats
        lines = [
            f"Dataset {self.url} (branch {m.branch}, version {self.version}"
            + (
                ", read-only)"
                if isinstance(self, ReadOnlyDataset) and not isinstance(self, Dataset)
                else ")"
            ),
            f"rows: {len(self)}",
            "columns:",
        ]
        for col in self.schema.columns:
            lines.append(f"  {col.name:<24} {col.dtype!r}")
        lines.append(
            f"fragments: {stats.fragments}, deleted rows pending compaction: "
            f"{stats.deleted_rows}, data files: {stats.data_bytes / 1e6:.2f} MB referenced, "
            f"~{stats.live_bytes / 1e6:.2f} MB live (optimize reclaims the rest)"
        )
        lines.append(
            f"commits: {len(self.history)}, tags: {len(self.tags)}, branches: {len(self.branches)}"
        )
        return "\n".join(lines)

    def __enter__(self) -> ReadOnlyDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _reopen,
            (
                self.url,
                self._storage.creds,
                self._manifest.branch,
                self.version if self._pinned else None,
                True,
            ),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, version={self.version!r}, rows={len(self)})"


class Dataset(ReadOnlyDataset):
    """A dataset opened for reading and writing at the head of a branch."""

    #: Compact automatically once small fragments pile up (see ``optimize``); fragments
    #: another branch shares are left alone, so that merges stay possible.
    auto_compact: bool = True

    def __init__(self, storage: Storage, manifest: Manifest) -> None:
        super().__init__(storage, manifest)
        commits.check_atomic(storage)
        commits.check_writer_features(manifest, storage.url)
        self._writes = PendingWrites()
        self._specs: list[ColumnSpec] | None = None
        self.auto_compact = True
        self._indexing_mode = IndexingMode.Automatic
        self._build_config = IndexBuildConfig()
        register_writer(self)

    # -- indexes ---------------------------------------------------------------------------------
    @property
    def indexing_mode(self) -> IndexingMode:
        """When this handle builds the indexes columns declare (see :class:`IndexingMode`)."""
        return self._indexing_mode

    @indexing_mode.setter
    def indexing_mode(self, mode: IndexingMode) -> None:
        if not isinstance(mode, IndexingMode):
            raise InvalidArgumentError(
                f"indexing_mode must be a lakefmt.IndexingMode, not {mode!r}"
            )
        self._indexing_mode = mode

    @property
    def indexing_config(self) -> IndexBuildConfig:
        """How much effort this handle's index builds spend (see :class:`IndexBuildConfig`)."""
        return self._build_config

    @indexing_config.setter
    def indexing_config(self, config: IndexBuildConfig) -> None:
        if not isinstance(config, IndexBuildConfig):
            raise InvalidArgumentError(
                f"indexing_config must be a lakefmt.IndexBuildConfig, not {type(config).__name__}"
            )
        self._build_config = config

    def build_indexes(self) -> None:
        """Index every row the columns' declared indexes do not cover yet, in a new commit
        (nothing happens when every row is covered).

        Raises:
            MissingDependencyError: A vector index needs faiss (``lakefmt[index]``).
        """
        with self._lock:
            self.flush()
            ops = index_operations(self._snap, delta_rows=1, config=self._build_config)
            if ops:
                self._commit_ops(ops, is_commit=True, message="build indexes")

    def _create_index(self, column: str, index_type: Any) -> None:
        with self._lock:
            self.flush()
            op, want = schema_changes.declare_index(self._snap, column, index_type)
            ops = [op]
            fragments = buildable_fragments(self._snap, self._snap.field(column).id)
            if want is not None and fragments:
                ops.append(
                    build_operation(
                        self._snap, want, fragments, replace=True, config=self._build_config
                    )
                )
            self._commit_ops(ops)

    def _drop_index(self, column: str, index_type: Any) -> None:
        with self._lock:
            self.flush()
            ops = schema_changes.undeclare_index(self._snap, column, index_type)
            self._commit_ops(ops)

    # -- plumbing ------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        return None

    def _writable(self) -> Dataset:
        return self

    def _data(self) -> Snapshot:
        if not self._writes.is_empty():
            self.flush()
        return self._snap

    def __len__(self) -> int:
        return self._snap.num_rows + self._writes.rows

    def _set_manifest(self, manifest: Manifest) -> None:
        super()._set_manifest(manifest)
        self._specs = None

    def _column_specs(self) -> list[ColumnSpec]:
        if self._specs is None:
            self._specs = column_specs(self._snap)
        return self._specs

    def _commit_ops(
        self, ops: list[commits.Operation], *, is_commit: bool = False, message: str | None = None
    ) -> Manifest:
        manifest = commits.commit(
            self._storage, self._manifest, ops, is_commit=is_commit, message=message
        )
        self._set_manifest(manifest)
        return manifest

    # -- appends --------------------------------------------------------------------------------
    def append(self, data: Any, *, progress: bool | None = None) -> None:
        """Append rows.

        ``data`` is a list of row dicts, a dict of column values (lists or arrays; the fast
        path), a pyarrow Table/RecordBatch, a pandas DataFrame, an Arrow stream (polars,
        DuckDB) or a dataset view. Every column must be given unless it has a
        ``default_value``. Rows are buffered and flushed automatically. Appends of a
        million rows or more show a progress bar on a terminal (``progress`` forces it on
        or off).

        Each time the buffer passes ``FLUSH_BYTES``, its data files are written on a
        background thread while appending goes on (two such buffers at most); they are
        committed in order as later buffers fill, or by ``flush``/``commit``. A failure
        of that write is raised by the call that commits it, and the rows stay buffered.

        Raises:
            ColumnNotFoundError: A column the dataset lacks.
            ColumnMissingValueError: A column without default value is missing.
            UnevenColumnsError: Columns of different lengths.
            TypeMismatchError: A value of the wrong type, shape or size.
            DecodeError: Corrupt media bytes.
            OSError: Writing an earlier full buffer failed (a ``StorageError`` on object
                stores); its rows, and this call's, stay buffered.
        """
        with self._lock:
            table = to_table(data, self._column_specs())
            if table.num_rows == 0:
                return
            step = table.num_rows if table.num_rows < LARGE_APPEND_ROWS else APPEND_SLICE_ROWS
            shown = None if table.num_rows >= LARGE_APPEND_ROWS else False
            with Progress(table.num_rows, "append", shown if progress is None else progress) as bar:
                for start in range(0, table.num_rows, step):
                    part = table.slice(start, step)
                    if self._writes.add(part):
                        self._write_behind()
                    bar.update(part.num_rows)

    def _write_behind(self) -> None:
        """Hand the full buffer to a background writer (see :meth:`PendingWrites.write_behind`)."""
        if self._writes.updates:
            self.flush()  # updates were buffered before these rows: all go in one version
            return

        def commit_oldest(drafts: Drafts) -> None:
            self._commit_ops([commits.AppendFragments(drafts)])

        if not self._writes.write_behind(self._storage, self._snap, commit_oldest):
            self.flush()

    def flush(self) -> None:
        """Write buffered rows and pending updates as a new version visible to every reader."""
        with self._lock:
            self._commit_pending()

    def optimize(self, *, progress: bool | None = None) -> str:
        """Compact small fragments and column groups and apply deletions and updates.

        Runs as an ordinary commit that changes no row's content or order, so earlier
        versions stay readable until :meth:`cleanup` removes their files. A progress bar
        shows on a terminal (``progress=False`` hides it, ``True`` forces it).

        Unlike automatic compaction, this also rewrites rows this branch shares with a
        branch it can merge with; a merge cannot follow that (it raises
        :class:`MergeConflictError`), so merge first.

        Returns:
            The new version id.

        Raises:
            CommitConflictError: A concurrent writer changed the same fragments.
        """
        with self._lock:
            self.flush()
            ops = full_compaction(self._storage, self._snap, progress=progress)
            if self._indexing_mode is IndexingMode.Off or not declared(self._snap):
                self._commit_ops(ops, is_commit=True, message="optimize")
                return self.version
            # indexes are rebuilt over the compacted fragments, in the same commit
            self._commit_ops(ops)
            rebuild = self._index_operations(rebuild=True)
            self._commit_ops(rebuild, is_commit=True, message="optimize")
            return self.version

    def cleanup(
        self,
        older_than: datetime.timedelta | float = DEFAULT_CLEANUP_AGE,
        *,
        dry_run: bool = False,
        progress: bool | None = None,
    ) -> maintenance.CleanupReport:
        """Delete manifests and files that no kept version references.

        Kept: every commit, tag and branch head, and anything written less than
        ``older_than`` ago (a ``timedelta`` or seconds; ``0`` keeps only what versions
        reference). The grace period protects writers that are still committing.

        Returns:
            What was (or with ``dry_run`` would be) deleted.
        """
        seconds = cleanup_seconds(older_than)
        with self._lock:
            self.flush()
            with Progress(None, "cleanup", progress, "files") as bar:
                return maintenance.cleanup(
                    self._storage, older_than=seconds, dry_run=dry_run, on_delete=bar.update
                )

    def _commit_pending(self, *, is_commit: bool = False, message: str | None = None) -> bool:
        """Commit buffered rows and updates; returns whether anything was pending.

        On a conflict the buffered rows stay buffered (they rebase on the next flush) and
        only the conflicting updates are dropped, so no appended row is ever lost.
        """
        ops = self._writes.operations(self._storage, self._snap, self._manifest)
        if not ops and not is_commit:
            return False
        compaction = (
            auto_compaction(self._storage, self._snap)
            if self.auto_compact and self._writes.has_rows()
            else None
        )
        try:
            try:
                self._commit_ops(
                    ops if compaction is None else [*ops, compaction],
                    is_commit=is_commit,
                    message=message,
                )
            except CommitConflictError:
                if compaction is None:
                    raise
                # Perhaps only the compaction conflicts (a concurrent writer touched those
                # fragments): it waits for a later commit; the user's changes go in alone.
                self._commit_ops(ops, is_commit=is_commit, message=message)
        except CommitConflictError:
            self._writes.drop_updates()
            raise
        self._writes.clear()
        return bool(ops)

    def commit(self, message: str | None = None) -> str:
        """Flush and record a commit: a version that can be reopened by its id.

        With nothing changed since this handle's last commit, no version is made (as in
        Deep Lake) and the current commit's id is returned.

        Returns:
            The commit's version id.

        Raises:
            BranchNotFoundError: The branch was deleted (by another handle) meanwhile.
            InvalidArgumentError: ``message`` is not a string.
        """
        _check_message(message)
        with self._lock:
            if self._manifest.is_commit and self._writes.is_empty():
                return self.version
            delta = 1 if self._indexing_mode is IndexingMode.Always else DELTA_ROWS
            if self._indexing_mode is not IndexingMode.Off and self._index_due(delta):
                self._commit_pending()  # the segments index the flushed fragments
                ops = self._index_operations(delta_rows=delta)
                if ops:
                    self._commit_ops(ops, is_commit=True, message=message)
                    return self.version
            self._commit_pending(is_commit=True, message=message)
            return self.version

    def commit_fragments(
        self,
        infos: Sequence[Any],
        message: str | None = None,
        transaction_id: str | None = None,
    ) -> str:
        """Commit fragments written by :func:`lakefmt.write_fragments` (on any processes)
        as one commit; rows this handle buffered are flushed first, in a version of their own.

        The fragments are added in the order of ``infos``, rebased over concurrent commits
        like an append. With a ``transaction_id``, committing it again (a retried driver)
        adds nothing and returns the commit that holds it: a commit looks for it among the
        last 1,000 transactions of the branch, and further back (every commit since the
        infos were written) when more were committed since.

        Args:
            infos: What ``write_fragments`` returned: ``FragmentInfo`` objects, their JSON
                (``to_json()``) or the dicts ``json.loads`` makes of it.
            message: The commit message.
            transaction_id: 1-200 printable ASCII characters naming this write.

        Returns:
            The id of the commit holding the fragments (with no infos and no
            ``transaction_id``, nothing is committed: the id of the branch head).

        Raises:
            InvalidArgumentError: An info is malformed or edited, of another dataset or
                branch, or names a file that is missing or changed (removed by a cleanup
                whose grace period the write outlasted, say).
            SchemaError: A column the fragments hold changed type, or was dropped and added
                again, since they were written (renames, drops and new columns rebase).
        """
        _check_message(message)
        with self._lock:
            self.flush()
            manifest, version_id = two_phase.commit_infos(
                self._storage,
                self._manifest,
                infos,
                message=message,
                transaction_id=transaction_id,
            )
            self._set_manifest(manifest)
            return version_id

    def _index_due(self, delta_rows: int) -> bool:
        """Whether this commit may build a segment: a declared index with no segment yet,
        or ``delta_rows`` rows it does not cover once the buffered rows are flushed."""
        pending = self._writes.rows
        for want in declared(self._snap):
            index = find_index(self._snap, want.field.id, want.kind.name)
            if index is None or not index.segments:
                if pending or self._snap.num_rows:
                    return True
                continue
            uncovered = coverage(self._snap, index).uncovered_rows(self._snap)
            if uncovered + pending >= delta_rows or self._writes.updates:
                return True
        return False

    def _index_operations(self, **kwargs: Any) -> list[commits.Operation]:
        """The index builds of an automatic commit or optimize; none, with a warning, when
        an engine is not installed (queries then search the new rows exactly)."""
        try:
            return index_operations(self._snap, config=self._build_config, **kwargs)
        except MissingDependencyError as exc:
            warnings.warn(f"indexes not updated: {exc}", stacklevel=3)
            return []

    def rollback(self) -> None:
        """Drop buffered rows and updates that were not flushed yet."""
        with self._lock:
            self._writes.clear()

    # -- updates and deletes ----------------------------------------------------------------------
    def _update_cells(self, column: str, indices: Any, value: Any, *, single: bool) -> None:
        with self._lock:
            if self._writes.has_rows():
                self.flush()  # row indices must refer to written rows
            field = self._snap.field(column)
            idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
            values = updated_values(self._snap.type_of(field), column, idx, value, single=single)
            for k, positions, slots in self._snap.locate(idx):
                self._writes.add_update(
                    self._manifest.fragments[k].id,
                    field.id,
                    positions,
                    values.take(pa.array(slots)),
                )

    def merge_insert(
        self,
        data: Any,
        on: str,
        *,
        when_not_matched_by_source: str | None = None,
        message: str | None = None,
    ) -> MergeInsertResult:
        """Upsert: update the rows whose key (column ``on``) a row of ``data`` has, append
        the other rows of ``data``, all as one commit.

        Matched rows take the values of the columns ``data`` gives (the others keep
        theirs); every row with that key is updated. ``data`` is anything :meth:`append`
        takes, and as for an append it gives every column that has no default. Null keys
        never match: such rows of ``data`` are appended. With
        ``when_not_matched_by_source="delete"``, rows whose key no row of ``data`` has are
        deleted (a full sync from a source of truth). Changes buffered before the call are
        flushed first, as their own version.

        Returns:
            The commit and the counts of rows updated, inserted and deleted.

        Raises:
            ColumnNotFoundError: ``on`` or a column of ``data`` is not in the dataset.
            InvalidArgumentError: Two rows of ``data`` share a key, ``on`` cannot be a key
                (vectors, media, floats), or ``when_not_matched_by_source`` is unknown.
            CommitConflictError: A concurrent writer changed the same rows; nothing of
                this call is applied (retry it on the new version).
            ColumnMissingValueError, TypeMismatchError: as :meth:`append`.
        """
        _check_message(message)
        with self._lock:
            self.flush()
            given = upsert.given_columns(data)
            specs = self._column_specs()
            # columns data leaves out convert as nulls; only inserted rows need them (below)
            lenient = [
                s
                if given is None or s.name in given or s.has_default
                else dataclasses.replace(s, has_default=True, default=None)
                for s in specs
            ]
            table = to_table(data, lenient)
            plan = upsert.plan_upsert(self._snap, table, on, given, when_not_matched_by_source)
            missing = [s.name for s in specs if s is not lenient[specs.index(s)]]
            if len(plan.inserts) and missing:
                raise ColumnMissingValueError(
                    f"data inserts {len(plan.inserts)} row(s) but has no column {missing[0]!r}, "
                    "which has no default value"
                )
            try:
                if len(plan.matched_rows):
                    take = pa.array(plan.matched_sources)
                    for name in plan.update_columns:
                        values = table.column(name).take(take).combine_chunks()
                        self._update_cells(name, plan.matched_rows, values, single=False)
                if len(plan.inserts):
                    self._writes.add(table.take(pa.array(plan.inserts)))
                ops = self._writes.operations(self._storage, self._snap, self._manifest)
                if len(plan.deletes):
                    by_fragment = {
                        self._manifest.fragments[k].id: positions
                        for k, positions, _ in self._snap.locate(plan.deletes)
                    }
                    ops.append(commits.DeleteRows(self._manifest, by_fragment))
                delta = 1 if self._indexing_mode is IndexingMode.Always else DELTA_ROWS
                due = self._indexing_mode is not IndexingMode.Off and self._index_due(delta)
                if ops:  # with index segments due, they make the commit (as in commit())
                    self._commit_ops(ops, is_commit=not due, message=message)
            finally:
                self._writes.clear()  # committed, or nothing of this call stays pending
            if ops and due:
                index_ops = self._index_operations(delta_rows=delta)
                self._commit_ops(index_ops, is_commit=True, message=message)
            return upsert.MergeInsertResult(
                version=self.version,
                updated=len(plan.matched_rows),
                inserted=len(plan.inserts),
                deleted=len(plan.deletes),
            )

    def delete(self, index: Any) -> None:
        """Delete rows by index (an int, a slice or a list); later rows move up.

        Raises:
            IndexError: An index is out of range.
        """
        with self._lock:
            self.flush()
            idx = normalize_index(index, len(self))
            idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
            if len(idx) == 0:
                return
            by_fragment = {
                self._manifest.fragments[k].id: positions
                for k, positions, _ in self._snap.locate(np.unique(idx))
            }
            self._commit_ops([commits.DeleteRows(self._manifest, by_fragment)])

    # -- schema ----------------------------------------------------------------------------------
    def add_column(
        self,
        name: str,
        dtype: Any,
        default_value: Any = None,
        *,
        fill: Callable[[pa.Table], Any] | None = None,
        fill_columns: Sequence[str] | None = None,
    ) -> None:
        """Add a column; existing rows get ``default_value`` (or null). No data is rewritten.

        Appends that leave the column out also get ``default_value``; without one they must
        give it. With ``fill``, the existing rows' values are then computed from
        ``fill_columns`` (default: all the others) by :meth:`fill_column`, which resumes
        where it stopped if interrupted.

        Raises:
            ColumnExistsError: The name is taken.
            TypeMismatchError: ``default_value`` does not fit ``dtype``.
            DecodeError: ``default_value`` is corrupt media bytes.
        """
        with self._lock:
            op = schema_changes.add_column(self._snap, name, dtype, default_value)
            if fill is not None and not callable(fill):
                raise InvalidArgumentError(f"fill must be a function, not {type(fill).__name__}")
            self.flush()
            self._commit_ops([op])
            if fill is not None:
                self.fill_column(name, fill, columns=fill_columns)

    def fill_column(
        self,
        name: str,
        fill: Callable[[pa.Table], Any],
        *,
        columns: Sequence[str] | None = None,
        batch_size: int = 65_536,
        message: str | None = None,
        progress: bool | None = None,
    ) -> int:
        """Compute a column's values from other columns for every row that still reads its
        default, without rewriting any other column.

        ``fill`` gets an Arrow table of ``columns`` (default: every other column) for up to
        ``batch_size`` rows and returns one value per row (a list, numpy or Arrow array).
        Fragments are filled one at a time, each as a new column group flushed as its own
        version: if the backfill stops (an error, a crash), what it wrote stays, and
        calling ``fill_column`` again computes only the rows left. A commit ends it.

        Returns:
            The rows filled.

        Raises:
            ColumnNotFoundError: ``name`` or one of ``columns`` is not a column.
            InvalidArgumentError: ``fill`` is not a function, returns another number of
                values than rows, or ``columns`` includes ``name``.
            TypeMismatchError: A value does not fit the column's type.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
        _check_message(message)
        if not callable(fill):
            raise InvalidArgumentError(f"fill must be a function, not {type(fill).__name__}")
        with self._lock:
            self.flush()
            target = self._snap.field(name)
            names = [c for c in self.schema if c != name] if columns is None else list(columns)
            if name in names:
                raise InvalidArgumentError(f"column {name!r} cannot be computed from itself")
            sources = [self._snap.field(c) for c in names]
            todo = backfill.unfilled_fragments(self._snap, target)
            total = sum(self._manifest.fragments[k].live_rows for k in todo)
            filled = 0
            with Progress(total, f"fill {name}", progress) as bar:
                for k in todo:
                    rows = backfill.fragment_rows(self._snap, k)
                    try:
                        for part, values in backfill.computed_values(
                            self._snap, rows, sources, fill, batch_size
                        ):
                            self._update_cells(name, part, values, single=False)
                            bar.update(len(part))
                    except BaseException:
                        # a fragment is filled whole or not at all, so a rerun finds it
                        self._writes.drop_updates()
                        raise
                    self.flush()  # the checkpoint: this fragment's column group
                    filled += len(rows)
            self.commit(message)
            return filled

    def remove_column(self, name: str) -> None:
        """Remove a column (its data stays in old versions; no file is rewritten).

        Raises:
            ColumnNotFoundError: No such column.
        """
        with self._lock:
            op = schema_changes.remove_column(self._snap, name)
            self.flush()
            self._commit_ops([op])

    def rename_column(self, name: str, new_name: str) -> None:
        """Rename a column (data files are addressed by field id, so nothing is rewritten).

        Raises:
            ColumnNotFoundError: No column ``name``.
            ColumnExistsError: ``new_name`` is taken.
        """
        with self._lock:
            op = schema_changes.rename_column(self._snap, name, new_name)
            self.flush()
            self._commit_ops([op])

    def _set_metadata(self, values: dict[str, Any], removed: list[str]) -> None:
        with self._lock:
            self.flush()
            self._commit_ops([commits.SetMetadata(values, removed)])

    def _set_column_metadata(self, column: str, metadata: dict[str, Any]) -> None:
        with self._lock:
            op = schema_changes.set_column_metadata(self._snap, column, metadata)
            self.flush()
            self._commit_ops([op])

    # -- refs ----------------------------------------------------------------------------------
    def tag(
        self, name: str, message: str | None = None, version: str | None = None
    ) -> Tag[ReadOnlyDataset]:
        """Name a version (the current one by default, pending writes flushed first).

        Any name a git user would give works (``v1``, ``v1.0``, ``v2.0-rc1``, ``release``,
        ``release/2024``): ``/``-separated parts of ASCII letters, digits, ``_ . - +``.

        Raises:
            TagExistsError: The name is taken.
            VersionNotFoundError: ``version`` does not exist.
            InvalidNameError: The name is not valid (or looks like a version id).
        """
        _check_message(message)
        with self._lock:
            refs.check_ref_name(name, "tag")
            manifest = self._manifest_at(version)
            where = physical_ref(self._storage, manifest)
            info = refs.create_tag(self._storage, name, where, manifest, message)
            return Tag(self, info)

    def _manifest_at(self, version: str | None) -> Manifest:
        """The manifest of ``version``, or of the current version with pending writes flushed."""
        if version is None:
            self.flush()
            return self._manifest
        return self._resolve(version)

    def branch(self, name: str, version: str | None = None) -> Branch[Dataset]:
        """Create a branch from a version (the current one by default); no data is copied.

        Raises:
            BranchExistsError: The name is taken.
            InvalidNameError: The name is not valid (or looks like a version id).
        """
        with self._lock:
            if name != layout.MAIN_BRANCH:
                refs.check_ref_name(name, "branch")
            manifest = self._manifest_at(version)
            refs.create_branch(self._storage, name, manifest.ref)
            return Branch(self, name)

    def merge(self, branch: str, *, resolve: str = "error") -> str | None:
        """Bring another branch's committed changes into this branch, as a commit.

        Appended rows, deletions, cell updates and column additions, drops and renames of
        ``branch`` (up to its latest commit) are applied here. Cells both branches changed
        to different values raise :class:`MergeConflictError` naming the rows and columns,
        and nothing changes; ``resolve="ours"`` keeps this branch's values, ``"theirs"``
        takes ``branch``'s.

        Returns:
            The merge commit's version id, or None if there was nothing to merge.

        Raises:
            MergeConflictError: Conflicting changes (see above), or the branches have no
                direct fork point.
            InvalidMergeError: ``branch`` is this branch, or ``resolve`` is unknown.
            BranchNotFoundError: No such branch.
        """
        with self._lock:
            check_merge_arguments(self._manifest.branch, branch, resolve)
            self.flush()
            self.refresh()
            # check_merge_arguments refused any other value of resolve
            op = plan_merge(self._storage, self._manifest, branch, resolve=cast(Resolve, resolve))
            if op is None:
                return None
            self._commit_ops([op], is_commit=True, message=f"merge {branch}")
            return self.version

    def refresh(self) -> None:
        """Move to the newest version of the branch (pending writes are kept and rebase).

        Raises:
            BranchNotFoundError: The branch was deleted.
        """
        with self._lock:
            self._set_manifest(self._read_head())

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def __del__(self) -> None:
        writes = getattr(self, "_writes", None)  # None: __init__ raised before making it
        if writes is not None and not writes.is_empty():
            flush_dropped(self, writes.rows)

    def __reduce__(self) -> tuple[Any, ...]:
        self.flush()  # the other side reopens by URL and must see these rows
        return (_reopen, (self.url, self._storage.creds, self._manifest.branch, None, False))


def _check_message(message: Any) -> None:
    # checked before anything is written: a manifest or tag file with a message of another
    # type would be refused by every later read
    if message is not None and not isinstance(message, str):
        raise InvalidArgumentError(
            f"a message must be a string or None, got {type(message).__name__} {message!r}"
        )


def open_reader(
    storage: Storage, version: str | None = None, branch: str | None = None
) -> ReadOnlyDataset:
    """A read-only handle at the head of ``branch`` (default main), or at ``version``.

    Raises:
        DatasetNotFoundError: No dataset in ``storage``.
        BranchNotFoundError: ``branch`` does not exist.
        VersionNotFoundError: ``version`` names no version or tag.
        FormatError: The dataset is damaged or was written by a newer lakefmt.
    """
    if version is None:
        return ReadOnlyDataset(storage, protocol.open_head(storage, branch))
    return ReadOnlyDataset(storage, protocol.open_version(storage, version, branch), pinned=True)


def open_writer(storage: Storage, branch: str | None = None) -> Dataset:
    """A writable handle at the head of ``branch`` (default main).

    Raises:
        DatasetNotFoundError: No dataset in ``storage``.
        BranchNotFoundError: ``branch`` does not exist.
        FormatError: The dataset is damaged or was written by a newer lakefmt.
    """
    return Dataset(storage, protocol.open_head(storage, branch))


def open_query_source(spec: str, creds: dict[str, Any] | None) -> ReadOnlyDataset:
    """Open what a query names in ``FROM``: ``"url"``, ``"url@tag"``, ``"url@branch"`` or
    ``"url@<version id>"``, pinned at the version read now.

    Raises:
        QueryError: No dataset there, or the part after ``@`` names nothing.
    """
    return _open_spec(spec, creds)._pinned_now()


def _open_spec(spec: str, creds: dict[str, Any] | None) -> ReadOnlyDataset:
    if "@" in spec:
        url, _, ref = spec.rpartition("@")
        if url and ref and protocol.dataset_exists(open_storage(url, creds)):
            try:
                return open_reader(open_storage(url, creds), version=ref)
            except VersionNotFoundError:
                pass
            try:
                return open_reader(open_storage(url, creds), branch=ref)
            except (BranchNotFoundError, ValueError):
                raise QueryError(
                    f"'{ref}' is neither a version id, a tag nor a branch of {url}"
                ) from None
    try:
        return open_reader(open_storage(spec, creds))
    except DatasetNotFoundError:
        raise QueryError(f"no dataset at '{spec}'") from None


def _reopen(
    url: str, creds: dict[str, Any] | None, branch: str, version: str | None, read_only: bool
) -> ReadOnlyDataset:
    if read_only:
        return open_reader(open_storage(url, creds), version, branch)
    return open_writer(open_storage(url, creds), branch)
