"""One dataset, many engines: TQL, then DuckDB, pandas and polars on the same data.

1. Query with TQL (``ds.query``).
2. Hand the rows to DuckDB, pandas and polars through ``ds.to_arrow()`` (zero copy).
3. Read the dataset with plain ``duckdb.sql`` straight from its Parquet files, following the
   manifest as ``spec/format.md`` section 8 describes -- no lakefmt code involved. The dataset
   has a deletion, a cell update and a column added later, so every rule of the spec is used.

Run with ``python examples/query_interop.py [PATH]`` (default: a fresh ``tmp://`` dataset; part 3
needs a dataset on local disk).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import duckdb
import numpy as np

import lakefmt
from lakefmt import types

CITIES = ["Oslo", "Lima", "Pune", "Kyiv", "Cork"]
PRODUCTS = ["tea", "bread", "kite", "clock"]


def build(url: str) -> lakefmt.Dataset:
    """Two fragments of sales, then a deletion, an update and a new column with a default."""
    rng = np.random.default_rng(7)
    ds = lakefmt.create(
        url,
        schema={
            "id": types.Int64(),
            "city": types.Text(),
            "product": types.Text(),
            "amount": types.Float64(),
        },
    )
    for start in (0, 300):
        n = 300
        ds.append(
            {
                "id": np.arange(start, start + n),
                "city": [CITIES[i] for i in rng.integers(0, len(CITIES), n)],
                "product": [PRODUCTS[i] for i in rng.integers(0, len(PRODUCTS), n)],
                "amount": np.round(rng.uniform(1, 100, n), 2),
            }
        )
        ds.flush()  # one fragment per append
    ds.delete([5, 6, 7])  # a deletion file
    ds["amount"][0] = 1000.0  # an update file
    ds.add_column("paid", types.Bool(), default_value=True)  # in no data file yet
    ds.commit("sales")
    return ds


def _literal(value: object) -> str:
    """A SQL literal for a field's JSON default (scalars only in this example)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def read_with_plain_duckdb(root: Path) -> tuple[duckdb.DuckDBPyRelation, dict]:
    """Read the latest version from the files, by the spec (section 8.1), with DuckDB only.

    Returns the relation and the manifest it follows.
    """
    # 8.2: the head of main is the highest-numbered manifest in _versions/.
    names = [p for p in (root / "_versions").iterdir() if re.fullmatch(r"\d{20}\.json", p.name)]
    manifest = json.loads(max(names).read_text())
    fields = manifest["fields"]

    def path(rel: str) -> str:
        return str(root / rel).replace("'", "''")

    parts = []
    for order, fragment in enumerate(manifest["fragments"]):
        # Columns are matched to fields by position in each file (DataFile.field_ids).
        sources = []
        for j, data_file in enumerate(fragment["files"]):
            cols = ", ".join(f"#{i + 1} AS c{fid}" for i, fid in enumerate(data_file["field_ids"]))
            sources.append(
                f"(SELECT file_row_number AS pos, {cols} "
                f"FROM read_parquet('{path(data_file['path'])}', file_row_number = true)) f{j}"
            )
        joins = sources[0] + "".join(f" JOIN {s} USING (pos)" for s in sources[1:])
        updates = []
        select = []
        for field in fields:
            fid = field["id"]
            holders = [j for j, f in enumerate(fragment["files"]) if fid in f["field_ids"]]
            if holders:  # the last file holding the field wins
                expr = f"f{holders[-1]}.c{fid}"
            elif field["has_default"]:
                expr = _literal(field["default"])
            else:
                expr = "NULL"
            for k, update in enumerate(fragment["updates"]):  # in array order
                if update["field_id"] == fid:
                    alias = f"u{fid}_{k}"
                    updates.append(
                        f" LEFT JOIN read_parquet('{path(update['path'])}') {alias} "
                        f"ON {alias}.position = pos"
                    )
                    expr = f"CASE WHEN {alias}.position IS NULL THEN {expr} ELSE {alias}.value END"
            select.append(f'{expr} AS "{field["name"]}"')
        where = ""
        if fragment["deletion"]:
            where = (
                f" WHERE pos NOT IN (SELECT position FROM "
                f"read_parquet('{path(fragment['deletion']['path'])}'))"
            )
        parts.append(
            f"SELECT {order} AS frag, pos, {', '.join(select)} FROM {joins}"
            f"{''.join(updates)}{where}"
        )
    columns = ", ".join(f'"{f["name"]}"' for f in fields)
    query = f"SELECT {columns} FROM ({' UNION ALL '.join(parts)}) ORDER BY frag, pos"
    return duckdb.sql(query), manifest


def main(url: str = "tmp://") -> None:
    """Build the dataset and read it five ways."""
    import pandas as pd
    import polars as pl

    ds = build(url)
    print(f"{len(ds)} rows, columns {list(ds.schema)}")
    assert len(ds) == 597

    # 1. TQL
    tql = ds.query(
        "SELECT city, SUM(amount) AS total, COUNT(*) AS n "
        "WHERE product = 'tea' GROUP BY city ORDER BY total DESC"
    )
    by_tql = {c: round(float(t), 2) for c, t in zip(tql["city"][:], tql["total"][:], strict=True)}
    print(f"TQL: tea sales by city {by_tql}")

    # 2. Arrow -> DuckDB, pandas, polars
    sales = ds.to_arrow()  # DuckDB finds Python variables holding Arrow tables by name
    rel = duckdb.sql(
        "SELECT city, SUM(amount) AS total FROM sales WHERE product = 'tea' "
        "GROUP BY city ORDER BY total DESC"
    )
    by_duckdb = {c: round(t, 2) for c, t in rel.fetchall()}
    df = ds.to_pandas()
    tea = df[df["product"] == "tea"].groupby("city")["amount"].sum()
    by_pandas = {c: round(float(t), 2) for c, t in tea.items()}
    pdf = ds.to_polars()
    by_polars = {
        row["city"]: round(row["amount"], 2)
        for row in pdf.filter(pl.col("product") == "tea")
        .group_by("city")
        .agg(pl.col("amount").sum())
        .to_dicts()
    }
    print(
        f"DuckDB {by_duckdb == by_tql}, pandas {by_pandas == by_tql}, "
        f"polars {by_polars == by_tql}: same totals as TQL"
    )
    assert by_tql == by_duckdb == by_pandas == by_polars
    assert list(by_tql) == list(by_duckdb)  # the same order (by total, descending)
    assert isinstance(df, pd.DataFrame) and df["paid"].all()

    # 3. Plain DuckDB over the Parquet files the manifest lists
    root = Path(ds.url)
    if not root.is_dir():
        print(f"{ds.url} is not on local disk; skipping the plain-file read")
        return
    relation, manifest = read_with_plain_duckdb(root)
    fragments = manifest["fragments"]
    assert len(fragments) == 2 and fragments[0]["deletion"] and fragments[0]["updates"]
    paid = next(f["id"] for f in manifest["fields"] if f["name"] == "paid")
    assert not any(paid in f["field_ids"] for frag in fragments for f in frag["files"])
    plain = relation.to_arrow_table()
    print(
        f"plain DuckDB over the {len(fragments)} fragments of manifest v{manifest['version']}: "
        f"{plain.num_rows} rows, amount[0] = {plain['amount'][0]}, "
        f"ids 5-7 deleted: {5 not in plain['id'].to_pylist()}"
    )
    expected = sales.to_pandas()
    got = plain.to_pandas()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert plain["amount"][0].as_py() == 1000.0 and plain.num_rows == len(ds)


if __name__ == "__main__":
    main(*sys.argv[1:])
