"""Arrow extension types: names, versioned JSON params, registration, plain readers, pickling."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakefmt
from lakefmt import types
from lakefmt.types.extension import EXTENSION_METADATA_VERSION, extension_class
from lakefmt.types.registry import type_from_json

ALL_TYPES: list[types.Type] = [
    types.Image(),
    types.Image("uint16", "tiff"),
    types.Video(),
    types.Mesh(),
    types.Link(types.Image("uint8", "jpeg")),
    types.Embedding(8, "float16", index_type="hnsw"),
    types.Array("int8", shape=(2, 3)),
    types.Array("float32", dimensions=3),
    types.ClassLabel("uint8", ["a", "b"]),
    types.ClassLabel(types.Array("int32", dimensions=1)),
    types.BoundingBox("int32", "ccwh", "pixel"),
    types.SegmentMask("uint16"),
    types.SegmentMask("uint8", "png"),
    types.BinaryMask(),
    types.BinaryMask("png"),
    types.Point("float64", 3),
    types.Polygon(),
    types.Sequence(types.Sequence(types.Image())),
    types.Struct({"z": "text", "a": types.Link("bytes"), "m": types.Struct({"x": "int8"})}),
    types.Dict(),
]
NAMES = {
    "lakefmt.image",
    "lakefmt.video",
    "lakefmt.mesh",
    "lakefmt.link",
    "lakefmt.embedding",
    "lakefmt.array",
    "lakefmt.class_label",
    "lakefmt.bounding_box",
    "lakefmt.segment_mask",
    "lakefmt.binary_mask",
    "lakefmt.point",
    "lakefmt.polygon",
    "lakefmt.sequence",
    "lakefmt.struct",
    "lakefmt.dict",
}


def test_every_type_has_a_stable_name() -> None:
    assert {t.name for t in ALL_TYPES} == NAMES


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=repr)
def test_extension_type_carries_versioned_json_params(dtype: types.Type) -> None:
    ext = dtype.arrow_type
    assert isinstance(ext, pa.ExtensionType)
    assert ext.extension_name == dtype.name
    assert ext.storage_type == dtype.storage_type
    assert not _has_extension(ext.storage_type)  # nested types keep their inner JSON in params
    meta = json.loads(ext.__arrow_ext_serialize__())
    assert meta == {
        "v": EXTENSION_METADATA_VERSION,
        "params": json.loads(json.dumps(dtype.params())),
    }
    assert ext.lakefmt_type == dtype
    assert type_from_json(json.loads(json.dumps(dtype.to_json()))) == dtype
    # what pyarrow does when it reads the type back from a file's schema
    again = type(ext).__arrow_ext_deserialize__(ext.storage_type, ext.__arrow_ext_serialize__())
    assert again == ext and again.lakefmt_type == dtype


def _has_extension(dtype: pa.DataType) -> bool:
    if isinstance(dtype, pa.ExtensionType):
        return True
    return any(_has_extension(dtype.field(i).type) for i in range(dtype.num_fields))


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=repr)
def test_types_and_arrow_types_pickle(dtype: types.Type) -> None:
    assert pickle.loads(pickle.dumps(dtype)) == dtype
    ext = dtype.arrow_type
    assert pickle.loads(pickle.dumps(ext)) == ext
    nulls = pa.nulls(2, ext)
    back = pickle.loads(pickle.dumps(nulls))
    assert back.type == ext and back.null_count == 2


def test_arrays_of_values_pickle(
    types_everything: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    schema, rows = types_everything
    for name, dtype in schema.items():
        if name == "id":
            continue
        array = dtype.convert([r[name] for r in rows], column=name)
        back = pickle.loads(pickle.dumps(array))
        assert back.type == array.type and back.equals(array), name
        assert type(back).__name__ == "LakefmtArray"
        assert len(back.decode()) == 3


def test_registration_is_idempotent() -> None:
    cls = extension_class("lakefmt.image")
    assert extension_class("lakefmt.image") is cls
    types.register_type(types.Image)  # a second registration is harmless
    with pytest.raises(pa.ArrowKeyError):
        pa.register_extension_type(cls(pa.binary(), {}))  # it really is registered
    code = textwrap.dedent(
        """
        import importlib
        import pyarrow as pa
        import lakefmt
        import lakefmt.types.extension as ext
        importlib.reload(ext)  # a second import of the module re-registers without error
        from lakefmt import types
        print(types.Image().convert([None], column="c").type.extension_name)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "lakefmt.image"


def _data_files(url: str) -> list[Path]:
    files = sorted(Path(url).rglob("*.parquet"))
    return [f for f in files if "_deletions" not in str(f) and "_updates" not in str(f)]


def test_files_read_back_typed_with_plain_pyarrow_after_import(
    types_url: str, types_everything: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    schema, rows = types_everything
    ds = lakefmt.create(types_url, schema=schema)
    ds.append(rows)
    ds.commit()
    seen: dict[str, pa.DataType] = {}
    for path in _data_files(types_url):
        table = pq.read_table(path)
        for field in table.schema:
            seen[field.name] = field.type
    assert set(seen) == set(schema)
    for name, dtype in schema.items():
        if name == "id":
            assert seen[name] == pa.int64()
            continue
        assert isinstance(seen[name], pa.ExtensionType), name
        assert seen[name].lakefmt_type == dtype, name


def test_files_read_as_storage_types_without_lakefmt(
    types_url: str, types_everything: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    schema, rows = types_everything
    ds = lakefmt.create(types_url, schema=schema)
    ds.append(rows)
    ds.commit()
    paths = [str(p) for p in _data_files(types_url)]
    code = textwrap.dedent(
        """
        import json, sys
        import pyarrow.parquet as pq
        out = {}
        for path in json.loads(sys.argv[1]):
            table = pq.read_table(path)
            for field in table.schema:
                meta = field.metadata or {}
                out[field.name] = [
                    str(field.type),
                    meta.get(b"ARROW:extension:name", b"").decode(),
                    json.loads(meta.get(b"ARROW:extension:metadata", b"null")),
                    table.column(field.name).to_pylist()[2],
                ]
        assert not any(m.startswith("lakefmt") for m in sys.modules), "lakefmt was imported"
        print(json.dumps(out, default=repr))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(paths)], capture_output=True, text=True, check=True
    )
    seen = json.loads(result.stdout)
    for name, spec in schema.items():
        dtype = types.resolve_type(spec)
        storage, ext_name, ext_meta, third_row = seen[name]
        # Parquet names list items "element"; Arrow calls them "item" (equal as Arrow types)
        assert storage.replace("<element:", "<item:") == str(dtype.storage_type), name
        if name != "id":
            assert third_row is None, name  # nulls are plain nulls
            assert ext_name == dtype.name
            assert ext_meta == {"v": 1, "params": json.loads(json.dumps(dtype.params()))}
