"""Column defaults round-trip exactly for every type (spec/format.md 6.2.3), format-1 defaults
read as before and are re-encoded when carried into a new manifest, and a version whose
columns were all removed keeps its rows (spec 8.1 step 9)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt import types as T
from lakefmt.errors import TypeMismatchError
from tests.dataset.default_cases import CASES, same, stored_cell

CONFORMANCE_V1 = Path(__file__).resolve().parents[2] / "spec" / "conformance" / "v1"


def _head(path: str) -> Path:
    return max((Path(path) / "_versions").glob("0*.json"))


def _manifest(path: str) -> dict[str, Any]:
    return json.loads(_head(path).read_bytes())


def _column(ds: Any, name: str) -> list[Any]:
    column = ds.to_arrow([name]).column(0).combine_chunks()
    if hasattr(column, "storage"):
        column = column.storage
    return column.to_pylist()


@settings(max_examples=15)
@given(values=st.fixed_dictionaries({name: strategy for name, _, strategy in CASES}))
def test_a_default_of_every_type_reads_back_exactly(tmp_path_factory: Any, values: dict) -> None:
    path = str(tmp_path_factory.mktemp("defaults") / "ds")
    ds = lakefmt.create(path, schema={"k": "int64"})
    ds.append({"k": [0, 1]})
    ds.commit()
    for name, column_type, _ in CASES:
        ds.add_column(name, column_type, default_value=values[name])
    ds.append({"k": [2]})  # every column left out: its default
    ds.append([{"k": 3, **values}, {"k": 4}])  # given explicitly, and left out in a row dict
    ds.commit()
    written = _manifest(path)["fields"]
    reopened = lakefmt.open_read_only(path)
    assert len(reopened) == 5
    for name, column_type, _ in CASES:
        want = stored_cell(column_type, values[name])
        got = _column(reopened, name)
        assert all(same(cell, want) for cell in got), (name, values[name], got, want)
        # row reads decode (media are compared as stored above; reading a link fetches it)
        if not column_type.is_media and not isinstance(column_type, T.Link):
            assert same(reopened[name][0], reopened[name][3]), name
    # carried unchanged into the next manifest
    again = lakefmt.open(path)
    again.append({"k": [5]})
    again.commit()
    assert _manifest(path)["fields"] == written


def test_nan_and_infinity_inside_embedding_and_array_defaults(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"k": "int8"})
    ds.append({"k": [1]})
    ds.add_column("e", T.Embedding(3), default_value=[math.nan, math.inf, -math.inf])
    ds.add_column("a", T.Array("float64", shape=(2,)), default_value=np.array([math.nan, -0.0]))
    ds.commit()
    fields = {f["name"]: f for f in _manifest(path)["fields"]}
    assert fields["e"]["default"] == ["NaN", "Infinity", "-Infinity"]  # never null
    assert fields["a"]["default"] == ["NaN", -0.0]
    reopened = lakefmt.open_read_only(path)
    assert same(_column(reopened, "e"), [[math.nan, math.inf, -math.inf]])
    assert same(_column(reopened, "a"), [[math.nan, -0.0]])


def test_bytes_inside_struct_and_sequence_defaults_even_not_utf8(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"k": "int8"})
    ds.append({"k": [1]})
    ds.add_column(
        "s", T.Struct({"b": "bytes", "t": "text"}), default_value={"b": b"\xff\x00", "t": "😀"}
    )
    ds.add_column("q", T.Sequence(T.Bytes()), default_value=[b"\x80", b"ok"])
    ds.commit()
    reopened = lakefmt.open_read_only(path)
    assert _column(reopened, "s") == [{"b": b"\xff\x00", "t": "😀"}]
    assert _column(reopened, "q") == [[b"\x80", b"ok"]]
    assert reopened["s"][0] == {"b": b"\xff\x00", "t": "😀"}


def test_dict_default_with_the_old_sentinel_keys_is_not_special(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"k": "int8"})
    ds.append({"k": [1]})
    ds.add_column("d1", T.Dict(), default_value={"$base64": "aGk="})
    ds.add_column("d2", T.Dict(), default_value={"$float": "nan"})
    ds.add_column("d3", T.Dict(), default_value={"x": {"$base64": 1}})
    ds.commit()
    reopened = lakefmt.open_read_only(path)
    assert reopened["d1"][0] == {"$base64": "aGk="}
    assert reopened["d2"][0] == {"$float": "nan"}
    assert reopened["d3"][0] == {"x": {"$base64": 1}}


def test_scalar_extremes_and_astral_text(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"k": "int8"})
    ds.append({"k": [1]})
    ds.add_column("u", "uint64", default_value=2**64 - 1)
    ds.add_column("i", "int64", default_value=-(2**63))
    ds.add_column("h", "float16", default_value=np.float16(-65504))
    ds.add_column("t", "text", default_value="\U0001f600\u0000x")
    ds.add_column("n", "float64", default_value=math.nan)
    ds.commit()
    row = lakefmt.open_read_only(path).to_arrow().to_pylist()[0]
    assert row["u"] == 2**64 - 1 and row["i"] == -(2**63) and row["h"] == -65504.0
    assert row["t"] == "\U0001f600\u0000x" and math.isnan(row["n"])


def test_a_default_the_type_refuses_is_refused_by_add_column(tmp_path: Path) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"k": "int8"})
    with pytest.raises(TypeMismatchError):
        ds.add_column("e", T.Embedding(3), default_value=[1.0, 2.0])
    with pytest.raises(TypeMismatchError):
        ds.add_column("u", "uint8", default_value=256)
    assert list(ds.schema) == ["k"]


def test_a_malformed_default_in_a_manifest_is_a_format_error(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"k": "int8"})
    ds.append({"k": [1]})
    ds.add_column("b", "bytes", default_value=b"x")
    ds.commit()
    _rewrite(_head(path), lambda m: m["fields"][1].update(default="not base64!"))
    reopened = lakefmt.open_read_only(path)
    assert reopened["k"][0] == 1
    with pytest.raises(lakefmt.errors.FormatError, match="column 'b'"):
        reopened.to_arrow()


# -- format version 1 ---------------------------------------------------------------------------


def _v1_encode(value: Any) -> Any:
    """How format version 1 wrote a default (lakefmt 0.1's encode_default, then pydantic)."""
    from lakefmt.format.manifest import Field

    if isinstance(value, bytes):
        value = {"$base64": __import__("base64").b64encode(value).decode()}
    elif isinstance(value, float) and not math.isfinite(value):
        value = {"$float": repr(value)}
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    field = Field(id=0, name="x", type={"name": "int8"}, default=value, has_default=True)
    return field.model_dump(mode="json")["default"]


def _rewrite(path: Path, change: Any) -> None:
    """Edit a manifest's JSON and write it back with a valid checksum."""
    data = json.loads(path.read_bytes())
    del data["checksum"]
    change(data)
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hashlib.sha256(body[:-1]).hexdigest()
    path.write_bytes(body[:-1] + b',"checksum":"sha256:' + digest.encode() + b'"}')


#: Format-1 defaults (the user's value) and the cell format version 1 read them as.
V1_CASES: list[tuple[str, T.Type, Any, Any]] = [
    ("v1_i", T.Numeric("int16"), 7, 7),
    ("v1_f", T.Numeric("float32"), math.inf, math.inf),
    ("v1_b", T.Bytes(), b"\xff\x01", b"\xff\x01"),
    ("v1_t", T.Text(), "😀", "😀"),
    ("v1_label", T.ClassLabel(class_names=["a", "b"]), "b", 1),
    ("v1_emb", T.Embedding(2), np.array([0.5, 1.5], dtype=np.float32), [0.5, 1.5]),
    ("v1_arr", T.Array("int32", shape=(2, 1)), np.array([[1], [2]]), [1, 2]),
    ("v1_dict", T.Dict(), {"k": [1, "x"]}, '{"k": [1, "x"]}'),
    ("v1_seq", T.Sequence("text"), ["a", None], ["a", None]),
    ("v1_rec", T.Struct({"n": "int8", "t": "text"}), {"n": 1, "t": "z"}, {"n": 1, "t": "z"}),
    (
        "v1_mask",
        T.BinaryMask(),
        np.array([[True, False]]),
        {"shape": [1, 2], "values": [True, False]},
    ),
]


def _v1_dataset_with_defaults(tmp_path: Path, extra: list[tuple[str, T.Type, Any]]) -> str:
    """A copy of a golden format-1 dataset whose head manifest gained columns with format-1
    defaults (no data file holds them, so every row reads the default)."""
    path = tmp_path / "v1"
    shutil.copytree(CONFORMANCE_V1 / "schema_evolution" / "dataset", path)

    def add(m: dict[str, Any]) -> None:
        assert m["format_version"] == 1
        for name, column_type, value in extra:
            m["fields"].append(
                {
                    "id": m["next_field_id"],
                    "name": name,
                    "type": column_type.to_json(),
                    "arrow_type": str(column_type.storage_type),
                    "default": _v1_encode(value),
                    "has_default": True,
                    "metadata": {},
                }
            )
            m["next_field_id"] += 1

    _rewrite(_head(str(path)), add)
    return str(path)


def test_format_1_defaults_read_as_before_and_are_re_encoded_on_write(tmp_path: Path) -> None:
    path = _v1_dataset_with_defaults(tmp_path, [(n, t, v) for n, t, v, _ in V1_CASES])
    before = lakefmt.open_read_only(path)
    rows = len(before)
    assert rows > 0
    for name, _, _, cell in V1_CASES:
        assert all(same(c, cell) for c in _column(before, name)), name
    ds = lakefmt.open(path)
    ds.append(
        [{"a": 100, "b_renamed": "new", "c": "c", "f": "f"}]
    )  # defaults of the new rows come from format 1
    ds.commit()
    head = _manifest(path)
    assert head["format_version"] == lakefmt.FORMAT_VERSION
    fields = {f["name"]: f for f in head["fields"]}
    for name, *_ in V1_CASES:
        assert fields[name]["default_encoding"] == 2, name
    assert fields["v1_b"]["default"] == "/wE=" and fields["v1_f"]["default"] == "Infinity"
    assert fields["v1_label"]["default"] == 1 and fields["v1_arr"]["default"] == [1, 2]
    after = lakefmt.open_read_only(path)
    assert len(after) == rows + 1
    for name, _, _, cell in V1_CASES:
        assert all(same(c, cell) for c in _column(after, name)), name
    # the version written in format 1 still reads as it did
    old = lakefmt.open_read_only(path, version=f"v{head['version'] - 1}")
    assert all(same(c, 7) for c in _column(old, "v1_i"))


def test_an_unreadable_format_1_default_stays_unreadable_and_can_be_removed(tmp_path: Path) -> None:
    # format 1 wrote NaN inside an embedding default as null: no read of it ever worked
    path = _v1_dataset_with_defaults(tmp_path, [("emb", T.Embedding(2), np.array([1.0, math.nan]))])
    assert _manifest(path)["fields"][-1]["default"] == [1.0, None]
    ds = lakefmt.open(path)
    with pytest.raises(TypeMismatchError):
        ds.to_arrow()
    assert ds.to_arrow(["a"]).num_rows == len(ds)  # other columns read
    ds.append([{"a": 1, "b_renamed": "x", "c": "c", "f": "f", "emb": [1.0, 2.0]}])
    ds.commit()
    field = _manifest(path)["fields"][-1]
    assert field["default_encoding"] == 1 and field["default"] == [1.0, None]  # kept as it was
    with pytest.raises(TypeMismatchError):
        lakefmt.open_read_only(path).to_arrow(["emb"])
    ds.remove_column("emb")
    ds.commit()
    assert lakefmt.open_read_only(path).to_arrow().num_rows == len(ds)


# -- zero columns -----------------------------------------------------------------------------


def test_a_version_without_columns_keeps_its_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"a": "int64"})
    ds.append({"a": [1, 2, 3]})
    ds.remove_column("a")
    ds.commit()
    for view in (ds, lakefmt.open_read_only(path)):
        assert len(view) == 3
        assert view.to_arrow().num_rows == 3
        assert view.to_arrow().num_columns == 0
        assert view.to_pandas().shape == (3, 0)
        assert view.to_batches(batch_size=2).read_all().num_rows == 3
        assert len(list(view.batches(2))) == 2
        assert view[1:3].to_arrow().num_rows == 2
        assert len(view.query("SELECT *")) == 3
        assert view.query("SELECT *").to_arrow().num_rows == 3
    ds.add_column("b", T.Struct({"x": "bytes"}), default_value={"x": b"\x00"})
    ds.commit()
    reopened = lakefmt.open_read_only(path)
    assert _column(reopened, "b") == [{"x": b"\x00"}] * 3
    assert reopened.to_arrow(columns=[]).num_rows == 3
