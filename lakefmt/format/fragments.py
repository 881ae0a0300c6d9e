"""Writing and reading the Parquet files of fragments: column groups, deletions, updates.

Data files are ordinary Parquet written by pyarrow with the Arrow schema stored (extension
types survive) and ``PARQUET:field_id`` on every top-level column. Media columns go in a
column group of their own, uncompressed (their bytes are already compressed) and with row
groups sized by bytes, so scalar scans never touch media bytes and a single-image read reads
one small row group (the sizes, encodings and compression are chosen in
:mod:`lakefmt.format.encoding`).
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lakefmt._pool import pool_size, shared_pool
from lakefmt.errors import FormatError, StorageError
from lakefmt.format import encoding, layout
from lakefmt.format.cache import ROW_GROUP_CACHE_BYTES, ByteBudgetCache, LRUCache
from lakefmt.format.column_stats import column_stats, nan_counts
from lakefmt.format.manifest import DataFile, DeletionFile, UpdateFile
from lakefmt.storage import Storage
from lakefmt.types import as_array

FIELD_ID_KEY = b"PARQUET:field_id"

_FOOTERS: LRUCache[pq.FileMetaData] = LRUCache()
_POSITIONS: LRUCache[np.ndarray] = LRUCache()
_UPDATES: LRUCache[tuple[np.ndarray, pa.Array]] = LRUCache(256)
_GROUPS: ByteBudgetCache[pa.Array] = ByteBudgetCache(ROW_GROUP_CACHE_BYTES)


def _group_key(
    storage: Storage, data_file: DataFile, group: int, field_id: int
) -> tuple[object, ...]:
    """The row-group cache key of a column: by its position in the file, not its field id
    (a file shared by two branches after a merge may carry different ids in each)."""
    return (storage.url, data_file.path, group, data_file.field_ids.index(field_id))


#: Reads of up to this many row groups go through the decoded-group cache.
CACHED_READ_MAX_GROUPS = 2
#: A take of at most this many rows is *sparse*: its row groups go through the decoded-group
#: cache however many they are (a top-10 over a 1M-row file touches most of its groups, and
#: the next query touches the same ones), provided they fit a share of the cache.
SPARSE_TAKE_ROWS = 1024
#: The share of the group cache's budget one sparse take may fill.
SPARSE_TAKE_CACHE_SHARE = 8


def with_field_ids(schema: pa.Schema, field_ids: Sequence[int]) -> pa.Schema:
    """Return ``schema`` with ``PARQUET:field_id`` metadata on each top-level field."""
    fields = [
        f.with_metadata({**(f.metadata or {}), FIELD_ID_KEY: str(fid).encode()})
        for f, fid in zip(schema, field_ids, strict=True)
    ]
    return pa.schema(fields, metadata=schema.metadata)


def write_data_file(
    storage: Storage,
    table: pa.Table,
    field_ids: Sequence[int],
    *,
    media: bool = False,
    bloom_filters: Collection[int] = (),
    lookup_row_groups: bool = False,
) -> DataFile:
    """Write one column group of a fragment as a fresh Parquet file.

    The returned :class:`DataFile` carries the columns' statistics from the footer just
    written; ``bloom_filters`` names the field ids whose columns get Parquet bloom filters
    (:func:`lakefmt.format.encoding.wants_bloom_filter`); ``lookup_row_groups`` asks for
    the smaller row groups of columns with a lookup index
    (:func:`lakefmt.format.encoding.wants_lookup_row_groups`).
    """
    path = layout.data_file_path()
    schema = with_field_ids(table.schema, field_ids)
    if table.schema != schema:
        # Same types, new field metadata: rebuild around the same buffers (a cast would copy).
        table = pa.Table.from_arrays(table.columns, schema=schema)
    rows_per_group = (
        encoding.rows_per_group(
            table, encoding.MEDIA_ROW_GROUP_BYTES, encoding.MAX_MEDIA_ROW_GROUP_ROWS
        )
        if media
        else encoding.rows_per_group(
            table,
            encoding.SCALAR_ROW_GROUP_BYTES,
            encoding.LOOKUP_ROW_GROUP_ROWS if lookup_row_groups else encoding.MAX_ROW_GROUP_ROWS,
        )
    )
    groups: list[int] = []

    dictionary: list[str] = []
    compression: str | dict[str, str] = "none" if media else "snappy"
    encodings: dict[str, str] = {}
    if not media and table.num_rows >= encoding.SMALL_WRITE_ROWS:
        dictionary = encoding.dictionary_columns(table)
        encodings = encoding.delta_columns(table, dictionary)
        compression = encoding.column_compression(table, dictionary)
        compression.update(dict.fromkeys(encodings, "none"))

    nans = {} if media else nan_counts(table)
    # no Parquet statistics for float columns holding NaN (see lakefmt.format.column_stats)
    statistics: bool | list[str] = not media
    if any(nans.values()):
        statistics = [n for i, n in enumerate(table.column_names) if not nans.get(i)]
    blooms = encoding.bloom_filter_options(
        table,
        [
            name
            for name, fid in zip(table.column_names, field_ids, strict=True)
            if fid in bloom_filters
        ],
        rows_per_group,
    )
    footer: list[pq.FileMetaData] = []

    def write(sink: pa.NativeFile) -> None:
        groups.clear()  # a storage may call this again (see Storage.write_stream)
        footer.clear()
        with pq.ParquetWriter(
            sink,
            schema,
            compression=compression,
            use_dictionary=dictionary if dictionary else False,
            column_encoding=encodings or None,
            store_schema=True,
            write_statistics=statistics,
            write_page_index=True,
            write_page_checksum=True,  # CRC32 per page: verify() detects damaged bytes
            bloom_filter_options=blooms or None,
        ) as writer:
            for start in range(0, max(table.num_rows, 1), rows_per_group):
                chunk = table.slice(start, rows_per_group)
                writer.write_table(chunk, row_group_size=rows_per_group)
                groups.append(chunk.num_rows)
        # the footer just written, as the file holds it: its first read (often a compaction
        # or a query right after the commit) then parses none
        metadata = getattr(getattr(writer, "writer", None), "metadata", None)
        if isinstance(metadata, pq.FileMetaData):
            footer.append(metadata)

    hint = encoding.plain_file_size(table, rows_per_group) if media else None
    size = storage.write_stream(path, write, size_hint=hint)
    stats = None
    if footer:
        _FOOTERS.get_or_load((storage.url, path), lambda: footer[0])
        if not media:
            stats = column_stats(footer[0], schema, nans)
    return DataFile(path=path, field_ids=list(field_ids), size=size, row_groups=groups, stats=stats)


@contextlib.contextmanager
def damaged_file_errors(storage: Storage, path: str) -> Iterator[None]:
    """Report a missing or damaged data, deletion or update file as a ``FormatError``
    naming it (a failing store stays a ``StorageError``: the file may be intact)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise FormatError(f"{storage.url}/{path} is missing (referenced by the manifest)") from exc
    except (StorageError, FormatError):
        raise
    except (OSError, pa.ArrowException) as exc:
        # a page whose CRC32 does not match, a cut file, a footer that is not Parquet
        raise FormatError(f"{storage.url}/{path} is damaged: {exc}") from exc


#: Whether reads check the CRC32 of every page (``benchmarks/checksums.py`` measures the cost
#: by turning it off; nothing else should).
VERIFY_PAGE_CHECKSUMS = True


class _VerifiedGroups:
    """Column chunks (row group and column) of data files whose pages passed their CRC check
    in this process.

    Checking costs about as much as decoding plain values (Arrow's CRC32 runs at ~1-1.5
    GB/s here), so each row group is checked the first time the process reads it, not on
    every epoch of a scan that does not fit the decoded-group cache (files are immutable).
    """

    def __init__(self, max_entries: int = 1 << 18) -> None:
        self._keys: collections.OrderedDict[tuple[str, str, int, str], None] = (
            collections.OrderedDict()
        )
        self._max = max_entries
        self._lock = threading.Lock()

    def missing(
        self, storage: Storage, path: str, groups: Sequence[int], columns: Sequence[str]
    ) -> bool:
        """Whether any column of any of ``groups`` of ``path`` has not been checked yet."""
        if not VERIFY_PAGE_CHECKSUMS:
            return False
        with self._lock:
            return any((storage.url, path, g, c) not in self._keys for g in groups for c in columns)

    def add(
        self, storage: Storage, path: str, groups: Sequence[int], columns: Sequence[str]
    ) -> None:
        """Record that these columns of ``groups`` of ``path`` passed their checksums."""
        with self._lock:
            for g in groups:
                for c in columns:
                    self._keys[(storage.url, path, g, c)] = None
                    self._keys.move_to_end((storage.url, path, g, c))
            while len(self._keys) > self._max:
                self._keys.popitem(last=False)

    def clear(self) -> None:
        """Forget every check (the next read of each group checks it again)."""
        with self._lock:
            self._keys.clear()


_VERIFIED = _VerifiedGroups()


def open_parquet(
    storage: Storage, path: str, metadata: pq.FileMetaData | None = None, *, verify: bool = True
) -> pq.ParquetFile:
    """A reader that checks the CRC32 of every page it reads (a flipped byte in a page is
    then an error, not a wrong value; pages written without a checksum are read as is).
    ``verify=False`` skips the check, for row groups already checked in this process."""
    return pq.ParquetFile(
        storage.open_input(path),
        metadata=metadata,
        pre_buffer=False,
        page_checksum_verification=verify and VERIFY_PAGE_CHECKSUMS,
    )


def _check_size(storage: Storage, path: str, source: pa.NativeFile, size: int | None) -> None:
    """Refuse a file whose size is not the one the manifest records (a file replaced by
    another, or cut); pyarrow learns the size to find the footer anyway."""
    if size is not None and source.size() != size:
        raise FormatError(
            f"{storage.url}/{path} is damaged: it has {source.size()} bytes, the manifest "
            f"says {size}"
        )


def parquet_file(
    storage: Storage, path: str, size: int | None = None, *, verify: bool = True
) -> pq.ParquetFile:
    """Open a data file, parsing its footer only the first time (the footer is cached).

    Each call gives a fresh reader, because a pyarrow reader is not safe to share between
    threads; the cached footer makes opening cost no read of the file's tail. ``size``, the
    size the manifest records, is checked when the footer is first read; ``verify``: check
    page CRCs (see :class:`_VerifiedGroups`).
    """

    def load() -> pq.FileMetaData:
        source = storage.open_input(path)
        _check_size(storage, path, source, size)
        return pq.read_metadata(source)

    with damaged_file_errors(storage, path):
        metadata = _FOOTERS.get_or_load((storage.url, path), load)
        return open_parquet(storage, path, metadata, verify=verify)


def verify_column_chunks(storage: Storage, data_file: DataFile, columns: Sequence[str]) -> None:
    """Check the page CRCs of ``columns`` (Parquet names) in every row group of a data file,
    once per process, for readers that do not check them themselves (DuckDB's Parquet reader,
    which TQL queries use). Reads the pages in batches and drops the values.

    Raises:
        FormatError: A page is damaged (or the file is missing, cut or replaced), naming it.
    """
    groups = list(range(len(data_file.row_groups)))
    if not columns or not groups or not _VERIFIED.missing(storage, data_file.path, groups, columns):
        return
    with damaged_file_errors(storage, data_file.path):
        pf = parquet_file(storage, data_file.path, data_file.size)
        for _ in pf.iter_batches(batch_size=65_536, row_groups=groups, columns=list(columns)):
            pass  # decoding checks every page's CRC32; only that matters here
    _VERIFIED.add(storage, data_file.path, groups, columns)


def column_names(
    storage: Storage, pf: pq.ParquetFile, data_file: DataFile, field_ids: Sequence[int]
) -> list[str]:
    """The Parquet column names holding ``field_ids`` in a data file.

    Raises:
        FormatError: The file has another number of columns than the manifest lists (a
            file replaced by another Parquet file, say).
    """
    schema = pf.schema_arrow
    if len(schema) != len(data_file.field_ids):
        raise FormatError(
            f"{storage.url}/{data_file.path} is damaged: it has {len(schema)} columns, the "
            f"manifest lists {len(data_file.field_ids)}"
        )
    # (the ids stored in the file are not compared: a merge maps them, the manifest's win)
    return [schema.names[data_file.field_ids.index(fid)] for fid in field_ids]


def _plain(kind: pa.DataType) -> pa.DataType:
    return kind.storage_type if isinstance(kind, pa.ExtensionType) else kind


def stored_types(storage: Storage, data_file: DataFile) -> dict[int, pa.DataType]:
    """The Arrow storage type (extension types unwrapped) of each field's column in a data
    file, from its footer's stored Arrow schema (cached: data files are immutable)."""

    def load() -> list[pa.DataType]:
        schema = parquet_file(storage, data_file.path).schema_arrow
        return [_plain(f.type) for f in schema]

    # cached by path: the field ids are the manifest's, and differ between branches
    stored = _STORED_TYPES.get_or_load((storage.url, data_file.path), load)
    return {fid: stored[i] for i, fid in enumerate(data_file.field_ids) if i < len(stored)}


_STORED_TYPES: LRUCache[list[pa.DataType]] = LRUCache()


def check_stored_types(
    storage: Storage, data_file: DataFile, expected: dict[int, tuple[str, pa.DataType]]
) -> None:
    """Refuse to read columns whose stored type is not the manifest field's storage type.

    ``expected`` maps field id -> (column name, storage type). Bytes of one type are never
    reinterpreted as another (a cast would silently parse them).

    Raises:
        FormatError: A column is stored with another type, naming the file, the column and
            both types.
    """
    stored = stored_types(storage, data_file)
    for fid, (name, want) in expected.items():
        got = stored.get(fid)
        if got is not None and got != want:
            raise FormatError(
                f"{storage.url}/{data_file.path}: column '{name}' (field id {fid}) is stored "
                f"as {got}, but the manifest says its storage type is {want}; refusing to "
                "reinterpret its bytes"
            )


def read_data_file(
    storage: Storage,
    data_file: DataFile,
    field_ids: Sequence[int],
    start: int,
    stop: int,
) -> dict[int, pa.Array]:
    """Read rows ``[start, stop)`` of some columns of a data file, opening only their groups."""
    bounds = np.concatenate([[0], np.cumsum(data_file.row_groups)])
    last_group = len(data_file.row_groups) - 1
    first = int(np.searchsorted(bounds, start, side="right") - 1)
    last = int(np.searchsorted(bounds, max(stop - 1, start), side="right") - 1)
    first = max(0, min(first, last_group))
    last = max(first, min(last, last_group))
    groups = list(range(first, last + 1))
    columns = read_row_groups(storage, data_file, field_ids, groups)
    offset = start - int(bounds[first])
    return {fid: columns[fid].slice(offset, stop - start) for fid in field_ids}


#: Reads of fewer bytes (on storage) decode on the calling thread: handing a small read to
#: Arrow's thread pool costs more (about 0.2 ms) than decoding it.
THREADED_READ_BYTES = 1 << 20


def _threaded(data_file: DataFile, groups: int) -> bool:
    """Whether reading ``groups`` row groups of ``data_file`` is worth Arrow's threads."""
    share = groups / max(len(data_file.row_groups), 1)
    return data_file.size * share >= THREADED_READ_BYTES


def read_row_groups(
    storage: Storage, data_file: DataFile, field_ids: Sequence[int], groups: Sequence[int]
) -> dict[int, pa.Array]:
    """Read whole row groups of some columns, concatenated.

    Random access reads a group or two at a time; those decoded groups are kept in a cache
    with a byte budget (data files are immutable), so repeated reads near each other cost
    no I/O and no decoding. Bulk reads of more than two groups bypass the cache (sparse
    takes use it group by group, :func:`read_data_file_positions`); scans come through
    here group by group only when they fit it (:func:`fits_group_cache`).
    """
    if len(groups) <= CACHED_READ_MAX_GROUPS:
        found = _cached_groups(storage, data_file, field_ids, groups)
        out = {}
        for fid in field_ids:
            parts = [found[(g, fid)] for g in groups]
            out[fid] = parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
        return out
    pf = parquet_file(storage, data_file.path, data_file.size)
    columns = column_names(storage, pf, data_file, field_ids)
    verify = _VERIFIED.missing(storage, data_file.path, groups, columns)
    if not verify:
        pf = parquet_file(storage, data_file.path, data_file.size, verify=False)
    with damaged_file_errors(storage, data_file.path):
        table = pf.read_row_groups(
            list(groups), columns=columns, use_threads=_threaded(data_file, len(groups))
        )
    if verify:
        _VERIFIED.add(storage, data_file.path, groups, columns)
    return {fid: as_array(table.column(i)) for i, fid in enumerate(field_ids)}


def _cached_groups(
    storage: Storage, data_file: DataFile, field_ids: Sequence[int], groups: Sequence[int]
) -> dict[tuple[int, int], pa.Array]:
    """Each ``(group, field id)``'s decoded column, from the row-group cache or decoded
    (and then cached) group by group."""
    found: dict[tuple[int, int], pa.Array] = {}
    missing_fids: list[int] = []
    missing_groups: list[int] = []
    for g in groups:
        for fid in field_ids:
            hit = _GROUPS.get(_group_key(storage, data_file, g, fid))
            if hit is None:
                if fid not in missing_fids:
                    missing_fids.append(fid)
                if g not in missing_groups:
                    missing_groups.append(g)
            else:
                found[(g, fid)] = hit
    if not missing_fids:
        return found
    pf = parquet_file(storage, data_file.path, data_file.size)
    columns = column_names(storage, pf, data_file, missing_fids)
    verify = _VERIFIED.missing(storage, data_file.path, missing_groups, columns)
    if not verify:
        pf = parquet_file(storage, data_file.path, data_file.size, verify=False)
    for g in missing_groups:  # a group already decoded is not decoded again
        with damaged_file_errors(storage, data_file.path):
            table = pf.read_row_group(g, columns=columns, use_threads=_threaded(data_file, 1))
        if verify:
            _VERIFIED.add(storage, data_file.path, [g], columns)
        for i, fid in enumerate(missing_fids):
            array = as_array(table.column(i))
            found[(g, fid)] = array
            _GROUPS.put(_group_key(storage, data_file, g, fid), array, array.nbytes)
    return found


def decoded_size(storage: Storage, data_file: DataFile, field_ids: Sequence[int]) -> int:
    """About how many bytes some columns of a data file take decoded (from its footer;
    cached, since every scan start asks)."""

    def load() -> int:
        pf = parquet_file(storage, data_file.path, data_file.size)
        metadata = pf.metadata
        wanted = set(column_names(storage, pf, data_file, field_ids))
        total = 0
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                if column.path_in_schema.split(".")[0] in wanted:
                    total += column.total_uncompressed_size
        return total

    columns = tuple(data_file.field_ids.index(fid) for fid in field_ids)
    return _SIZES.get_or_load((storage.url, data_file.path, columns), load)


_SIZES: LRUCache[int] = LRUCache()


def fits_group_cache(nbytes: int) -> bool:
    """Whether a scan of ``nbytes`` decoded bytes may go through the row-group cache: a
    small table scanned epoch after epoch is then decoded once, while a large scan keeps
    streaming and leaves the cache to random access."""
    return nbytes <= _GROUPS.max_bytes // 4


def groups_cached(storage: Storage, data_file: DataFile, field_ids: Sequence[int]) -> bool:
    """Whether every row group of these columns of a data file is in the row-group cache."""
    return all(
        _group_key(storage, data_file, g, fid) in _GROUPS
        for g in range(len(data_file.row_groups))
        for fid in field_ids
    )


#: Bytes of a data file (as stored) a streaming read decodes in one step at most.
DECODE_STEP_BYTES = 32 << 20


def iter_data_file(
    storage: Storage, data_file: DataFile, field_ids: Sequence[int], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Stream some columns of a data file as record batches, in file order.

    Row groups small enough to hold decoded (lakefmt's own always are; see
    :data:`DECODE_STEP_BYTES`) are decoded whole, a few at a time on the decode pool, and
    come out as batches of a group each: Arrow decodes a group in one step about a quarter
    faster than in 10k-row steps, and two groups decode at once on two cores. Larger groups
    stream in batches of ``batch_size`` rows.
    """
    groups = data_file.row_groups
    fitting = DECODE_STEP_BYTES * sum(groups) // max(data_file.size, 1)
    pf = parquet_file(storage, data_file.path, data_file.size)
    columns = column_names(storage, pf, data_file, field_ids)
    if len(groups) > 1 and max(groups) <= fitting:
        yield from _iter_groups(storage, data_file, columns)
        return
    every = range(len(groups))
    verify = _VERIFIED.missing(storage, data_file.path, every, columns)
    if not verify:
        pf = parquet_file(storage, data_file.path, data_file.size, verify=False)
    with damaged_file_errors(storage, data_file.path):
        yield from pf.iter_batches(
            batch_size=max(batch_size, min(max(groups, default=1), fitting)),
            columns=columns,
            use_threads=_threaded(data_file, len(groups)),
        )
    if verify:
        _VERIFIED.add(storage, data_file.path, every, columns)


def _read_group(storage: Storage, path: str, columns: list[str], group: int) -> pa.Table:
    verify = _VERIFIED.missing(storage, path, [group], columns)
    with damaged_file_errors(storage, path):
        # a reader of its own: pyarrow readers are not safe to share between threads
        table = parquet_file(storage, path, verify=verify).read_row_group(group, columns=columns)
    if verify:
        _VERIFIED.add(storage, path, [group], columns)
    return table


def _iter_groups(
    storage: Storage, data_file: DataFile, columns: list[str]
) -> Iterator[pa.RecordBatch]:
    """Every row group of a data file, decoded on the decode pool a few groups ahead."""
    pool, workers = _decode_pool()
    ahead = workers + 1
    pending: collections.deque[Future[pa.Table]] = collections.deque()
    next_group = 0
    try:
        while pending or next_group < len(data_file.row_groups):
            while next_group < len(data_file.row_groups) and len(pending) < ahead:
                pending.append(
                    pool.submit(_read_group, storage, data_file.path, columns, next_group)
                )
                next_group += 1
            yield from pending.popleft().result().to_batches()
    finally:
        for future in pending:
            future.cancel()  # a consumer that stops early leaves nothing queued


def _decode_pool() -> tuple[ThreadPoolExecutor, int]:
    """The process's pool for decoding row groups and its size (``lakefmt._pool``:
    one thread per core, made anew after a fork)."""
    return shared_pool("decode"), pool_size("decode")


def iter_data_file_caching(
    storage: Storage, data_file: DataFile, field_ids: Sequence[int], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """:func:`iter_data_file`, also leaving each row group it streams decoded in the
    row-group cache (for scans that fit it: the next epoch then decodes nothing).

    A group is cached as soon as its last row has arrived, before the batch holding that
    row goes out (a consumer may stop pulling at any batch).
    """
    bounds = np.cumsum(data_file.row_groups)
    group, seen = 0, 0  # the group being assembled; rows of the file received so far
    parts: list[list[pa.Array]] = [[] for _ in field_ids]
    for batch in iter_data_file(storage, data_file, field_ids, batch_size):
        offset = 0
        while offset < batch.num_rows and group < len(bounds):
            take = min(batch.num_rows - offset, int(bounds[group]) - seen)
            for i in range(len(field_ids)):
                parts[i].append(batch.column(i).slice(offset, take))
            offset += take
            seen += take
            if seen == int(bounds[group]):
                for fid, chunks in zip(field_ids, parts, strict=True):
                    array = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
                    _GROUPS.put(_group_key(storage, data_file, group, fid), array, array.nbytes)
                parts = [[] for _ in field_ids]
                group += 1
        yield batch


def write_positions(storage: Storage, path: str, positions: np.ndarray) -> int:
    """Write a sorted ``position`` column (deletion files)."""
    table = pa.table({"position": pa.array(np.asarray(positions, dtype=np.int64))})

    def write(sink: pa.NativeFile) -> None:
        pq.write_table(table, sink, compression="zstd", store_schema=True, write_page_checksum=True)

    return storage.write_stream(path, write)


def _read_small_file(
    storage: Storage, path: str, columns: dict[str, str], size: int | None
) -> pa.Table:
    """Read a whole deletion or update file, checking its size, page CRCs and columns.

    ``columns`` maps each required column to what it must be: ``"int64"`` or ``"any"``;
    ``size`` is the size the manifest records (None for files written before it did).

    Raises:
        FormatError: The file is missing, damaged or has other columns.
    """
    with damaged_file_errors(storage, path):
        source = storage.open_input(path)
        _check_size(storage, path, source, size)
        table = pq.ParquetFile(
            source, pre_buffer=False, page_checksum_verification=VERIFY_PAGE_CHECKSUMS
        ).read()
    for name, kind in columns.items():
        if name not in table.column_names or (
            kind == "int64" and table.schema.field(name).type != pa.int64()
        ):
            raise FormatError(
                f"{storage.url}/{path} is damaged: it needs a column '{name}' of type {kind}, "
                f"it has {table.schema}"
            )
    return table


def _check_positions(storage: Storage, path: str, positions: np.ndarray) -> np.ndarray:
    """Refuse positions that are null, negative, unsorted or repeated."""
    if positions.dtype != np.int64 or (
        len(positions) and (positions[0] < 0 or not bool(np.all(np.diff(positions) > 0)))
    ):
        raise FormatError(
            f"{storage.url}/{path} is damaged: its positions are not sorted, unique, "
            "non-negative integers"
        )
    return positions


def read_positions(storage: Storage, path: str, size: int | None = None) -> np.ndarray:
    """Read (cached) the sorted positions of a deletion file (``size``: as recorded).

    Raises:
        FormatError: The file is missing or damaged.
    """

    def load() -> np.ndarray:
        table = _read_small_file(storage, path, {"position": "int64"}, size)
        column = table.column("position")
        if column.null_count:
            raise FormatError(f"{storage.url}/{path} is damaged: null positions")
        return _check_positions(storage, path, column.to_numpy())

    return _POSITIONS.get_or_load((storage.url, path), load)


def write_deletion_file(storage: Storage, fragment_id: int, positions: np.ndarray) -> DeletionFile:
    """Write the full set of deleted positions of a fragment."""
    path = layout.deletion_file_path(fragment_id)
    positions = np.unique(np.asarray(positions, dtype=np.int64))
    size = write_positions(storage, path, positions)
    return DeletionFile(path=path, count=len(positions), size=size)


def write_update_file(
    storage: Storage,
    fragment_id: int,
    field_id: int,
    positions: np.ndarray,
    values: pa.Array,
) -> UpdateFile:
    """Write new values for cells of one column of a fragment (positions sorted, unique)."""
    path = layout.update_file_path(fragment_id, field_id)
    table = pa.table({"position": pa.array(np.asarray(positions, dtype=np.int64)), "value": values})

    def write(sink: pa.NativeFile) -> None:
        pq.write_table(table, sink, store_schema=True, write_page_checksum=True)

    size = storage.write_stream(path, write)
    return UpdateFile(field_id=field_id, path=path, count=len(positions), size=size)


def read_update_file(
    storage: Storage, path: str, size: int | None = None
) -> tuple[np.ndarray, pa.Array]:
    """Read (cached) an update file: sorted positions and their values (``size``: as the
    manifest records it).

    Raises:
        FormatError: The file is missing or damaged.
    """

    def load() -> tuple[np.ndarray, pa.Array]:
        table = _read_small_file(storage, path, {"position": "int64", "value": "any"}, size)
        column = table.column("position")
        if column.null_count:
            raise FormatError(f"{storage.url}/{path} is damaged: null positions")
        positions = _check_positions(storage, path, column.to_numpy())
        return positions, as_array(table.column("value"))

    return _UPDATES.get_or_load((storage.url, path), load)


def _take_spans(arrays: list[pa.Array], spans: list[np.ndarray]) -> pa.Array:
    """``arrays[i][spans[i]]`` for every i, concatenated (numpy for plain numbers: an Arrow
    take per group costs more than the rows it takes)."""
    kind = arrays[0].type
    plain = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if plain and all(a.null_count == 0 for a in arrays):
        picked = [a.to_numpy(zero_copy_only=True)[s] for a, s in zip(arrays, spans, strict=True)]
        return pa.array(np.concatenate(picked), type=kind)
    parts = [a.take(pa.array(s, type=pa.int64())) for a, s in zip(arrays, spans, strict=True)]
    return pa.concat_arrays(parts)


def _sparse(
    storage: Storage, data_file: DataFile, field_ids: Sequence[int], rows: int, groups: int
) -> bool:
    """Whether a take of ``rows`` rows over ``groups`` row groups goes through the cache."""
    if rows > SPARSE_TAKE_ROWS or groups <= CACHED_READ_MAX_GROUPS:
        return False
    share = groups / max(len(data_file.row_groups), 1)  # decoded bytes, from the footer
    decoded = decoded_size(storage, data_file, field_ids) * share
    return decoded <= _GROUPS.max_bytes // SPARSE_TAKE_CACHE_SHARE


def read_data_file_positions(
    storage: Storage, data_file: DataFile, field_ids: Sequence[int], positions: np.ndarray
) -> dict[int, pa.Array]:
    """Read the rows at sorted ``positions`` of some columns, opening only their row groups."""
    if len(positions) == 0:
        return read_data_file(storage, data_file, field_ids, 0, 0)
    first, last = int(positions[0]), int(positions[-1])
    if last - first + 1 == len(positions):  # contiguous: a slice, no gather
        return read_data_file(storage, data_file, field_ids, first, last + 1)
    bounds = np.concatenate([[0], np.cumsum(data_file.row_groups)])
    group_of = np.searchsorted(bounds, positions, side="right") - 1
    groups = np.unique(group_of)
    sizes = np.asarray(data_file.row_groups)[groups]
    start_in_read = np.zeros(int(group_of.max()) + 1, dtype=np.int64)
    start_in_read[groups] = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    local = positions - bounds[group_of] + start_in_read[group_of]
    picked = [int(g) for g in groups]
    if _sparse(storage, data_file, field_ids, len(positions), len(picked)):
        # each group's rows taken from its cached column: nothing large is concatenated
        found = _cached_groups(storage, data_file, field_ids, picked)
        cuts = [*np.searchsorted(group_of, groups, side="left").tolist(), len(positions)]
        within = positions - bounds[group_of]
        out = {}
        for fid in field_ids:
            arrays = [found[(g, fid)] for g in picked]
            spans = [within[cuts[i] : cuts[i + 1]] for i in range(len(picked))]
            out[fid] = _take_spans(arrays, spans)
        return out
    columns = read_row_groups(storage, data_file, field_ids, picked)
    indices = pa.array(local, type=pa.int64())
    return {fid: columns[fid].take(indices) for fid in field_ids}
