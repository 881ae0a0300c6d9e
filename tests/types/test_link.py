"""Link columns: URLs stored as given, fetched through fsspec and decoded with the inner type."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lakefmt
from lakefmt import types
from lakefmt.errors import DecodeError, StorageError, TypeMismatchError
from lakefmt.types import link as link_module
from lakefmt.types.link import fetch_link, link_credentials, link_storage_options

Roundtrip = Callable[..., lakefmt.ReadOnlyDataset]


def test_local_links_to_images(
    types_roundtrip: Roundtrip,
    tmp_path: Path,
    types_png: bytes,
    types_gradient: Callable[..., np.ndarray],
) -> None:
    (tmp_path / "a.png").write_bytes(types_png)
    (tmp_path / "b b.png").write_bytes(types_png)
    urls = [f"file://{tmp_path / 'a.png'}", str(tmp_path / "b b.png"), None]
    ds = types_roundtrip({"img": types.Link(types.Image())}, {"img": urls})
    assert ds["img"].get_bytes([0, 1, 2]) == urls
    first, second, third = ds["img"][:]
    np.testing.assert_array_equal(first, types_gradient(20, 30, 3))
    np.testing.assert_array_equal(second, first)
    assert third is None
    np.testing.assert_array_equal(ds["img"][1], first)
    batch = next(ds.batches(3))
    assert len(batch["img"]) == 3
    assert ds.schema["img"] == types.Link(types.Image())


def test_links_are_never_fetched_on_append(types_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("fetched on append")

    monkeypatch.setattr(link_module, "fetch_link", refuse)
    ds = lakefmt.create(types_url, schema={"doc": types.Link("text")})
    ds.append({"doc": ["s3://bucket/missing.txt", "https://example.com/a.txt", "relative/x.txt"]})
    ds.commit()
    assert len(ds) == 3


def test_links_to_text_bytes_and_json(types_roundtrip: Roundtrip, tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("héllo")
    (tmp_path / "d.json").write_text('{"a": [1, 2]}')
    ds = types_roundtrip(
        {"t": types.Link("text"), "b": types.Link(types.Bytes()), "j": types.Link(types.Dict())},
        {
            "t": [str(tmp_path / "t.txt")],
            "b": [str(tmp_path / "t.txt")],
            "j": [str(tmp_path / "d.json")],
        },
    )
    assert ds["t"][0] == "héllo"
    assert ds["b"][0] == "héllo".encode()
    assert ds["j"][0] == {"a": [1, 2]}


def test_missing_link_target_is_a_storage_error(types_roundtrip: Roundtrip, tmp_path: Path) -> None:
    ds = types_roundtrip({"img": types.Link(types.Image())}, {"img": [str(tmp_path / "nope.png")]})
    with pytest.raises(StorageError, match=r"nope\.png"):
        ds["img"][0]


def test_corrupt_link_target_is_a_decode_error(types_roundtrip: Roundtrip, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image")
    ds = types_roundtrip({"img": types.Link(types.Image())}, {"img": [str(tmp_path / "bad.png")]})
    with pytest.raises(DecodeError):
        ds["img"][0]


@pytest.mark.parametrize(
    "bad,match",
    [
        (b"file.png", "URL or path string"),
        (3, "URL or path string"),
        ("", "URL or path"),
        (" padded.png", "URL or path"),
        ("bad\nname.png", "URL or path"),
        ("nosuchscheme://x/y.png", "scheme 'nosuchscheme://'"),
        ("s3://", "empty URL"),
    ],
)
def test_bad_urls_raise(types_url: str, bad: Any, match: str) -> None:
    ds = lakefmt.create(types_url, schema={"img": types.Link(types.Image())})
    with pytest.raises(TypeMismatchError, match=match) as info:
        ds.append({"img": ["ok.png", bad]})
    assert "'img'" in str(info.value) and "row 1" in str(info.value)
    assert len(ds) == 0


def test_link_inner_must_be_binary_or_text() -> None:
    with pytest.raises(TypeError):
        types.Link(types.Embedding(3))
    with pytest.raises(TypeError):
        types.Link(types.Link(types.Image()))
    assert types.Link("bytes").inner == types.Bytes()


def test_creds_are_mapped_per_provider() -> None:
    s3 = {"aws_access_key_id": "k", "aws_secret_access_key": "s", "region": "eu-west-1"}
    assert link_storage_options("s3://b/k", s3) == {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    assert link_storage_options("gs://b/k", s3) == {}  # S3 keys never reach GCS
    assert link_storage_options("/local/path", s3) == {}
    per_provider = {"s3": s3, "gs": {"token": "t"}}
    assert link_storage_options("gcs://b/k", per_provider) == {"token": "t"}
    assert link_storage_options("az://c/k", per_provider) == {}
    assert link_storage_options("s3://b/k") == {}
    with link_credentials(s3):
        assert link_storage_options("s3://b/k")["key"] == "k"
        with link_credentials(None):
            assert link_storage_options("s3://b/k") == {}
        ctx = contextvars.copy_context()
    assert link_storage_options("s3://b/k") == {}
    assert ctx.run(link_storage_options, "s3://b/k")["secret"] == "s"


def test_s3_links_read_through_moto(
    types_roundtrip: Roundtrip,
    types_s3: dict[str, Any],
    types_png: bytes,
    types_jpeg: bytes,
    types_gradient: Callable[..., np.ndarray],
) -> None:
    client = types_s3["client"]
    client.put_object(Bucket="links", Key="img/a.png", Body=types_png)
    client.put_object(Bucket="links", Key="img/b.jpg", Body=types_jpeg)
    ds = types_roundtrip(
        {"img": types.Link(types.Image())},
        {"img": ["s3://links/img/a.png", "s3://links/img/b.jpg", "s3://links/img/missing.png"]},
    )
    creds = types_s3["creds"]
    with link_credentials(creds):
        np.testing.assert_array_equal(ds["img"][0], types_gradient(20, 30, 3))
        both = ds["img"][0:2]
        assert both[1].shape == (32, 48, 3)
        with pytest.raises(StorageError, match=r"missing\.png"):
            ds["img"][2]
    assert fetch_link("s3://links/img/a.png", creds) == types_png


def test_dataset_creds_reach_link_reads(
    types_s3: dict[str, Any], types_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # only the dataset's creds may work
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    types_s3["client"].put_object(Bucket="links", Key="hook/a.png", Body=types_png)
    creds = types_s3["creds"]
    url = "s3://links/hook-ds"
    ds = lakefmt.create(url, schema={"img": types.Link(types.Image())}, creds=creds)
    ds.append({"img": ["s3://links/hook/a.png"] * 2})
    ds.commit()
    reader = lakefmt.open_read_only(url, creds=creds)
    assert reader["img"][0].shape == (20, 30, 3)
    assert len(next(reader.batches(2))["img"]) == 2  # decoded on the read-ahead thread
