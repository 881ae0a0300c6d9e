"""Manifests (checksummed JSON) and the files a dataset leaves on disk."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

import lakefmt
from lakefmt.errors import FormatError
from lakefmt.format import layout
from lakefmt.format.manifest import (
    FORMAT_VERSION,
    DataFile,
    DeletionFile,
    Field,
    Fragment,
    Manifest,
    UpdateFile,
    VersionRef,
    dump_manifest,
    parse_manifest,
)
from lakefmt.format.versions import read_latest
from lakefmt.storage import open_storage


def _small_manifest() -> Manifest:
    return Manifest(
        dataset_id="0123456789abcdef",
        branch="main",
        version=3,
        id=layout.make_version_id(3),
        parent=VersionRef(branch="main", version=2),
        timestamp=1_700_000_000_000,
        is_commit=True,
        message="snow ☃ and 中文",
        previous_commit=VersionRef(branch="main", version=1),
        operation="append",
        fields=[
            Field(id=0, name="id", type={"name": "int64"}, arrow_type="int64"),
            Field(
                id=1,
                name="caption",
                type={"name": "text"},
                arrow_type="string",
                default="",
                has_default=True,
                metadata={"lang": "en"},
            ),
        ],
        next_field_id=2,
        fragments=[
            Fragment(
                id=0,
                rows=10,
                files=[
                    DataFile(path="data/a.parquet", field_ids=[0, 1], size=123, row_groups=[10])
                ],
                deletion=DeletionFile(path="_deletions/0-x.parquet", count=2),
                updates=[UpdateFile(field_id=1, path="_updates/0-1-y.parquet", count=1)],
            )
        ],
        next_fragment_id=1,
        metadata={"source": "test", "n": 3},
    )


def _with_checksum(body_without_brace: bytes) -> bytes:
    """Wrap arbitrary bytes the way dump_manifest does, with a correct checksum."""
    digest = hashlib.sha256(body_without_brace).hexdigest().encode()
    return body_without_brace + b',"checksum":"sha256:' + digest + b'"}'


# -- dump / parse ---------------------------------------------------------------------------------


def test_round_trip() -> None:
    manifest = _small_manifest()
    raw = dump_manifest(manifest)
    parsed = parse_manifest(raw, location="test")
    assert parsed == manifest
    assert parsed.num_rows == 8
    assert parsed.field_by_name("caption").metadata == {"lang": "en"}
    # the serialisation is deterministic and the file is plain JSON
    assert dump_manifest(parsed) == raw
    data = json.loads(raw)
    assert data["format_version"] == FORMAT_VERSION
    assert data["checksum"].startswith("sha256:")
    assert list(data)[-1] == "checksum"


def test_round_trip_default_manifest() -> None:
    manifest = Manifest(
        dataset_id="d", branch="dev", version=0, timestamp=1, id=layout.make_version_id(0)
    )
    assert parse_manifest(dump_manifest(manifest), location="x") == manifest


def test_every_truncation_is_refused() -> None:
    raw = dump_manifest(_small_manifest())
    for n in range(len(raw)):
        with pytest.raises(FormatError):
            parse_manifest(raw[:n], location="trunc")


def test_truncation_message_names_the_file() -> None:
    raw = dump_manifest(_small_manifest())
    with pytest.raises(FormatError, match=re.escape("some/where.json")):
        parse_manifest(raw[:-1], location="some/where.json")


def test_random_truncations_of_a_large_manifest() -> None:
    manifest = _small_manifest()
    many = [
        Fragment(
            id=i,
            rows=100 + i,
            files=[
                DataFile(
                    path=f"data/{i:032x}.parquet",
                    field_ids=[0, 1],
                    size=1000 + i,
                    row_groups=[100 + i],
                )
            ],
        )
        for i in range(200)
    ]
    raw = dump_manifest(manifest.model_copy(update={"fragments": many, "next_fragment_id": 200}))
    rng = random.Random(1234)
    for n in [0, 1, 2, len(raw) - 1, len(raw) - 2, len(raw) - 66, *rng.sample(range(len(raw)), 50)]:
        with pytest.raises(FormatError):
            parse_manifest(raw[:n], location="trunc")


def test_every_flipped_byte_is_refused() -> None:
    raw = dump_manifest(_small_manifest())
    for i in range(len(raw)):
        for mask in (0x01, 0x20):
            damaged = bytearray(raw)
            damaged[i] ^= mask
            with pytest.raises(FormatError):
                parse_manifest(bytes(damaged), location="flip")


def test_appended_garbage_is_refused() -> None:
    raw = dump_manifest(_small_manifest())
    for tail in (b"\n", b" ", b"x", raw):
        with pytest.raises(FormatError):
            parse_manifest(raw + tail, location="tail")


def test_newer_format_version_is_refused() -> None:
    newer = _small_manifest().model_copy(update={"format_version": 99})
    raw = dump_manifest(newer)  # a correct checksum: only the version is wrong
    assert json.loads(raw)["format_version"] == 99
    with pytest.raises(FormatError, match="99"):
        parse_manifest(raw, location="newer")


@pytest.mark.parametrize("version", [0, -1, "1", None, 1.5])
def test_invalid_format_version_is_refused(version: object) -> None:
    raw = dump_manifest(_small_manifest())
    data = json.loads(raw)
    del data["checksum"]
    data["format_version"] = version
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(FormatError):
        parse_manifest(_with_checksum(body[:-1]), location="bad-version")


def test_unknown_reader_feature_is_refused() -> None:
    manifest = _small_manifest()
    needs = manifest.model_copy(
        update={"reader_features": [*manifest.reader_features, "quantum_compression"]}
    )
    with pytest.raises(FormatError, match="quantum_compression"):
        parse_manifest(dump_manifest(needs), location="feature")


def test_unknown_optional_keys_are_ignored() -> None:
    manifest = _small_manifest()
    data = json.loads(dump_manifest(manifest))
    del data["checksum"]
    data["some_future_field"] = {"x": [1, 2, 3]}
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    assert parse_manifest(_with_checksum(body[:-1]), location="future") == manifest


def test_checksummed_garbage_is_refused() -> None:
    with pytest.raises(FormatError):
        parse_manifest(_with_checksum(b"{not json at all"), location="garbage")
    with pytest.raises(FormatError):
        parse_manifest(_with_checksum(b"[1,2"), location="garbage")


def test_checksummed_json_missing_fields_is_refused() -> None:
    body = json.dumps({"format_version": 1, "branch": "main"}, separators=(",", ":")).encode()
    with pytest.raises(FormatError):
        parse_manifest(_with_checksum(body[:-1]), location="incomplete")


# -- on a real dataset ----------------------------------------------------------------------------


def _make_dataset(path: str) -> lakefmt.Dataset:
    ds = lakefmt.create(path, schema={"id": "int64", "caption": "text", "flag": "bool"})
    ds.append({"id": np.arange(5), "caption": [f"c{i}" for i in range(5)], "flag": [True] * 5})
    ds.commit("first")
    ds.append({"id": np.arange(5, 8), "caption": ["x", None, "ü"], "flag": [False, None, True]})
    ds.flush()
    return ds


def _latest_manifest_path(root: Path) -> Path:
    manifests = sorted((root / "_versions").glob("*.json"))
    assert manifests
    return manifests[-1]


@pytest.mark.parametrize("cut", ["empty", "one_byte", "half", "minus_one", "minus_checksum"])
def test_truncated_latest_manifest_refuses_to_open(tmp_path: Path, cut: str) -> None:
    root = tmp_path / "ds"
    _make_dataset(str(root))
    path = _latest_manifest_path(root)
    raw = path.read_bytes()
    n = {
        "empty": 0,
        "one_byte": 1,
        "half": len(raw) // 2,
        "minus_one": len(raw) - 1,
        "minus_checksum": len(raw) - 80,
    }[cut]
    path.write_bytes(raw[:n])
    for url in (str(root), "file://" + str(root)):
        with pytest.raises(FormatError):
            lakefmt.open(url)
        with pytest.raises(FormatError):
            lakefmt.open_read_only(url)
    path.write_bytes(raw)  # repaired: readable again
    assert len(lakefmt.open_read_only(str(root))) == 8


def test_flipped_byte_in_latest_manifest_refuses_to_open(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _make_dataset(str(root))
    path = _latest_manifest_path(root)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0x04
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError):
        lakefmt.open(str(root))


def test_truncated_manifest_on_memory_storage(mem_url: str) -> None:
    ds = _make_dataset(mem_url)
    storage = open_storage(mem_url)
    path = layout.manifest_path("main", ds._manifest.version)
    raw = storage.read(path)
    storage.write(path, raw[:-10])
    with pytest.raises(FormatError):
        lakefmt.open(mem_url)


def test_manifest_of_newer_format_refuses_to_open(tmp_path: Path) -> None:
    """A newer writer added a version in a format this library cannot read."""
    root = tmp_path / "ds"
    ds = _make_dataset(str(root))
    storage = open_storage(str(root))
    latest = read_latest(storage, "main")
    newer = latest.model_copy(
        update={"format_version": 99, "version": latest.version + 1, "parent": latest.ref}
    )
    assert storage.put_if_absent(layout.manifest_path("main", newer.version), dump_manifest(newer))
    with pytest.raises(FormatError, match="99"):
        lakefmt.open(str(root))
    with pytest.raises(FormatError):
        ds.refresh()


def test_format_file_of_newer_version_refuses_to_open(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _make_dataset(str(root))
    format_file = root / "_lakefmt.json"
    data = json.loads(format_file.read_bytes())
    assert data["format"] == "lakefmt"
    assert data["format_version"] == FORMAT_VERSION
    data["format_version"] = 99
    format_file.write_text(json.dumps(data))
    with pytest.raises(FormatError, match="99"):
        lakefmt.open(str(root))
    with pytest.raises(FormatError, match="99"):
        lakefmt.open_read_only("file://" + str(root))


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"format": "other", "format_version": 1}', b'{"format": "lakefmt"}'],
)
def test_damaged_format_file_refuses_to_open(tmp_path: Path, content: bytes) -> None:
    root = tmp_path / "ds"
    _make_dataset(str(root))
    (root / "_lakefmt.json").write_bytes(content)
    with pytest.raises(FormatError):
        lakefmt.open(str(root))


@pytest.mark.parametrize("hint", [b"garbage", b"", b"1", b"999", b"-5", b"\xff\xfe"])
def test_latest_hint_is_never_trusted_alone(tmp_path: Path, hint: bytes) -> None:
    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64"})
    for i in range(4):
        ds.append({"a": [i]})
        ds.flush()
    newest = ds.version
    (root / "_versions" / "_latest").write_bytes(hint)
    (root / "_versions" / "notes.json").write_bytes(b"not a manifest")  # ignored
    again = lakefmt.open(str(root))
    assert again.version == newest
    assert again["a"][:].tolist() == [0, 1, 2, 3]
    again.append({"a": [4]})
    again.flush()
    assert lakefmt.open_read_only(str(root))["a"][:].tolist() == [0, 1, 2, 3, 4]


def test_missing_latest_hint(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64"})
    ds.append({"a": [1, 2]})
    ds.flush()
    (root / "_versions" / "_latest").unlink()
    assert lakefmt.open(str(root))["a"][:].tolist() == [1, 2]


def test_data_files_are_plain_parquet(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    ds = _make_dataset(str(root))
    ds.add_column("score", "float32")
    ds["score"][0:8] = np.arange(8, dtype=np.float32) / 2
    ds.append({"id": [8], "caption": ["last"], "flag": [True], "score": [9.5]})
    ds.flush()

    manifest = read_latest(open_storage(str(root)), "main")
    files_in_manifest = {d.path: d for f in manifest.fragments for d in f.files}
    names_by_id = {f.id: f.name for f in manifest.fields}
    parquet_files = sorted((root / "data").glob("*.parquet"))
    assert len(parquet_files) >= 4
    assert {f"data/{p.name}" for p in parquet_files} == set(files_in_manifest)

    total_rows_by_field: dict[int, int] = {}
    for path in parquet_files:
        table = pq.read_table(str(path))
        count = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]
        assert count == table.num_rows > 0
        data_file = files_in_manifest[f"data/{path.name}"]
        assert sum(data_file.row_groups) == table.num_rows
        assert data_file.size == path.stat().st_size
        ids = []
        for field in table.schema:
            assert field.metadata is not None and b"PARQUET:field_id" in field.metadata, field
            ids.append(int(field.metadata[b"PARQUET:field_id"]))
        assert ids == data_file.field_ids
        # the column names are the field names (at the time the file was written)
        assert table.column_names == [names_by_id[i] for i in ids]
        # the Parquet footer carries the field ids too (not only the Arrow schema)
        schema = pq.ParquetFile(str(path)).schema
        assert [schema.column(i).name for i in range(len(schema))] == table.column_names
        for fid in ids:
            total_rows_by_field[fid] = total_rows_by_field.get(fid, 0) + table.num_rows

    # plain readers see the values lakefmt wrote
    every = duckdb.sql(
        f"select id, caption from read_parquet('{root}/data/*.parquet', union_by_name=true) "
        "where id is not null order by id"
    ).fetchall()
    captions = ["c0", "c1", "c2", "c3", "c4", "x", None, "ü", "last"]
    assert every == list(enumerate(captions))
    score_field = manifest.field_by_name("score")
    assert total_rows_by_field[score_field.id] == 9


def test_an_id_that_does_not_name_the_version_is_refused() -> None:
    manifest = _small_manifest().model_copy(update={"id": layout.make_version_id(4)})
    with pytest.raises(FormatError, match="does not name its version"):
        parse_manifest(dump_manifest(manifest), location="copied")


def test_format_1_manifests_get_a_stable_derived_id() -> None:
    manifest = _small_manifest().model_copy(update={"format_version": 1, "id": None})
    raw = dump_manifest(manifest)
    assert b'"id"' not in raw.split(b'"fields"')[0]  # format 1 has no id member
    first = parse_manifest(raw, location="v1")
    assert first.id == parse_manifest(raw, location="again").id
    assert layout.parse_version_id(first.version_id) == 3
    assert first.id[:8] == json.loads(raw)["checksum"][len("sha256:") :][:8]
