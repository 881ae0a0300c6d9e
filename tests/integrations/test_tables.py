"""Parquet, CSV, Arrow and pandas in and out: round trips, inferred and overridden types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import lakefmt
from lakefmt import types
from lakefmt.errors import SchemaError, TypeMismatchError


def _mixed_table() -> pa.Table:
    """Every scalar type lakefmt infers, each column with a null somewhere."""
    return pa.table(
        {
            "i8": pa.array([1, None, -128, 127], pa.int8()),
            "i16": pa.array([1, 2, None, -300], pa.int16()),
            "i32": pa.array([None, 2, 3, 2**31 - 1], pa.int32()),
            "i64": pa.array([1, None, 3, -(2**63)], pa.int64()),
            "u8": pa.array([1, 2, None, 255], pa.uint8()),
            "u16": pa.array([1, None, 2, 65535], pa.uint16()),
            "u32": pa.array([None, 1, 2, 2**32 - 1], pa.uint32()),
            "u64": pa.array([2**63, None, 1, 2**64 - 1], pa.uint64()),
            "f16": pa.array(np.array([1.5, 2, 3, -0.25], dtype=np.float16)),
            "f32": pa.array([1.5, None, 2.5, -1e30], pa.float32()),
            "f64": pa.array([None, 1e300, -0.0, 3.25]),
            "flag": pa.array([True, None, False, True]),
            "text": pa.array(["a", None, "ünïcödé", ""]),
            "blob": pa.array([b"\x00\xff", None, b"", b"abc"], pa.binary()),
        }
    )


@pytest.mark.parametrize("url_kind", ["mem", "file"])
def test_parquet_round_trip_is_equal(tmp_path: Path, url_kind: str) -> None:
    table = _mixed_table()
    src = tmp_path / "in.parquet"
    pq.write_table(table, src, row_group_size=3)  # several row groups
    dst = "mem://roundtrip-" + tmp_path.name if url_kind == "mem" else str(tmp_path / "ds")
    ds = lakefmt.from_parquet(src, dst, progress=False)
    assert len(ds) == 4 and [v.message for v in ds.history][-1] == "import"
    assert ds.schema["u64"] == types.UInt64() and ds.schema["text"] == types.Text()
    assert ds.schema["blob"] == types.Bytes() and ds.schema["f16"] == types.Float16()

    out = tmp_path / "out.parquet"
    assert lakefmt.to_parquet(ds, out, progress=False) == [str(out)]
    back = pq.read_table(out)
    assert back.schema.equals(table.schema), (back.schema, table.schema)
    assert back.equals(table)
    # and the dataset itself reads back equal, reopened from storage
    assert lakefmt.open_read_only(ds.url).to_arrow().equals(table)


def test_parquet_export_in_many_files(tmp_path: Path) -> None:
    table = pa.table(
        {"n": pa.array(range(10_000), pa.int64()), "s": [str(i) for i in range(10_000)]}
    )
    ds = lakefmt.from_arrow(table, progress=False)
    files = lakefmt.to_parquet(ds, tmp_path / "parts", max_rows_per_file=3_000, progress=False)
    assert [Path(f).name for f in files] == [f"part-{i:05d}.parquet" for i in range(4)]
    assert [pq.read_metadata(f).num_rows for f in files] == [3000, 3000, 3000, 1000]
    assert pa.concat_tables(pq.read_table(f) for f in files).equals(table)
    only = lakefmt.to_parquet(ds, tmp_path / "cols.parquet", columns=["s"], progress=False)
    assert pq.read_table(only[0]).column_names == ["s"]


def test_parquet_export_of_empty_dataset_and_views(tmp_path: Path) -> None:
    ds = lakefmt.create("mem://empty-export-" + tmp_path.name, schema={"a": "int64", "b": "text"})
    out = tmp_path / "empty.parquet"
    lakefmt.to_parquet(ds, out, progress=False)
    assert pq.read_table(out).num_rows == 0 and pq.read_schema(out).names == ["a", "b"]
    ds.append({"a": np.arange(10), "b": [str(i) for i in range(10)]})
    lakefmt.to_parquet(ds[2:5], tmp_path / "slice.parquet", progress=False)
    assert pq.read_table(tmp_path / "slice.parquet")["a"].to_pylist() == [2, 3, 4]


def test_large_string_comes_back_as_string(tmp_path: Path) -> None:
    table = pa.table({"s": pa.array(["x", None, "z"], pa.large_string())})
    ds = lakefmt.from_arrow(table, progress=False)
    assert ds.schema["s"] == types.Text()
    lakefmt.to_parquet(ds, tmp_path / "o.parquet", progress=False)
    assert pq.read_table(tmp_path / "o.parquet")["s"].to_pylist() == ["x", None, "z"]


def test_csv_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "id,name,price,in_stock\n"
        "1,apple,0.5,true\n"
        '2,"pear, green",1.25,false\n'
        "3,,2,\n"
        '4,"say ""hi""",-3.75,true\n'
    )
    ds = lakefmt.from_csv(src, str(tmp_path / "ds"), progress=False)
    assert len(ds) == 4
    assert ds.schema["id"] == types.Int64() and ds.schema["price"] == types.Float64()
    assert ds.schema["in_stock"] == types.Bool()
    assert ds["name"][:] == ["apple", "pear, green", "", 'say "hi"']
    out = tmp_path / "out.csv"
    lakefmt.to_csv(ds, out, progress=False)
    assert pacsv.read_csv(out).equals(pacsv.read_csv(src))


def test_csv_export_of_binary_and_nested_columns(tmp_path: Path) -> None:
    ds = lakefmt.from_arrow(
        pa.table({"b": pa.array([b"\x00\x01", None]), "n": [1, 2]}), progress=False
    )
    lakefmt.to_csv(ds, tmp_path / "o.csv", progress=False)
    nullable = pacsv.ConvertOptions(strings_can_be_null=True)
    back = pacsv.read_csv(tmp_path / "o.csv", convert_options=nullable)
    assert back["b"].to_pylist() == ["AAE=", None]  # base64; null stays an empty field
    empty = lakefmt.create("mem://empty-csv-" + tmp_path.name, schema={"a": "int64", "b": "text"})
    lakefmt.to_csv(empty, tmp_path / "e.csv", progress=False)
    assert (tmp_path / "e.csv").read_text() == '"a","b"\n'


def test_to_csv_into_an_open_file(tmp_path: Path) -> None:
    import io

    ds = lakefmt.from_arrow(pa.table({"a": [1, 2], "s": ["x", "y"]}), progress=False)
    sink = io.BytesIO()
    lakefmt.to_csv(ds, sink, progress=False)
    assert not sink.closed
    assert sink.getvalue().decode().splitlines() == ['"a","s"', '1,"x"', '2,"y"']


def test_from_pandas_and_arrow_streams() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", None]}, index=[10, 20, 30])
    ds = lakefmt.from_pandas(df, progress=False)
    assert ds.schema.to_dict() == {"x": types.Int64(), "y": types.Text()}  # the index is dropped
    assert ds["y"][:] == ["a", "b", None]

    table = pa.table({"k": pa.array(range(100), pa.int32())})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
    assert lakefmt.from_arrow(reader, progress=False)["k"][:].tolist() == list(range(100))

    pl = pytest.importorskip("polars")  # anything with __arrow_c_stream__
    from_polars = lakefmt.from_arrow(pl.DataFrame({"q": [1.5, 2.5]}), progress=False)
    assert from_polars["q"][:].tolist() == [1.5, 2.5]


def test_schema_overrides(tmp_path: Path) -> None:
    table = pa.table(
        {"a": pa.array([1, 2, 3], pa.int64()), "s": ["x", "y", "z"], "f": [0.5, 1.5, 2.5]}
    )
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    ds = lakefmt.from_parquet(
        src,
        schema={"a": "int32", "f": types.Float32(), "s": types.Text(index_type="inverted")},
        progress=False,
    )
    assert ds.schema["a"] == types.Int32() and ds.schema["f"] == types.Float32()
    assert ds.schema["s"] == types.Text(index_type="inverted")
    arrow = ds.to_arrow()
    assert (
        arrow.schema.field("a").type == pa.int32() and arrow.schema.field("f").type == pa.float32()
    )
    assert arrow["a"].to_pylist() == [1, 2, 3]

    csv_src = tmp_path / "in.csv"
    csv_src.write_text("code,n\n001,1\n002,2\n")
    assert lakefmt.from_csv(csv_src, progress=False)["code"][:].tolist() == [1, 2]  # inferred int
    # overriding the type does not change how pyarrow parses the CSV ...
    with pytest.raises(TypeMismatchError):
        lakefmt.from_csv(csv_src, schema={"code": "text"}, progress=False)
    with pytest.raises(SchemaError, match="zz"):
        lakefmt.from_parquet(src, schema={"zz": "int8"}, progress=False)


def test_uninferable_type_asks_for_an_override() -> None:
    table = pa.table({"when": pa.array([1, 2], pa.timestamp("s"))})
    with pytest.raises(SchemaError, match=r"when.*schema="):
        lakefmt.from_arrow(table, progress=False)


def test_failed_import_leaves_no_dataset(tmp_path: Path) -> None:
    table = pa.table({"s": ["1", "2", "not a number"]})
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    dst = tmp_path / "ds"
    with pytest.raises(TypeMismatchError):
        lakefmt.from_parquet(src, str(dst), schema={"s": "int64"}, progress=False)
    assert not lakefmt.exists(str(dst))
    assert not dst.exists() or not any(dst.rglob("*.parquet"))
    # the destination is free again for a correct import
    assert len(lakefmt.from_parquet(src, str(dst), progress=False)) == 3


def test_import_into_existing_dataset_fails(tmp_path: Path) -> None:
    dst = str(tmp_path / "ds")
    lakefmt.from_arrow(pa.table({"a": [1]}), dst, progress=False)
    with pytest.raises(lakefmt.DatasetExistsError):
        lakefmt.from_arrow(pa.table({"a": [2]}), dst, progress=False)
    assert lakefmt.open_read_only(dst)["a"][:].tolist() == [1]  # untouched


def test_nested_types_are_inferred_and_round_trip(tmp_path: Path) -> None:
    table = pa.table(
        {
            "emb": pa.array([[1.0, 2.0], [3.0, 4.0], None], pa.list_(pa.float32(), 2)),
            "triple": pa.array([[1, 2, 3], [4, 5, 6], None], pa.list_(pa.int16(), 3)),
            "ragged": pa.array([[1, 2], [], None], pa.list_(pa.int64())),
            "matrix": pa.array([[[1.5]], [[2.5, 3.5], []], None], pa.list_(pa.list_(pa.float64()))),
            "words": pa.array([["a"], [], None], pa.list_(pa.string())),
            "rec": pa.array(
                [{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}],
                pa.struct([("a", pa.int64()), ("b", pa.string())]),
            ),
        }
    )
    src = tmp_path / "nested.parquet"
    pq.write_table(table, src)
    ds = lakefmt.from_parquet(src, progress=False)
    assert ds.schema.to_dict() == {
        "emb": types.Embedding(2, "float32"),
        "triple": types.Array("int16", shape=(3,)),
        "ragged": types.Array("int64", dimensions=1),
        "matrix": types.Array("float64", dimensions=2),
        "words": types.Sequence(types.Text()),
        "rec": types.Struct({"a": types.Int64(), "b": types.Text()}),
    }
    out = tmp_path / "out.parquet"
    lakefmt.to_parquet(ds, out, progress=False)
    back = pq.read_table(out)
    for name in table.column_names:
        column = back[name].combine_chunks()
        assert isinstance(column.type, pa.ExtensionType), name  # lakefmt types survive
        assert column.storage.to_pylist() == table[name].to_pylist(), name
    # and a re-import of the export keeps the lakefmt types exactly
    assert lakefmt.from_parquet(out, progress=False).schema == ds.schema
