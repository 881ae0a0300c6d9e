"""lakefmt's private DuckDB databases: sandboxed, one per set of readable dataset roots.

Every query runs on a cursor of an in-memory DuckDB database that lakefmt owns and locks
down once, right after creating it:

* ``allowed_directories`` lists only the ``data/``, ``_deletions/`` and ``_updates/``
  directories of the local datasets the database serves (plus a private spill directory);
* ``enable_external_access = false``: nothing else on disk or network can be read or
  written, extensions cannot be installed or loaded;
* ``python_enable_replacements = false``: SQL cannot reach Python variables of the caller;
* ``lock_configuration = true``: no ``SET`` can undo any of this.

DuckDB refuses to change ``allowed_directories`` once external access is off, so a database
cannot serve a dataset it was not created for: databases are cached per set of dataset roots
(a few at most, least recently used dropped). ``mem://`` and object-store datasets need no
directory (their data is registered as Arrow tables), so they share one database. A forked
child process creates its own databases (DuckDB's threads do not survive ``fork``).

Each thread keeps one cursor per database; the Arrow tables a query registers on it are
unregistered when the query ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from lakefmt._duckdb import SANDBOX_CONFIG
from lakefmt.tql import udfs
from lakefmt.tql.columns import duck_type, quote_ident, quote_str
from lakefmt.types import as_array

#: Databases kept per process (each serves a set of dataset roots).
MAX_DATABASES = 8

_lock = threading.Lock()
_databases: OrderedDict[tuple[str, ...], Database] = OrderedDict()
_pid = os.getpid()
_spill_dir: str | None = None
#: Databases of a parent process, kept referenced so their destructors never run in a child.
_abandoned: list[Any] = []


def _private_spill_dir() -> str:
    global _spill_dir
    if _spill_dir is None or not os.path.isdir(_spill_dir):
        _spill_dir = tempfile.mkdtemp(prefix="lakefmt-duckdb-")
        atexit.register(shutil.rmtree, _spill_dir, True)
    return _spill_dir


class Database:
    """One sandboxed in-memory DuckDB database.

    Args:
        directories: The only directories its queries may read (dataset data folders).
    """

    def __init__(self, directories: Sequence[str]) -> None:
        self.directories = tuple(directories)
        con = duckdb.connect(":memory:", config=dict(SANDBOX_CONFIG))
        udfs.register(con)
        spill = _private_spill_dir()
        con.execute(f"SET temp_directory = {quote_str(spill)}")
        allowed = [*self.directories, spill.rstrip("/") + "/"]
        con.execute("SET allowed_directories = [" + ", ".join(quote_str(d) for d in allowed) + "]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        self._con = con
        self._local = threading.local()

    def cursor(self) -> Any:
        """This thread's connection to the database (created on first use, then kept).

        DuckDB connections are not safe to share between threads; opening one per query
        costs milliseconds, so each thread keeps its own.
        """
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    def _discard_cursor(self) -> None:
        cur = getattr(self._local, "cursor", None)
        self._local.cursor = None
        if cur is not None:
            try:
                cur.close()
            except duckdb.Error:
                pass

    def run(
        self, sql: str, tables: Sequence[tuple[str, pa.Table]], *, explain: bool = False
    ) -> pa.Table | str:
        """Run one statement with Arrow tables registered on this thread's cursor.

        The tables are unregistered afterwards, so nothing of one query is visible to the
        next.

        Returns:
            The result as an Arrow table, or with ``explain`` the physical plan as text.
        """
        cur = self.cursor()
        registered: list[str] = []
        ok = False
        try:
            for name, table in tables:
                cur.register(name, table)
                registered.append(name)
            if explain:
                rows = cur.execute("EXPLAIN " + sql).fetchall()
                result: pa.Table | str = "\n".join(str(r[-1]) for r in rows)
            else:
                result = cur.sql(sql).to_arrow_table()
            ok = True
            return result
        finally:
            try:
                for name in registered:
                    cur.unregister(name)
            except duckdb.Error:
                ok = False
            if not ok:  # a failed statement may leave the connection in any state
                self._discard_cursor()

    def load_column(self, path: str, column: str, arrow_type: pa.DataType) -> pa.Array:
        """Read a whole column of a local Parquet file (cast to ``arrow_type``'s DuckDB type)."""
        sql = (
            f"SELECT CAST({quote_ident(column)} AS {duck_type(arrow_type)}) AS c "
            f"FROM read_parquet({quote_str(path)})"
        )
        table = self.run(sql, ())
        assert isinstance(table, pa.Table)
        return as_array(table.column(0))


def database(directories: Sequence[str]) -> Database:
    """The process's database serving exactly these dataset directories (created once)."""
    global _pid
    key = tuple(sorted(set(directories)))
    with _lock:
        if os.getpid() != _pid:  # forked: the parent's databases are unusable here
            _abandoned.extend(_databases.values())
            _databases.clear()
            _pid = os.getpid()
        found = _databases.get(key)
        if found is not None:
            _databases.move_to_end(key)
            return found
        db = Database(key)
        _databases[key] = db
        while len(_databases) > MAX_DATABASES:
            _databases.popitem(last=False)
        return db
