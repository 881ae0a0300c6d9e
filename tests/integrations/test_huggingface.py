"""Hugging Face ``datasets``: in through ``from_huggingface``, out through ``to_huggingface``
and ``export --format huggingface``, offline, on datasets built in the test."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt import types
from lakefmt.cli import main
from lakefmt.errors import (
    DecodeError,
    InvalidArgumentError,
    MissingDependencyError,
    SchemaError,
)

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

datasets = pytest.importorskip("datasets")
PIL = pytest.importorskip("PIL.Image")
from datasets import (  # noqa: E402  (after the importorskip)
    Array2D,
    Array3D,
    Audio,
    ClassLabel,
    Features,
    Image,
    List,
    Value,
)


def _image(fmt: str, shade: int, size: tuple[int, int] = (5, 4)) -> bytes:
    out = io.BytesIO()
    PIL.new("RGB", size, (shade, 255 - shade, 7)).save(out, fmt)
    return out.getvalue()


def _all_features() -> tuple[Any, dict[str, list[Any]]]:
    """One column of every mapped feature, with nulls, empties and several rows."""
    features = Features(
        {
            "id": Value("int64"),
            "score": Value("float32"),
            "flag": Value("bool"),
            "text": Value("string"),
            "blob": Value("binary"),
            "image": Image(),
            "label": ClassLabel(names=["cat", "dog", "eel"]),
            "tags": List(ClassLabel(names=["x", "y"])),
            "ints": List(Value("int32")),
            "nested": List(List(Value("float64"))),
            "vector": List(Value("float32"), length=3),
            "fixed_ints": List(Value("int16"), length=2),
            "captions": List(Value("string")),
            "frames": List(Image()),
            "matrix": Array2D((2, 3), "float32"),
            "volume": Array3D((2, 2, 2), "uint8"),
            "ragged": Array2D((None, 2), "int64"),
            "audio": {"bytes": Value("binary"), "path": Value("string")},  # cast to Audio below
            "meta": {"source": Value("string"), "year": Value("int32")},
        }
    )
    rows = {
        "id": [1, 2, 3],
        "score": [0.5, None, -2.25],
        "flag": [True, False, None],
        "text": ["a", None, "ü"],
        "blob": [b"\x00\x01", None, b""],
        "image": [_image("PNG", 10), None, _image("PNG", 200, (3, 9))],
        "label": [0, 2, None],
        "tags": [[0, 1], [], None],
        "ints": [[1, 2, 3], [], None],
        "nested": [[[1.0], [2.0, 3.0]], None, [[]]],
        "vector": [[1, 2, 3], None, [4, 5, 6]],
        "fixed_ints": [[1, -1], [2, 2], None],
        "captions": [["one", None], [], None],
        "frames": [[_image("PNG", 1), _image("PNG", 2)], [], None],
        "matrix": [np.arange(6).reshape(2, 3), None, np.ones((2, 3))],
        "volume": [np.arange(8).reshape(2, 2, 2), np.zeros((2, 2, 2)), None],
        "ragged": [np.arange(4).reshape(2, 2), np.zeros((0, 2)), None],
        "audio": [
            {"bytes": b"RIFF1234WAVE", "path": None},
            None,
            {"bytes": b"RIFFabcd", "path": None},
        ],
        "meta": [{"source": "web", "year": 2020}, None, {"source": None, "year": 1999}],
    }
    return features, rows


def _hf_all() -> Any:
    features, rows = _all_features()
    hf = datasets.Dataset.from_dict(rows, features=features)
    # built from the struct: Audio's encode_example needs torchcodec, its cast does not
    return hf.cast_column("audio", Audio(sampling_rate=16_000))


def _assert_same_hf(a: Any, b: Any) -> None:
    assert a.features == b.features
    for name in a.column_names:
        left, right = a.data.table.column(name), b.data.table.column(name)
        assert left.combine_chunks().equals(right.combine_chunks()), name


def test_every_mapped_feature_round_trips() -> None:
    hf = _hf_all()
    ds = lakefmt.from_huggingface(hf, "mem://hf-all", progress=False)
    schema = ds.schema
    assert schema["image"] == types.Image("uint8", "png")
    assert schema["label"] == types.ClassLabel("int64", class_names=["cat", "dog", "eel"])
    assert schema["tags"] == types.ClassLabel(types.Array("int64", dimensions=1), ["x", "y"])
    assert schema["ints"] == types.Array("int32", dimensions=1)
    assert schema["nested"] == types.Array("float64", dimensions=2)
    assert schema["vector"] == types.Embedding(3, "float32")
    assert schema["fixed_ints"] == types.Array("int16", shape=(2,))
    assert schema["captions"] == types.Sequence(types.Text())
    assert schema["frames"] == types.Sequence(types.Image("uint8", "png"))
    assert schema["matrix"] == types.Array("float32", shape=(2, 3))
    assert schema["volume"] == types.Array("uint8", shape=(2, 2, 2))
    assert schema["ragged"] == types.Array("int64", dimensions=2)
    assert schema["audio"] == types.Bytes()
    assert ds["audio"].metadata["huggingface"] == {
        "feature": {"_type": "Audio", "sampling_rate": 16_000}
    }
    assert schema["meta"] == types.Struct({"source": types.Text(), "year": types.Int32()})
    # lakefmt reads the values as its own types
    original = hf.data.table
    assert ds["image"].get_bytes(0) == original.column("image")[0]["bytes"].as_py()
    assert ds.to_arrow(["label"]).column("label").to_pylist() == [0, 2, None]
    np.testing.assert_array_equal(ds["matrix"][0], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(ds["volume"][1], np.zeros((2, 2, 2)))
    assert ds["image"][2].shape == (9, 3, 3)

    _assert_same_hf(ds.to_huggingface(), hf)


def test_to_huggingface_decodes_images_and_labels_in_datasets() -> None:
    hf = _hf_all()
    back = lakefmt.from_huggingface(hf, "mem://hf-decode", progress=False).to_huggingface()
    back = back.remove_columns("audio")  # decoding audio needs torchcodec (and torch)
    row = back[0]
    assert isinstance(row["image"], PIL.Image)
    assert row["image"].size == (5, 4)
    assert back.features["label"].int2str(back[1]["label"]) == "eel"
    assert back.features["tags"].feature.int2str(row["tags"]) == ["x", "y"]
    assert [im.size for im in row["frames"]] == [(5, 4), (5, 4)]
    assert np.asarray(row["matrix"]).shape == (2, 3)


def test_image_bytes_are_kept_not_reencoded() -> None:
    jpegs = [_image("JPEG", s) for s in (1, 90, 180)]
    hf = datasets.Dataset.from_dict({"img": jpegs}, features=Features({"img": Image()}))
    ds = lakefmt.from_huggingface(hf, "mem://hf-jpeg", progress=False)
    assert ds.schema["img"] == types.Image("uint8", "jpeg")
    assert [ds["img"].get_bytes(i) for i in range(3)] == jpegs
    back = ds.to_huggingface()
    assert [v["bytes"] for v in back.data.table.column("img").to_pylist()] == jpegs


def test_images_given_as_paths_are_read_as_bytes(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        path.write_bytes(_image("PNG", 40 * i))
        paths.append(str(path))
    hf = datasets.Dataset.from_dict({"img": paths}, features=Features({"img": Image()}))
    assert hf.data.table.column("img")[0]["bytes"].as_py() is None  # stored as paths
    ds = lakefmt.from_huggingface(hf, "mem://hf-paths", progress=False)
    assert [ds["img"].get_bytes(i) for i in range(3)] == [Path(p).read_bytes() for p in paths]


def test_image_of_a_format_lakefmt_has_no_type_for_needs_bytes() -> None:
    gif = _image("GIF", 3)
    hf = datasets.Dataset.from_dict({"img": [gif]}, features=Features({"img": Image()}))
    with pytest.raises(SchemaError, match="'img': 'bytes'"):
        lakefmt.from_huggingface(hf, "mem://hf-gif", progress=False)
    ds = lakefmt.from_huggingface(hf, "mem://hf-gif2", schema={"img": "bytes"}, progress=False)
    assert ds["img"][0] == gif
    back = ds.to_huggingface()
    assert back.features["img"] == Image()  # kept in the column metadata
    assert back[0]["img"].format == "GIF"  # decodes in datasets


def test_schema_override_and_unknown_features() -> None:
    hf = datasets.Dataset.from_dict(
        {"n": [1, 2], "t": [{"en": "hi", "fr": "salut"}, {"en": "yes", "fr": "oui"}]},
        features=Features({"n": Value("int64"), "t": datasets.Translation(languages=["en", "fr"])}),
    )
    with pytest.raises(SchemaError, match="Translation"):
        lakefmt.from_huggingface(hf, "mem://hf-tr", progress=False)
    ds = lakefmt.from_huggingface(
        hf,
        "mem://hf-tr2",
        schema={"n": "float64", "t": types.Struct({"en": "text", "fr": "text"})},
        progress=False,
    )
    assert ds.schema["n"] == types.Float64()
    assert ds["t"][1] == {"en": "yes", "fr": "oui"}
    with pytest.raises(SchemaError, match="nope"):
        lakefmt.from_huggingface(hf, "mem://hf-tr3", schema={"nope": "int8"}, progress=False)
    stamps = datasets.Dataset.from_dict(
        {"ts": [0]}, features=Features({"ts": Value("timestamp[us]")})
    )
    with pytest.raises(SchemaError, match="cast_column"):
        lakefmt.from_huggingface(stamps, "mem://hf-ts", progress=False)
    assert not lakefmt.exists("mem://hf-ts")  # all or nothing


def test_dataset_dict_names_its_splits() -> None:
    split = datasets.Dataset.from_dict({"a": [1]})
    dd = datasets.DatasetDict({"train": split, "validation": split})
    with pytest.raises(InvalidArgumentError, match=r"\['train', 'validation'\]"):
        lakefmt.from_huggingface(dd, "mem://hf-dd")
    ds = lakefmt.from_huggingface(dd["validation"], "mem://hf-dd", progress=False)
    assert ds["a"][:].tolist() == [1]
    with pytest.raises(InvalidArgumentError, match="not dict"):
        lakefmt.from_huggingface({"a": [1]}, "mem://hf-dict")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        lakefmt.from_huggingface(split, "mem://hf-bs", batch_size=0)


def test_no_label_becomes_null() -> None:
    hf = datasets.Dataset.from_dict(
        {"label": [1, -1, 0]}, features=Features({"label": ClassLabel(names=["a", "b"])})
    )
    ds = lakefmt.from_huggingface(hf, "mem://hf-nolabel", progress=False)
    assert ds.to_arrow().column("label").to_pylist() == [1, None, 0]


def test_iterable_dataset_streams_in_bounded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    total, batch = 3_000, 100
    produced = [0]
    jpeg = _image("JPEG", 77)

    def rows() -> Any:
        for i in range(total):
            produced[0] = i + 1
            yield {"id": i, "img": {"bytes": jpeg, "path": None}, "label": i % 3}

    features = Features(
        {"id": Value("int64"), "img": Image(), "label": ClassLabel(names=["a", "b", "c"])}
    )
    source = datasets.IterableDataset.from_generator(rows, features=features)
    ahead: list[int] = []
    appended = [0]
    append = lakefmt.Dataset.append

    def watching_append(self: Any, data: Any, **kwargs: Any) -> None:
        appended[0] += len(data)
        ahead.append(produced[0] - appended[0])  # rows read from the source, not yet stored
        append(self, data, **kwargs)

    monkeypatch.setattr(lakefmt.Dataset, "append", watching_append)
    ds = lakefmt.from_huggingface(source, "mem://hf-stream", batch_size=batch, progress=False)
    assert len(ds) == total
    assert len(ahead) == total // batch  # one append per source batch
    assert max(ahead) <= batch  # at most the batch being converted is read ahead
    assert ds["id"][:].tolist() == list(range(total))
    assert ds["img"].get_bytes(total - 1) == jpeg


def test_iterable_dataset_without_features_uses_its_first_batch() -> None:
    def rows() -> Any:
        for i in range(5):
            yield {"x": i, "name": f"n{i}"}

    source = datasets.IterableDataset.from_generator(rows)
    ds = lakefmt.from_huggingface(source, "mem://hf-nofeat", progress=False)
    assert ds.schema["x"] == types.Int64() and ds.schema["name"] == types.Text()
    assert ds["name"][:] == [f"n{i}" for i in range(5)]


def test_to_huggingface_of_deletions_updates_and_an_old_version(tmp_path: Path) -> None:
    hf = _hf_all()
    ds = lakefmt.from_huggingface(hf, str(tmp_path / "ds"), progress=False)
    first = ds.version
    ds.delete(1)
    ds["label"][1] = 0  # the old row 2 (now row 1)
    ds["text"][0] = "changed"
    ds.commit("edit")
    back = ds.to_huggingface()
    assert list(back["id"]) == [1, 3]
    assert list(back["label"]) == [0, 0]
    assert list(back["text"]) == ["changed", "ü"]
    assert back.features == hf.features
    old = lakefmt.open_read_only(ds.url, version=first).to_huggingface()
    _assert_same_hf(old, hf)
    view = ds.to_huggingface(columns=["id", "image"])
    assert view.column_names == ["id", "image"]
    assert list(ds[1:].to_huggingface(["id"])["id"]) == [3]


def test_empty_dataset_to_huggingface() -> None:
    ds = lakefmt.create("mem://hf-empty", schema={"img": types.Image(), "n": "int32"})
    back = ds.to_huggingface()
    assert len(back) == 0
    assert back.features == Features({"img": Image(), "n": Value("int32")})


def test_export_huggingface_parquet_loads_with_its_features(tmp_path: Path) -> None:
    hf = _hf_all()
    ds = lakefmt.from_huggingface(hf, str(tmp_path / "ds"), progress=False)
    out = tmp_path / "hf.parquet"
    result = CliRunner().invoke(main, ["export", ds.url, str(out), "--format", "huggingface"])
    assert result.exit_code == 0, result.output
    assert b"huggingface" in pq.read_schema(out).metadata
    loaded = datasets.load_dataset(
        "parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    _assert_same_hf(loaded, hf)
    assert isinstance(loaded.select_columns(["image"])[0]["image"], PIL.Image)
    assert loaded.features["label"].names == ["cat", "dog", "eel"]

    parts = tmp_path / "parts"
    result = CliRunner().invoke(
        main,
        [
            "export",
            ds.url,
            str(parts),
            "--format",
            "huggingface",
            "--max-rows-per-file",
            "2",
            "--columns",
            "id,label",
        ],
    )
    assert result.exit_code == 0, result.output
    files = sorted(str(p) for p in parts.iterdir())
    assert len(files) == 2
    loaded = datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(tmp_path / "cache2")
    )
    assert list(loaded["id"]) == [1, 2, 3]
    assert loaded.features["label"] == ClassLabel(names=["cat", "dog", "eel"])


def test_lakefmt_types_without_a_feature_name_export_as_their_storage() -> None:
    ds = lakefmt.create(
        "mem://hf-other",
        schema={"boxes": types.BoundingBox("float32", "ltwh", "pixel"), "doc": types.Dict()},
    )
    ds.append({"boxes": [np.array([[1, 2, 3, 4]], dtype=np.float32)], "doc": [{"a": 1}]})
    back = ds.to_huggingface()
    assert back.features["boxes"] == List(List(Value("float32"), length=4))
    assert back[0]["boxes"] == [[1.0, 2.0, 3.0, 4.0]]
    assert back.features["doc"] == Value("string")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
            st.one_of(st.none(), st.text(max_size=5)),
            st.one_of(st.none(), st.integers(0, 3)),
            st.one_of(st.none(), st.lists(st.floats(width=32, allow_nan=False), max_size=4)),
            st.one_of(st.none(), st.sampled_from(["PNG", "PNG2"])),
        ),
        max_size=12,
    )
)
def test_random_datasets_round_trip(rows: list[tuple[Any, ...]]) -> None:
    features = Features(
        {
            "n": Value("int32"),
            "s": Value("string"),
            "c": ClassLabel(names=["a", "b", "c", "d"]),
            "v": List(Value("float32")),
            "img": Image(),
        }
    )
    images = {"PNG": _image("PNG", 5), "PNG2": _image("PNG", 250, (2, 2))}
    columns = {
        "n": [r[0] for r in rows],
        "s": [r[1] for r in rows],
        "c": [r[2] for r in rows],
        "v": [r[3] for r in rows],
        "img": [None if r[4] is None else images[r[4]] for r in rows],
    }
    hf = datasets.Dataset.from_dict(columns, features=features)
    ds = lakefmt.from_huggingface(hf, None, batch_size=5, progress=False)
    assert len(ds) == len(rows)
    _assert_same_hf(ds.to_huggingface(), hf)
    table = ds.to_arrow()
    assert pa.array(table.column("c").to_pylist()).to_pylist() == columns["c"]


def test_a_later_image_of_another_format_names_the_source_rows() -> None:
    hf = datasets.Dataset.from_dict(
        {"img": [_image("PNG", 1)] * 3 + [_image("JPEG", 2)]}, features=Features({"img": Image()})
    )
    with pytest.raises(DecodeError, match=r"source rows 2\.\.3.*'bytes'"):
        lakefmt.from_huggingface(hf, "mem://hf-mixed", batch_size=2, progress=False)
    assert not lakefmt.exists("mem://hf-mixed")
    ds = lakefmt.from_huggingface(hf, "mem://hf-mixed", schema={"img": "bytes"}, progress=False)
    assert ds.to_huggingface().features["img"] == Image()


def test_without_datasets_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = lakefmt.create("mem://hf-missing", schema={"a": "int32"})
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets raises ImportError
    with pytest.raises(MissingDependencyError, match=r"lakefmt\[huggingface\]"):
        ds.to_huggingface()
    with pytest.raises(MissingDependencyError, match=r"lakefmt\[huggingface\]"):
        lakefmt.from_huggingface(object(), "mem://hf-missing2")
