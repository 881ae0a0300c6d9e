"""The DuckDB relations that read a query's sources (:mod:`lakefmt.tql.models`).

Each place a query names a source becomes one relation: a DuckDB subquery with the columns
the query uses, plus the source's hidden identity columns (``__lf_frag``/``__lf_pos`` or
``__lf_vrow``) and the score columns the planner asked for.

A dataset relation is built from the version's manifest, never by listing files:

* fragments whose wanted columns sit in data files with the same layout are read by one
  ``read_parquet([...], file_row_number=true)`` (``file_index`` gives the fragment); columns
  are selected by their position in the file's field ids, because a renamed column keeps its
  old name inside Parquet; when they sit in several column groups, the groups are combined
  with ``POSITIONAL JOIN``;
* columns a fragment lacks (added later) are the field's default, cast to the field's type;
* deleted rows are removed with an ``ANTI JOIN`` on a registered Arrow table of positions;
* cell updates are applied with a ``LEFT JOIN`` on a registered table of new values;
* every column is cast to the field's DuckDB type (fixed-size lists to ``FLOAT[d]``).

Only local datasets are read by DuckDB's Parquet reader (their directories are the only ones
the sandboxed connection may read). For ``mem://`` and object stores, the wanted columns of
each data file are read with pyarrow and registered as Arrow tables. Vector columns (fixed
size lists) of data files are kept in RAM in :data:`lakefmt.tql.cache.VECTORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.errors import InvalidArgumentError
from lakefmt.format import fragments as files
from lakefmt.format.cache import LRUCache
from lakefmt.format.column_stats import parquet_stats_trusted
from lakefmt.format.manifest import DataFile, Field, Fragment
from lakefmt.format.snapshot import Snapshot
from lakefmt.indexes.text import BM25_B, BM25_K1, tokens_sql
from lakefmt.storage import Storage
from lakefmt.tql.cache import VECTORS
from lakefmt.tql.columns import classify, duck_type, quote_ident, quote_str, sql_literal, storage_of
from lakefmt.tql.models import (
    FRAG,
    POS,
    ROW,
    SIMILARITY_COLUMN,
    VROW,
    Bm25Request,
    DatasetSource,
    SimilarityRequest,
    Source,
    TableSource,
    Visible,
)
from lakefmt.tql.pruning import Condition, kept_fragments
from lakefmt.tql.similarity import score_type, similarity_scores
from lakefmt.types import as_array

#: Characters DuckDB expands in file names (globs); datasets under such paths are read
#: through Arrow instead.
_GLOB_CHARS = set("*?[]{}")

#: Views of at most this many rows take their cells instead of scanning their fragments.
SMALL_VIEW_ROWS = 4096


class TableRegistry:
    """Arrow tables one query registers on its DuckDB cursor, under fresh names."""

    def __init__(self) -> None:
        self.tables: list[tuple[str, pa.Table]] = []

    def add(self, table: pa.Table) -> str:
        """Register ``table``; return its (quoted) SQL name.

        Large tables are cut into chunks (zero-copy slices): DuckDB scans an Arrow table
        one chunk per thread, so a single huge chunk would use one core.
        """
        name = f"__lf_t{len(self.tables)}"
        if table.num_rows > REGISTER_CHUNK_ROWS:
            table = pa.Table.from_batches(
                table.to_batches(max_chunksize=REGISTER_CHUNK_ROWS), schema=table.schema
            )
        self.tables.append((name, table))
        return quote_ident(name)


#: Rows per chunk of the Arrow tables registered with DuckDB (its unit of parallel scan).
REGISTER_CHUNK_ROWS = 16_384

#: Loads a whole column of a local Parquet file:
#: (readable directories, absolute path, column name, Arrow type) -> array.
VectorLoader = Callable[[Sequence[str], str, str, pa.DataType], pa.Array]


def local_root(storage: Storage) -> str | None:
    """The directory DuckDB may read a dataset's files from, or None (read via Arrow)."""
    root = getattr(storage, "root", None)
    if not storage.capabilities.local or not isinstance(root, str):
        return None
    if _GLOB_CHARS & set(root) or "'" in root:
        return None
    return root


def readable_dirs(storage: Storage) -> list[str]:
    """The directories of a local dataset that the sandboxed connection may read."""
    root = local_root(storage)
    if root is None:
        return []
    base = root.rstrip("/")
    return [f"{base}/data/", f"{base}/_deletions/", f"{base}/_updates/"]


def _to_storage(array: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = as_array(array)
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    target = storage_of(target)
    return array if array.type == target else array.cast(target)


def _column_names(storage: Storage, data_file: DataFile) -> list[str]:
    """The Parquet column names of a data file (immutable, so cached by path)."""
    return _COLUMN_NAMES.get_or_load(
        (storage.url, data_file.path),
        lambda: list(files.parquet_file(storage, data_file.path).schema_arrow.names),
    )


_COLUMN_NAMES: LRUCache[list[str]] = LRUCache()


def _empty_relation(columns: Sequence[tuple[str, str]]) -> str:
    cols = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(n)}" for n, t in columns)
    return f"SELECT {cols} WHERE false"


class RelationBuilder:
    """Builds the SQL of source relations for one query.

    Args:
        registry: Where Arrow tables of this query go.
        load_vectors: Reads a vector column of a local file (through the sandboxed DuckDB).
    """

    def __init__(self, registry: TableRegistry, load_vectors: VectorLoader | None) -> None:
        self.registry = registry
        self.load_vectors = load_vectors
        self.notes: list[str] = []
        """What ``ds.explain`` reports of the relations built (fragments skipped)."""

    # -- entry point --------------------------------------------------------------------------
    def relation(
        self,
        source: Source,
        needed: Sequence[str],
        *,
        want_row: bool = False,
        bm25: Sequence[Bm25Request] = (),
        similarity: Sequence[SimilarityRequest] = (),
        identity: bool = True,
        conditions: Sequence[Condition] = (),
    ) -> str:
        """SQL of a relation over ``source`` with the identity columns and ``needed`` columns.

        ``bm25`` and ``similarity`` add computed score columns (their ``output`` names);
        similarity requests name stored vector columns of a dataset source. ``identity=False``
        says the query never reads the identity columns of a whole dataset (an aggregate).
        ``conditions`` are terms of a WHERE the query applies to every row of the relation:
        fragments whose statistics rule one out are left out (not with row numbers or BM25,
        which are computed over the whole relation).
        """
        visible = {v.name: v for v in source.visible()}
        needed = [n for n in dict.fromkeys(needed) if n in visible]
        requests: list[Bm25Request | SimilarityRequest] = [*bm25, *similarity]
        for req in requests:
            if req.column not in needed:
                needed.append(req.column)
        if similarity and (
            not isinstance(source, DatasetSource)
            or any(visible[r.column].field is None for r in similarity)
        ):
            raise ValueError("similarity columns need stored vector columns of a dataset")
        kept = None
        if (
            isinstance(source, DatasetSource)
            and not bm25
            and not (want_row and source.rows is None)
        ):
            by_name = {v.name: v.field for v in visible.values() if v.field is not None}
            kept = kept_fragments(source.snapshot, by_name, conditions)
            if kept is not None:
                total = len(source.snapshot.manifest.fragments)
                self.notes.append(
                    f"{source.label or 'dataset'}: column statistics skip {total - len(kept)} "
                    f"of {total} fragments"
                )
        if isinstance(source, TableSource):
            sql = self._table_relation(source, [visible[n] for n in needed])
        elif source.rows is None:
            fields = [(n, visible[n].field) for n in needed]
            sql = self._dataset_relation(
                source.snapshot,
                fields,
                fragments=kept,
                deletions=True,
                similarity=similarity,
                identity=identity or want_row,
            )
        else:
            sql = self._view_relation(source, [visible[n] for n in needed], similarity, kept)
        if want_row:
            if isinstance(source, DatasetSource) and source.rows is None:
                sql = (
                    f"SELECT *, row_number() OVER (ORDER BY {FRAG}, {POS}) - 1 AS {ROW} "
                    f"FROM ({sql})"
                )
            else:
                sql = f"SELECT *, {VROW} AS {ROW} FROM ({sql})"
        for i, req in enumerate(bm25):
            sql = _bm25_sql(sql, req, i)
        return sql

    # -- tables and views -------------------------------------------------------------------------
    def _table_relation(self, source: TableSource, cols: list[Visible]) -> str:
        table = source.table
        arrays = [pa.array(np.arange(table.num_rows, dtype=np.int64))]
        names = [VROW]
        for v in cols:
            arrays.append(_plain(table.column(v.name)))
            names.append(v.name)
        name = self.registry.add(pa.Table.from_arrays(arrays, names=names))
        return f"SELECT * FROM {name}"

    def _view_relation(
        self,
        source: DatasetSource,
        cols: list[Visible],
        similarity: Sequence[SimilarityRequest] = (),
        kept: set[int] | None = None,
    ) -> str:
        snap = source.snapshot
        rows = np.asarray(source.rows, dtype=np.int64)
        frag = np.zeros(len(rows), dtype=np.int32)
        pos = np.zeros(len(rows), dtype=np.int64)
        for k, positions, slots in snap.locate(rows):
            frag[slots] = k
            pos[slots] = positions
        arrays = [pa.array(frag), pa.array(pos), pa.array(np.arange(len(rows), dtype=np.int64))]
        names = [FRAG, POS, VROW]
        extra = [v for v in cols if v.field is None]
        for v in extra:
            assert source.extra is not None
            arrays.append(_plain(source.extra.column(v.name)))
            names.append(v.name)
        fields = [(v.name, v.field) for v in cols if v.field is not None]
        if fields and len(rows) <= SMALL_VIEW_ROWS:
            return self._small_view_relation(snap, frag, pos, arrays, names, fields, similarity)
        rows_name = self.registry.add(pa.Table.from_arrays(arrays, names=names))
        extra_sql = "".join(f", r.{quote_ident(v.name)}" for v in extra)
        if not fields:
            return f"SELECT r.{VROW}{extra_sql} FROM {rows_name} AS r"
        base = self._dataset_relation(
            snap,
            fields,
            fragments={int(k) for k in np.unique(frag) if kept is None or int(k) in kept},
            deletions=False,
            similarity=similarity,
        )
        field_sql = "".join(
            f", b.{quote_ident(n)}"
            for n in [*(n for n, _ in fields), *(r.output for r in similarity)]
        )
        return (
            f"SELECT r.{VROW}{extra_sql}{field_sql} FROM ({base}) AS b JOIN {rows_name} AS r "
            f"ON b.{FRAG} = r.{FRAG} AND b.{POS} = r.{POS}"
        )

    def _small_view_relation(
        self,
        snap: Snapshot,
        frag: np.ndarray,
        pos: np.ndarray,
        arrays: list[pa.Array],
        names: list[str],
        fields: Sequence[tuple[str, Field]],
        similarity: Sequence[SimilarityRequest],
    ) -> str:
        """A view of few rows: their cells are taken (vectors from the vector cache), not
        scanned with their fragments; similarity scores of those rows only."""
        arrays, names = list(arrays), list(names)
        select = [VROW, *(quote_ident(n) for n in names[3:])]
        field_of = dict(fields)
        for i, (name, f) in enumerate(fields):
            t = snap.type_of(f)
            arrays.append(self._cells(snap, frag, pos, f, t))
            names.append(f"__lf_c{i}")
            select.append(f"CAST(__lf_c{i} AS {duck_type(t.storage_type)}) AS {quote_ident(name)}")
        column_of = {name: f"__lf_c{i}" for i, (name, _) in enumerate(fields)}
        for req in similarity:
            vectors = arrays[names.index(column_of[req.column])]
            scores = similarity_scores(vectors, req, None)
            if scores is None:  # null elements: DuckDB's function decides
                target = duck_type(snap.type_of(field_of[req.column]).storage_type)
                cell = f"CAST({column_of[req.column]} AS {target})"
                select.append(f"{req.sql.replace(SIMILARITY_COLUMN, cell)} AS {req.output}")
            else:
                arrays.append(scores)
                names.append(req.output)
                select.append(req.output)
        name = self.registry.add(pa.Table.from_arrays(arrays, names=names))
        return f"SELECT {', '.join(select)} FROM {name}"

    def _cells(
        self, snap: Snapshot, frag: np.ndarray, pos: np.ndarray, f: Field, t: Any
    ) -> pa.Array:
        """Cells of one field at ``(fragment, position)`` pairs, in their order."""
        vector = VECTORS.max_bytes > 0 and classify(None, t.storage_type).kind == "vector"
        parts: list[pa.Array] = []
        slots: list[np.ndarray] = []
        for k in np.unique(frag):
            where = np.flatnonzero(frag == k)
            positions = pos[where]
            if vector:
                column = self.fragment_column(snap, int(k), f)
                parts.append(column.take(pa.array(positions)))
                slots.append(where)
                continue
            order = np.argsort(positions, kind="stable")
            got = snap.read_fragment(snap.manifest.fragments[int(k)], [f], positions[order])
            parts.append(_to_storage(got[f.id], t.storage_type))
            slots.append(where[order])
        if not parts:
            return pa.array([], storage_of(t.storage_type))
        merged = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
        slot = np.concatenate(slots)
        inverse = np.empty_like(slot)
        inverse[slot] = np.arange(len(slot))
        return merged.take(pa.array(inverse))

    def fragment_column(self, snap: Snapshot, k: int, f: Field) -> pa.Array:
        """A field's cells for every physical row of fragment ``k`` (storage type; updates
        and defaults applied); the data file's column comes from the vector cache."""
        fragment = snap.manifest.fragments[k]
        t = snap.type_of(f)
        holder = next((d for d in reversed(fragment.files) if f.id in d.field_ids), None)
        if holder is None:
            return _to_storage(snap.default_array(f, fragment.rows), t.storage_type)
        pname = _column_names(snap.storage, holder)[holder.field_ids.index(f.id)]
        files.verify_column_chunks(snap.storage, holder, [pname])
        base = self._read_column(snap.storage, holder, f.id, pname, t.storage_type, cache=True)
        updated = [u for u in fragment.updates if u.field_id == f.id]
        if not updated:
            return base
        positions = np.unique(
            np.concatenate(
                [files.read_update_file(snap.storage, u.path, u.size)[0] for u in updated]
            )
        ).astype(np.int64)
        new = _to_storage(snap.read_fragment(fragment, [f], positions)[f.id], t.storage_type)
        take = np.arange(fragment.rows, dtype=np.int64)
        take[positions] = fragment.rows + np.arange(len(positions))
        return pa.concat_arrays([base, new]).take(pa.array(take))

    # -- datasets ----------------------------------------------------------------------------------
    def _dataset_relation(
        self,
        snap: Snapshot,
        fields: Sequence[tuple[str, Field | None]],
        *,
        fragments: set[int] | None,
        deletions: bool,
        similarity: Sequence[SimilarityRequest] = (),
        identity: bool = True,
    ) -> str:
        """UNION ALL of one scan per group of fragments with the same file layout.

        Without ``identity`` the relation leaves out the identity columns (DuckDB then
        need not number the rows it reads); it keeps them when it has no other column.
        """
        manifest = snap.manifest
        wanted: list[tuple[str, Field]] = [(n, f) for n, f in fields if f is not None]
        types = {f.id: snap.type_of(f) for _, f in wanted}
        identity = identity or not (wanted or similarity)
        columns_out = (
            ([(FRAG, "INTEGER"), (POS, "BIGINT")] if identity else [])
            + [(n, duck_type(types[f.id].storage_type)) for n, f in wanted]
            + [(r.output, r.duck_type) for r in similarity]
        )
        groups: dict[Any, list[tuple[int, list[DataFile]]]] = {}
        for k, frag in enumerate(manifest.fragments):
            if frag.live_rows == 0 or (fragments is not None and k not in fragments):
                continue
            signature, data_files = self._layout(snap.storage, frag, wanted)
            groups.setdefault(signature, []).append((k, data_files))
        if not groups:
            return _empty_relation(columns_out)
        parts = [
            self._group_sql(
                snap, signature, members, wanted, types, deletions, similarity, identity
            )
            for signature, members in groups.items()
        ]
        return " UNION ALL ".join(f"({p})" for p in parts) if len(parts) > 1 else parts[0]

    @staticmethod
    def _layout(
        storage: Storage, frag: Fragment, wanted: Sequence[tuple[str, Field]]
    ) -> tuple[Any, list[DataFile]]:
        """A fragment's file layout for the wanted fields: which file holds which column."""
        provider: dict[int, int] = {}
        for index, data_file in enumerate(frag.files):
            for fid in data_file.field_ids:
                provider[fid] = index  # the last file holding a field wins
        by_file: dict[int, list[int]] = {}
        for _, f in wanted:
            holder = provider.get(f.id)
            if holder is not None and f.id not in by_file.get(holder, []):
                by_file.setdefault(holder, []).append(f.id)
        if not by_file and frag.files:
            by_file[0] = []  # nothing wanted: still scan one file for the row identities
        roles = []
        data_files = []
        for index in sorted(by_file):
            data_file = frag.files[index]
            names = _column_names(storage, data_file)
            roles.append(
                tuple((fid, names[data_file.field_ids.index(fid)]) for fid in by_file[index])
            )
            data_files.append(data_file)
        defaults = tuple(sorted({f.id for _, f in wanted if f.id not in provider}))
        return (tuple(roles), defaults, not frag.files), data_files

    def _group_sql(
        self,
        snap: Snapshot,
        signature: Any,
        members: list[tuple[int, list[DataFile]]],
        wanted: Sequence[tuple[str, Field]],
        types: dict[int, Any],
        deletions: bool,
        similarity: Sequence[SimilarityRequest] = (),
        identity: bool = True,
    ) -> str:
        roles, _defaults, no_files = signature
        field_of = dict(wanted)
        storage = snap.storage
        manifest = snap.manifest
        root = local_root(storage)
        frag_ids = [k for k, _ in members]
        # deletions and updates are joined on (fragment, position), so they need the
        # identity columns even when the query does not
        joins = []
        if deletions:
            dels = [(k, snap.deleted(manifest.fragments[k])) for k in frag_ids]
            dels = [(k, d) for k, d in dels if len(d)]
            if dels:
                table = pa.table(
                    {
                        "f": pa.array(
                            np.concatenate([np.full(len(d), k, np.int32) for k, d in dels])
                        ),
                        "p": pa.array(np.concatenate([d for _, d in dels]).astype(np.int64)),
                    }
                )
                name = self.registry.add(table)
                joins.append(f" ANTI JOIN {name} AS d ON d.f = p0.{FRAG} AND d.p = p0.{POS}")
        updated: dict[int, str] = {}
        for _, f in wanted:
            if f.id in updated:
                continue
            table = self._updates(snap, frag_ids, f, types[f.id])
            if table is not None:
                alias = f"u{len(updated)}"
                name = self.registry.add(table)
                joins.append(
                    f" LEFT JOIN {name} AS {alias} "
                    f"ON {alias}.f = p0.{FRAG} AND {alias}.p = p0.{POS}"
                )
                updated[f.id] = alias
        need_ids = identity or bool(joins)
        column_of: dict[int, str] = {}  # field id -> "pX.__lf_fN"
        computed: dict[str, str] = {}  # similarity output -> "pX.<output>"
        part_sql: list[str] = []
        if no_files:
            part_sql.append(self._arrow_part(snap, members, None, [])[0])
        for r, role in enumerate(roles):
            vectors = [
                (fid, pname)
                for fid, pname in role
                if VECTORS.max_bytes > 0
                and classify(None, types[fid].storage_type).kind == "vector"
            ]
            if root is not None and not vectors:
                # DuckDB's own Parquet reader: projection and filter pushdown, parallel. It
                # does not check page CRCs, so each column chunk is checked here the first
                # time this process reads it (a flipped byte must fail, not return values).
                for _, data_files in members:
                    files.verify_column_chunks(
                        snap.storage, data_files[r], [pname for _, pname in role]
                    )
                part_sql.append(
                    _parquet_part(
                        root,
                        members,
                        r,
                        role,
                        identity=need_ids and not part_sql,
                        nan_guarded=_nan_guarded(members, r, role, types),
                    )
                )
            else:
                # Arrow: datasets DuckDB may not read, and column groups with vectors, which
                # are served from RAM (the group's other wanted columns come along, so the
                # group is one scan rather than a positional join of two)
                in_role = {fid for fid, _ in role}
                requests = [q for q in similarity if field_of[q.column].id in in_role]
                name, done = self._arrow_part(
                    snap,
                    members,
                    r,
                    role,
                    types=types,
                    cache=bool(vectors),
                    similarity=[(field_of[q.column].id, q) for q in requests],
                )
                part_sql.append(name)
                computed.update({out: f"p{len(part_sql) - 1}.{out}" for out in done})
            for fid, _ in role:
                column_of[fid] = f"p{len(part_sql) - 1}.__lf_f{fid}"
        from_sql = f"{part_sql[0]} AS p0" + "".join(
            f" POSITIONAL JOIN {p} AS p{i}" for i, p in enumerate(part_sql[1:], start=1)
        )
        select = [f"p0.{FRAG} AS {FRAG}", f"p0.{POS} AS {POS}"] if identity else []
        stored: dict[int, str] = {}  # field id -> its value before updates
        for name, f in wanted:
            t = types[f.id]
            target = duck_type(t.storage_type)
            if f.id in column_of:
                base = f"CAST({column_of[f.id]} AS {target})"
            else:
                cell = snap.default_cell(f)  # the stored cell, as data files hold values
                if isinstance(cell, pa.ExtensionArray):
                    cell = cell.storage
                value = None if cell is None else cell.to_pylist()[0]
                base = sql_literal(value, t.storage_type)
            stored[f.id] = base
            if f.id in updated:
                u = updated[f.id]
                base = f"CASE WHEN {u}.p IS NULL THEN {base} ELSE CAST({u}.v AS {target}) END"
            select.append(f"{base} AS {quote_ident(name)}")
        for req in similarity:
            f = field_of[req.column]
            score = computed.get(req.output) or req.sql.replace(SIMILARITY_COLUMN, stored[f.id])
            if f.id in updated:
                u = updated[f.id]
                target = duck_type(types[f.id].storage_type)
                new_value = req.sql.replace(SIMILARITY_COLUMN, f"CAST({u}.v AS {target})")
                score = f"CASE WHEN {u}.p IS NULL THEN {score} ELSE {new_value} END"
            select.append(f"{score} AS {req.output}")
        return f"SELECT {', '.join(select)} FROM {from_sql}{''.join(joins)}"

    def _arrow_part(
        self,
        snap: Snapshot,
        members: list[tuple[int, list[DataFile]]],
        role: int | None,
        columns: Sequence[tuple[int, str]],
        *,
        types: dict[int, Any] | None = None,
        cache: bool = False,
        similarity: Sequence[tuple[int, SimilarityRequest]] = (),
    ) -> tuple[str, list[str]]:
        """Columns of one column group of several fragments, read with pyarrow (or cached).

        Returns the registered table's name and the outputs of the ``similarity`` requests
        (``(field id, request)``) it computed with numpy; the others are left to SQL.
        """
        storage = snap.storage
        frag_chunks: list[pa.Array] = []
        pos_chunks: list[pa.Array] = []
        col_chunks: dict[int, list[pa.Array]] = {fid: [] for fid, _ in columns}
        sim_chunks: dict[str, list[pa.Array]] = {req.output: [] for _, req in similarity}
        for k, data_files in members:
            n = snap.manifest.fragments[k].rows
            frag_chunks.append(pa.array(np.full(n, k, dtype=np.int32)))
            pos_chunks.append(pa.array(np.arange(n, dtype=np.int64)))
            if role is None:
                continue
            data_file = data_files[role]
            for fid, pname in columns:
                assert types is not None
                target = types[fid].storage_type
                array = self._read_column(storage, data_file, fid, pname, target, cache=cache)
                col_chunks[fid].append(array)
                for sim_fid, req in similarity:
                    if sim_fid != fid or req.output not in sim_chunks:
                        continue
                    column = data_file.field_ids.index(fid)  # ids differ between branches
                    norms_key = (storage.url, data_file.path, column) if cache else None
                    scores = similarity_scores(array, req, norms_key)
                    if scores is None:  # null elements: DuckDB's function decides
                        del sim_chunks[req.output]
                    else:
                        sim_chunks[req.output].append(scores)
        arrays = [
            pa.chunked_array(frag_chunks, pa.int32()),
            pa.chunked_array(pos_chunks, pa.int64()),
        ]
        names = [FRAG, POS]
        for fid, _ in columns:
            assert types is not None
            arrays.append(pa.chunked_array(col_chunks[fid], storage_of(types[fid].storage_type)))
            names.append(f"__lf_f{fid}")
        for output, chunks in sim_chunks.items():
            arrays.append(pa.chunked_array(chunks, score_type(similarity, output)))
            names.append(output)
        return self.registry.add(pa.Table.from_arrays(arrays, names=names)), list(sim_chunks)

    def _read_column(
        self,
        storage: Storage,
        data_file: DataFile,
        fid: int,
        pname: str,
        target: pa.DataType,
        *,
        cache: bool = False,
    ) -> pa.Array:
        root = local_root(storage)

        def load() -> pa.Array:
            if root is not None and self.load_vectors is not None:
                array = self.load_vectors(
                    readable_dirs(storage), f"{root}/{data_file.path}", pname, target
                )
            else:
                array = files.read_data_file(
                    storage, data_file, [fid], 0, sum(data_file.row_groups)
                )[fid]
            return _to_storage(array, target)

        if cache:
            return VECTORS.get_or_load(
                # by column position: a file shared by branches may carry other ids in each
                (storage.url, data_file.path, data_file.field_ids.index(fid)),
                load,
                lambda array: array.nbytes,
            )
        return load()

    @staticmethod
    def _updates(snap: Snapshot, frag_ids: Sequence[int], f: Field, t: Any) -> pa.Table | None:
        """New values of field ``f`` in these fragments: ``f``, ``p``, ``v`` (last write wins)."""
        frags, positions, values = [], [], []
        for k in frag_ids:
            fragment = snap.manifest.fragments[k]
            for update in fragment.updates:
                if update.field_id != f.id:
                    continue
                pos, vals = files.read_update_file(snap.storage, update.path)
                frags.append(np.full(len(pos), k, dtype=np.int32))
                positions.append(np.asarray(pos, dtype=np.int64))
                values.append(_to_storage(vals, t.storage_type))
        if not frags:
            return None
        f_all = np.concatenate(frags)
        p_all = np.concatenate(positions)
        v_all = pa.concat_arrays(values) if len(values) > 1 else values[0]
        if len(values) > 1:  # later update files override earlier ones
            key = f_all.astype(np.int64) << 40 | p_all
            _, last_rev = np.unique(key[::-1], return_index=True)
            keep = np.sort(len(key) - 1 - last_rev)
            f_all, p_all = f_all[keep], p_all[keep]
            v_all = v_all.take(pa.array(keep))
        return pa.table({"f": pa.array(f_all), "p": pa.array(p_all), "v": v_all})


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Drop extension types (DuckDB sees the storage)."""
    if isinstance(column.type, pa.ExtensionType):
        if isinstance(column, pa.ChunkedArray):
            return pa.chunked_array(
                [c.storage for c in column.chunks], type=column.type.storage_type
            )
        return column.storage
    return column


def _nan_guarded(
    members: list[tuple[int, list[DataFile]]],
    role: int,
    columns: Sequence[tuple[int, str]],
    types: dict[int, Any],
) -> dict[int, str]:
    """Floating columns (field id -> DuckDB type) whose Parquet statistics some member file
    does not mark as NaN-safe (:func:`~lakefmt.format.column_stats.parquet_stats_trusted`)."""
    guarded = {}
    for fid, _ in columns:
        storage = types[fid].storage_type
        if not pa.types.is_floating(storage):
            continue
        if not all(parquet_stats_trusted(files_[role], fid, storage) for _, files_ in members):
            guarded[fid] = "DOUBLE" if pa.types.is_float64(storage) else "FLOAT"
    return guarded


def _parquet_part(
    root: str,
    members: list[tuple[int, list[DataFile]]],
    role: int,
    columns: Sequence[tuple[int, str]],
    *,
    identity: bool,
    nan_guarded: dict[int, str] | None = None,
) -> str:
    """``read_parquet`` of one column group of several fragments (same layout).

    Columns in ``nan_guarded`` are read through a ``CASE`` with a NaN branch: its statistics
    reach NaN, so DuckDB cannot judge a filter always true from bounds that older writers
    computed without the NaN (spec/format.md, 5.3) and must test each value.
    """
    paths = ", ".join(quote_str(f"{root}/{data_files[role].path}") for _, data_files in members)
    guarded = nan_guarded or {}
    cols = []
    for fid, pname in columns:
        q = quote_ident(pname)
        if fid in guarded:
            q = f"CASE WHEN isnan({q}) THEN CAST('NaN' AS {guarded[fid]}) ELSE {q} END"
        cols.append(f"{q} AS __lf_f{fid}")
    if identity:
        ks = [k for k, _ in members]
        if ks == list(range(ks[0], ks[0] + len(ks))):
            frag = (
                f"CAST(file_index AS INTEGER) + {ks[0]}" if ks[0] else "CAST(file_index AS INTEGER)"
            )
        else:
            # file_index is UBIGINT, and DuckDB indexes lists only with BIGINT
            frag = f"[{', '.join(map(str, ks))}][CAST(file_index AS BIGINT) + 1]"
        cols = [f"{frag} AS {FRAG}", f"file_row_number AS {POS}", *cols]
        return f"(SELECT {', '.join(cols)} FROM read_parquet([{paths}], file_row_number=true))"
    if not cols:  # only the row count matters
        cols = ["file_row_number AS __lf_rn"]
        return f"(SELECT {', '.join(cols)} FROM read_parquet([{paths}], file_row_number=true))"
    return f"(SELECT {', '.join(cols)} FROM read_parquet([{paths}]))"


def _bm25_sql(sql: str, req: Bm25Request, i: int) -> str:
    """Wrap a relation with a BM25 score column over the text column ``req.column``.

    N, the mean length and each term's document frequency are aggregates over the relation,
    or the constants of ``req.stats`` when it is set (the same expression either way, so a
    subset of rows scored with the full relation's statistics gets the full relation's
    scores, bit for bit).
    """
    toks, dl, n, avg = f"__lf_bm{i}_toks", f"__lf_bm{i}_dl", f"__lf_bm{i}_n", f"__lf_bm{i}_avg"
    col = quote_ident(req.column)
    tf_cols = [f"__lf_bm{i}_tf{j}" for j in range(len(req.terms))]
    df_cols = [f"__lf_bm{i}_df{j}" for j in range(len(req.terms))]
    tf_sql = "".join(
        f", len(list_filter({toks}, lambda __lf_t: __lf_t = {quote_str(term)})) AS {tf}"
        for term, tf in zip(req.terms, tf_cols, strict=True)
    )
    stats = req.stats
    if stats is None:
        # not avg(): DuckDB's windowed avg divides in long double, its plain avg in double;
        # a float64 quotient of the exact sum is the same number wherever it is computed
        n_sql, avg_sql = "count(*) OVER ()", f"sum({dl}) OVER () / count(*) OVER ()"
        df_sqls = [f"count_if({tf} > 0) OVER ()" for tf in tf_cols]
    else:
        if len(stats.document_frequencies) != len(req.terms):
            raise InvalidArgumentError(
                f"BM25 statistics name {len(stats.document_frequencies)} document frequencies "
                f"for {len(req.terms)} terms"
            )
        average = stats.average_length
        # repr round-trips a float64; DuckDB parses the string to the same double
        avg_sql = "CAST(NULL AS DOUBLE)" if average is None else f"CAST('{average!r}' AS DOUBLE)"
        n_sql = f"CAST({int(stats.count)} AS BIGINT)"
        df_sqls = [f"CAST({int(df)} AS BIGINT)" for df in stats.document_frequencies]
    df_sql = "".join(f", {d} AS {df}" for d, df in zip(df_sqls, df_cols, strict=True))
    norm = f"(1 - {BM25_B} + {BM25_B} * CASE WHEN {avg} > 0 THEN {dl} / {avg} ELSE 0 END)"
    terms = [
        f"ln(1 + ({n} - {df} + 0.5) / ({df} + 0.5)) * {tf} * {BM25_K1 + 1} "
        f"/ ({tf} + {BM25_K1} * {norm})"
        for tf, df in zip(tf_cols, df_cols, strict=True)
    ]
    score = " + ".join(terms) if terms else "0.0"
    helpers = ", ".join([toks, dl, n, avg, *tf_cols, *df_cols])
    return (
        f"SELECT * EXCLUDE ({helpers}), CAST({score} AS DOUBLE) AS {quote_ident(req.output)} FROM ("
        f"SELECT *, {n_sql} AS {n}, {avg_sql} AS {avg}{df_sql} FROM ("
        f"SELECT *, len({toks}) AS {dl}{tf_sql} FROM ("
        f"SELECT *, {tokens_sql(col)} AS {toks} FROM ({sql}))))"
    )
