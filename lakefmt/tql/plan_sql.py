"""One DuckDB statement that reads a version from its files (``spec/format.md`` section 15).

The statement needs nothing of lakefmt: plain ``read_parquet`` calls over the files a
:class:`~lakefmt.format.read_plan.ReadPlan` lists, so it runs in any DuckDB connection (a
user's own, for joins with their tables or ``COPY ... TO``), and DuckDB pushes projections
and filters into the Parquet scans. Per fragment: the column groups side by side
(``POSITIONAL JOIN``, row ``i`` of each file is the same row), the deletion file as an
``ANTI JOIN`` on the position, each update file as a ``LEFT JOIN`` whose value wins, columns
no file holds as their default; fragments are concatenated with ``UNION ALL``.
"""

from __future__ import annotations

import pyarrow as pa

from lakefmt.format.read_plan import PlanFileColumn, PlanFragment, ReadPlan
from lakefmt.format.snapshot import Snapshot
from lakefmt.tql.columns import duck_type, quote_ident, quote_str, sql_literal

__all__ = ["version_sql"]

_POS = "__lf_pos"
_FRAG = "__lf_frag"


def version_sql(snap: Snapshot, plan: ReadPlan, *, ordered: bool = True) -> str:
    """The DuckDB ``SELECT`` of every live row of the plan's version, its columns named and
    typed as the version's schema (media columns as their stored bytes).

    ``ordered``: end with ``ORDER BY`` fragment and position, so rows come in the dataset's
    order (row ``i`` is ``ds[i]``); without it DuckDB may return them in any order, which
    saves a sort over large versions.
    """
    fields = {f.id: f for f in snap.fields}
    targets = {
        c.field_id: duck_type(snap.type_of(fields[c.field_id]).storage_type) for c in plan.columns
    }
    defaults: dict[int, str] = {}
    for c in plan.columns:
        cell = snap.default_cell(fields[c.field_id])
        if isinstance(cell, pa.ExtensionArray):
            cell = cell.storage
        value = None if cell is None else cell.to_pylist()[0]
        defaults[c.field_id] = sql_literal(value, snap.type_of(fields[c.field_id]).storage_type)
    names = {c.field_id: quote_ident(c.name) for c in plan.columns}
    order = [c.field_id for c in plan.columns]
    parts = [
        _fragment_sql(k, fragment, order, names, targets, defaults, ordered)
        for k, fragment in enumerate(plan.fragments)
        if fragment.live_rows
    ]
    if not parts:
        cols = ", ".join(f"CAST(NULL AS {targets[fid]}) AS {names[fid]}" for fid in order)
        return f"SELECT {cols or '1 AS __lf_none'} WHERE false"
    union = "\nUNION ALL\n".join(parts)
    if not ordered:
        return union
    return f"SELECT * EXCLUDE ({_FRAG}, {_POS}) FROM (\n{union}\n) ORDER BY {_FRAG}, {_POS}"


def _fragment_sql(
    k: int,
    fragment: PlanFragment,
    order: list[int],
    names: dict[int, str],
    targets: dict[int, str],
    defaults: dict[int, str],
    ordered: bool,
) -> str:
    column_of: dict[int, str] = {}
    groups: list[str] = []
    for g, data_file in enumerate(fragment.files):
        cols = [f"{_scanned(c)} AS c{c.field_id}" for c in data_file.columns]
        if g == 0:
            cols.insert(0, f"file_row_number AS {_POS}")
            source = f"read_parquet({quote_str(data_file.url)}, file_row_number = true)"
        else:
            source = f"read_parquet({quote_str(data_file.url)})"
        groups.append(f"(SELECT {', '.join(cols)} FROM {source}) AS g{g}")
        column_of.update({c.field_id: f"g{g}.c{c.field_id}" for c in data_file.columns})
    if groups:
        from_sql = groups[0] + "".join(f" POSITIONAL JOIN {g}" for g in groups[1:])
        position = f"g0.{_POS}"
    else:  # every column reads its default: only the row count matters
        from_sql = f"range({fragment.rows}) AS g0({_POS})"
        position = f"g0.{_POS}"
    value_of = {fid: column_of.get(fid, defaults[fid]) for fid in order}
    joins = []
    for u, update in enumerate(fragment.updates):  # in order: a later file wins
        joins.append(
            f" LEFT JOIN read_parquet({quote_str(update.url)}) AS u{u} "
            f"ON u{u}.position = {position}"
        )
        base = value_of[update.field_id]
        value_of[update.field_id] = (
            f"CASE WHEN u{u}.position IS NULL THEN {base} ELSE u{u}.value END"
        )
    if fragment.deletion is not None:
        joins.append(
            f" ANTI JOIN read_parquet({quote_str(fragment.deletion.url)}) AS d "
            f"ON d.position = {position}"
        )
    select = [f"CAST({value_of[fid]} AS {targets[fid]}) AS {names[fid]}" for fid in order]
    if ordered:
        select += [f"{k} AS {_FRAG}", f"{position} AS {_POS}"]
    return f"SELECT {', '.join(select)} FROM {from_sql}{''.join(joins)}"


def _scanned(column: PlanFileColumn) -> str:
    """A file's column, through a NaN branch where its Parquet statistics may leave NaN out:
    the branch's statistics reach NaN, so DuckDB tests every value (spec 6.2.5.1)."""
    q = quote_ident(column.parquet_column)
    if column.nan_safe_statistics:
        return q
    return f"CASE WHEN isnan({q}) THEN CAST('NaN' AS DOUBLE) ELSE {q} END"
