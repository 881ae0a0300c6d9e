"""Input validation of issue 14 (defects 9 and 17): class labels, float ranges, surrogates,
and class names given as column metadata."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import lakefmt
from lakefmt import types
from lakefmt.errors import SchemaError, TypeMismatchError


def _url() -> str:
    return f"mem://validation-{uuid.uuid4().hex}"


def _refused(schema: dict[str, Any], data: dict[str, Any], match: str) -> str:
    """Append ``data``; expect TypeMismatchError matching ``match``; nothing is stored."""
    ds = lakefmt.create(_url(), schema=schema)
    with pytest.raises(TypeMismatchError, match=match) as info:
        ds.append(data)
    ds.flush()
    assert len(ds) == 0
    return str(info.value)


# -- ClassLabel ranges --------------------------------------------------------------------------

THREE = ["cat", "dog", "bird"]


@pytest.mark.parametrize(
    "values,row,label",
    [
        ([0, 7], 1, "7"),
        ([-1], 0, "-1"),
        ([np.int64(3)], 0, "3"),
        ([np.uint64(2**64 - 1)], 0, "18446744073709551615"),
        (np.array([0, 1, 9]), 2, "9"),
        (pa.array([0, 5], pa.int16()), 1, "5"),
        (pa.array([None, 2, 3], pa.int16()), 2, "3"),
    ],
)
def test_class_label_out_of_its_classes(values: Any, row: int, label: str) -> None:
    """Defect 9: a ClassLabel with 3 names accepted label 7 (and -1, and 2**64 - 1)."""
    message = _refused(
        {"label": types.ClassLabel("int16", class_names=THREE)},
        {"label": values},
        rf"3 classes \(0\.\.2\), got {label} at row {row}",
    )
    assert "'label'" in message


def test_class_label_uint64_max_without_names() -> None:
    """Defect 17: ``np.uint64(2**64 - 1)`` raised a bare OverflowError naming no column."""
    _refused(
        {"free": types.ClassLabel("int32")},
        {"free": [1, np.uint64(2**64 - 1)]},
        r"column 'free' expects int32 labels .*got 18446744073709551615 at row 1",
    )
    _refused(
        {"free": types.ClassLabel("int32")},
        {"free": np.array([1, 2**64 - 1], dtype=np.uint64)},
        r"column 'free' .*out of range.*at row 1",
    )


def test_multi_label_out_of_its_classes() -> None:
    dtype = types.ClassLabel(types.Array("int32", dimensions=1), class_names=["x", "y"])
    _refused({"m": dtype}, {"m": [[0], [1, 2]]}, r"2 classes \(0\.\.1\), got 2 at row 1")
    _refused(
        {"m": dtype},
        {"m": pa.array([[0], None, [1, -1]], pa.list_(pa.int32()))},
        r"got -1 at row 2",
    )


def test_class_labels_in_range_nulls_and_names_are_kept() -> None:
    ds = lakefmt.create(_url(), schema={"label": types.ClassLabel("int16", class_names=THREE)})
    ds.append({"label": [0, None, "bird", np.uint8(1), 2]})
    ds.append({"label": pa.array([2, None], pa.int16())})
    assert ds["label"][:].tolist() == [0, None, 2, 1, 2, 2, None]
    with pytest.raises(TypeMismatchError, match="got 3 at row 0"):
        ds["label"][0] = 3
    assert ds["label"][0] == 0


def test_class_label_with_no_classes_takes_only_nulls() -> None:
    """An empty ``class_names`` (an image folder without subfolders): nulls only."""
    ds = lakefmt.create(_url(), schema={"label": types.ClassLabel("int32", class_names=[])})
    ds.append({"label": [None, None]})
    assert ds["label"][:].tolist() == [None, None]
    _refused(
        {"label": types.ClassLabel("int32", class_names=[])},
        {"label": [None, 0]},
        r"expects no label .*got 0 at row 1",
    )


def test_class_label_without_names_takes_any_label_of_its_dtype() -> None:
    ds = lakefmt.create(_url(), schema={"l": types.ClassLabel("int8")})
    ds.append({"l": [-128, -1, 0, 127]})
    assert ds["l"][:].tolist() == [-128, -1, 0, 127]
    _refused({"l": types.ClassLabel("int8")}, {"l": [128]}, r"int8 labels .*got 128 at row 0")


# -- class names as column metadata (Deep Lake's way) -------------------------------------------


def test_class_names_in_column_metadata_are_honoured() -> None:
    """Defect 9: names set with ``metadata["class_names"]`` were stored but ignored."""
    url = _url()
    ds = lakefmt.create(url, schema={"label": types.ClassLabel("int32"), "n": "int32"})
    ds.append({"label": [0, 1, 2, 1], "n": [0, 1, 2, 3]})
    ds.commit()
    ds["label"].metadata["class_names"] = THREE
    ds.commit()
    for handle in (ds, lakefmt.open_read_only(url)):
        assert handle.schema["label"].class_names == THREE
        assert handle.schema["label"].class_name(2) == "bird"
        got = handle.query("SELECT n WHERE label == 'dog'").to_arrow().to_pydict()
        assert got == {"n": [1, 3]}
    ds.append({"label": ["bird"], "n": [4]})  # names now map to labels on append
    assert ds["label"][4] == 2
    for bad, match in [([7], "3 classes"), (["fish"], "no class named 'fish'")]:
        with pytest.raises(TypeMismatchError, match=match):
            ds.append({"label": bad, "n": [5]})
    assert len(ds) == 5


def test_class_names_in_metadata_of_a_multi_label_column() -> None:
    ds = lakefmt.create(_url(), schema={"m": types.ClassLabel(types.Array("int32", dimensions=1))})
    ds.append({"m": [[0], [1, 2], []]})
    ds["m"].metadata["class_names"] = ["x", "y", "z"]
    ds.append({"m": [["z", "x"]]})
    assert [r.tolist() for r in ds["m"][:]] == [[0], [1, 2], [], [2, 0]]
    got = ds.query("SELECT * WHERE CONTAINS(m, 'z')").to_arrow()
    assert [r.tolist() for r in got.column("m").to_numpy(zero_copy_only=False)] == [[1, 2], [2, 0]]


@pytest.mark.parametrize("bad", [["a", "a"], "abc", [1, 2], None])
def test_malformed_class_names_metadata_is_refused(bad: Any) -> None:
    ds = lakefmt.create(_url(), schema={"label": types.ClassLabel("int32")})
    with pytest.raises(SchemaError, match="class_names"):
        ds["label"].metadata["class_names"] = bad
    assert "class_names" not in ds["label"].metadata


def test_class_names_of_the_type_win_and_may_not_be_contradicted() -> None:
    """Precedence: class names in the type are the contract; metadata may only repeat them."""
    ds = lakefmt.create(_url(), schema={"label": types.ClassLabel("int32", class_names=["a", "b"])})
    with pytest.raises(SchemaError, match="may not differ"):
        ds["label"].metadata["class_names"] = ["b", "a"]
    ds["label"].metadata["class_names"] = ["a", "b"]
    assert ds.schema["label"].class_names == ["a", "b"]


def test_class_names_metadata_on_other_columns_is_plain_metadata() -> None:
    ds = lakefmt.create(_url(), schema={"n": "int32"})
    ds["n"].metadata["class_names"] = "anything"
    assert ds["n"].metadata["class_names"] == "anything"
    assert ds.schema["n"] == types.Int32()


# -- float ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype,big", [("float32", 1e308), ("float16", 70000.0), ("float16", 70000)]
)
@pytest.mark.parametrize("form", ["list", "numpy", "arrow"])
def test_finite_float_out_of_range_is_refused(dtype: str, big: Any, form: str) -> None:
    """Defect 17: float32 columns stored 1e308 as inf silently."""
    values: Any = [1.0, big]
    if form == "numpy":
        values = np.array(values)
    elif form == "arrow":
        values = pa.array(values, pa.float64())
    _refused({"f": dtype}, {"f": values}, rf"column 'f' expects {dtype} values, got .* at row 1")


def test_float_out_of_range_in_arrays_and_embeddings() -> None:
    _refused({"e": types.Embedding(2)}, {"e": [[0, 0], [1e308, 0]]}, r"float32.*row 1")
    _refused({"e": types.Embedding(2)}, {"e": np.array([[1e300, 0.0]])}, r"float32.*row 0")
    _refused({"a": types.Array("float32", dimensions=1)}, {"a": [[1.0, -1e300]]}, r"row 0")


def test_float_update_out_of_range_is_refused() -> None:
    ds = lakefmt.create(_url(), schema={"f": "float32"})
    ds.append({"f": [1.0]})
    with pytest.raises(TypeMismatchError, match="float32"):
        ds["f"][0] = 1e39
    assert ds["f"][0] == 1.0


def test_explicit_infinities_and_nan_stay_allowed() -> None:
    ds = lakefmt.create(_url(), schema={"f": "float32", "h": "float16", "e": types.Embedding(2)})
    ds.append(
        {
            "f": [float("inf"), float("-inf"), float("nan"), None, 3.0e38],
            "h": np.array([np.inf, -np.inf, np.nan, 0.0, 65504.0]),
            "e": [[np.inf, 0], [0, -np.inf], [np.nan, 0], [0, 0], [0, 0]],
        }
    )
    f = ds["f"][:].tolist()
    assert f[:2] == [float("inf"), float("-inf")] and np.isnan(f[2]) and f[3] is None
    assert ds["h"][:].tolist()[4] == 65504.0


# -- lone surrogates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema,values,column",
    [
        ({"t": "text"}, ["ok", "a\ud800"], "t"),
        ({"t": types.Text()}, np.array(["ok", "\udfff"]), "t"),
        ({"l": types.Link(types.Image())}, ["http://h/a.png", "http://h/\ud800.png"], "l"),
        ({"d": types.Dict()}, [{"a": 1}, {"k": "\ud800"}], "d"),
    ],
)
def test_lone_surrogate_names_column_and_row(schema: Any, values: Any, column: str) -> None:
    """Defect 17: a lone surrogate raised a bare UnicodeEncodeError."""
    message = _refused(schema, {column: values}, r"row 1: the text has a lone surrogate")
    assert f"column '{column}'" in message


def test_lone_surrogate_in_an_update() -> None:
    ds = lakefmt.create(_url(), schema={"t": "text"})
    ds.append({"t": ["fine"]})
    with pytest.raises(TypeMismatchError, match="lone surrogate"):
        ds["t"][0] = "\ud800"
    assert ds["t"][0] == "fine"


# -- Link credentials: the dataset mapping -----------------------------------------------------

AZURITE = {
    "account_name": "devstoreaccount1",
    "account_key": "a2V5",
    "endpoint_url": "http://127.0.0.1:10000/devstoreaccount1",
}


@pytest.mark.parametrize(
    "url,creds",
    [
        ("az://container/a.png", AZURITE),
        ("abfs://container/a.png", {"account_name": "acc", "sas_token": "?sv=1"}),
        ("s3://bucket/a.png", {"aws_access_key_id": "k", "region": "eu-west-1"}),
        ("gcs://bucket/a.png", {"token": "anon", "endpoint_url": "http://127.0.0.1:4443"}),
    ],
)
def test_link_credentials_are_mapped_as_for_datasets(url: str, creds: dict[str, Any]) -> None:
    """Defect 9: an Azure ``endpoint_url`` reached adlfs raw from a Link (a dataset turns it
    into a connection string)."""
    from lakefmt.storage.credentials import provider_of, storage_options
    from lakefmt.types.link import link_storage_options

    provider = provider_of(url.split("://")[0])
    assert provider is not None
    assert link_storage_options(url, creds) == storage_options(provider, creds)
    if provider == "az" and "endpoint_url" in creds:
        options = link_storage_options(url, creds)
        assert "endpoint_url" not in options
        assert (
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1" in (options["connection_string"])
        )


@pytest.mark.parametrize(
    "creds,match",
    [
        ({"aws_access_key_id": "k", "aws_secret_acess_key": "s"}, "aws_secret_acess_key"),
        ({"s3": {"aws_access_key": "k"}}, "aws_access_key"),
        ({"s3": {"aws_access_key_id": "k"}, "token": "t"}, "mix provider entries"),
        ({"aws_access_key_id": "k", "account_name": "a"}, "no single provider"),
        ({"s3": "not a dict"}, "must be a dict"),
    ],
)
def test_link_credentials_with_a_typo_raise(creds: dict[str, Any], match: str) -> None:
    """Defect 9: a mistyped key silently dropped every credential of a Link (a dataset
    raises)."""
    from lakefmt.errors import StorageError
    from lakefmt.types.link import fetch_link, link_storage_options

    with pytest.raises(StorageError, match=match):
        link_storage_options("s3://bucket/a.png", creds)
    with pytest.raises(StorageError, match=match):
        fetch_link("s3://bucket/a.png", creds)


def test_link_credentials_of_another_provider_are_not_sent() -> None:
    from lakefmt.types.link import link_storage_options

    s3 = {"aws_access_key_id": "k", "single_writer": True}
    assert link_storage_options("gs://bucket/a.png", s3) == {}
    assert link_storage_options("s3://bucket/a.png", s3) == {"key": "k"}
    assert link_storage_options("az://c/a.png", {"s3": {"aws_access_key_id": "k"}}) == {}


def test_link_read_of_a_dataset_with_a_mistyped_key_raises(tmp_path: Any) -> None:
    """Through a dataset: reading a Link column with mistyped creds is a StorageError."""
    from lakefmt.errors import StorageError

    url = str(tmp_path / "links")
    ds = lakefmt.create(url, schema={"l": types.Link(types.Bytes())})
    ds.append({"l": ["s3://bucket/object.bin"]})
    ds.commit()
    typo = lakefmt.open_read_only(url, creds={"aws_acess_key_id": "k"})
    with pytest.raises(StorageError, match="aws_acess_key_id"):
        typo["l"][0]
