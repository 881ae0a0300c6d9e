"""Reading and writing the files of index segments (``_indexes/<uuid>/<name>``).

Index files are immutable and listed by the manifest with their size and SHA-256, so a
reader can tell a damaged or foreign file from the one the writer made; what a file holds
is its index engine's business (:mod:`lakefmt.indexes`). Loaded files are kept in a
byte-bounded cache: names are never reused, so a cached file is never stale.
"""

from __future__ import annotations

import hashlib

from lakefmt.errors import FormatError
from lakefmt.format import layout
from lakefmt.format.cache import ByteBudgetCache
from lakefmt.format.manifest import IndexFile
from lakefmt.storage import Storage

#: Budget of loaded index files (their bytes; engines keep their own decoded forms).
INDEX_FILE_CACHE: ByteBudgetCache[bytes] = ByteBudgetCache(512 << 20, max_entry_share=1.0)


def write_index_file(storage: Storage, folder: str, name: str, role: str, data: bytes) -> IndexFile:
    """Write one file of a segment into ``folder`` (from :func:`layout.index_segment_dir`)."""
    path = f"{folder}/{name}"
    storage.write(path, data)
    return IndexFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(), role=role)


def new_segment_folder() -> str:
    """A fresh, unique folder for one segment's files."""
    return layout.index_segment_dir()


def _checked_bytes(storage: Storage, index_file: IndexFile) -> bytes:
    """The file's bytes read from storage now, checked against the manifest."""
    location = f"{storage.url}/{index_file.path}"
    try:
        data = storage.read(index_file.path)
    except FileNotFoundError:
        raise FormatError(f"{location}: index file is missing") from None
    if len(data) != index_file.size:
        raise FormatError(
            f"{location}: index file has {len(data)} bytes, the manifest says {index_file.size}"
        )
    if hashlib.sha256(data).hexdigest() != index_file.sha256:
        raise FormatError(f"{location}: index file checksum mismatch; the file is damaged")
    return data


def read_index_file(storage: Storage, index_file: IndexFile) -> bytes:
    """The bytes of an index file, checked against the manifest's size and digest.

    Raises:
        FormatError: The file is missing, of another size, or its digest differs.
    """
    return INDEX_FILE_CACHE.get_or_load(
        (storage.url, index_file.path), lambda: _checked_bytes(storage, index_file), len
    )


def index_file_problem(storage: Storage, index_file: IndexFile) -> str | None:
    """What is wrong with an index file (for ``verify``), or None.

    Reads the file from storage even when it is cached: a file damaged or deleted after
    it was loaded is a problem of the dataset all the same.
    """
    try:
        _checked_bytes(storage, index_file)
    except FormatError as exc:
        return str(exc)
    except OSError as exc:
        return f"{index_file.path}: {exc}"
    return None
