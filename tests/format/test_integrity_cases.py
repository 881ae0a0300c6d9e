"""Damaged data: media cut short, damaged and replaced files, manifests out of place, full disks.

Each test is a regression test of issue 14 (defects 8, 13, 14, 15 and part of 17). The
corruption matrix at the end damages every kind of file a dataset has (data, deletion,
update, manifest, tag and branch files, the latest hint, the format file) by truncation,
byte flips and replacement, and holds lakefmt to one rule: a read gives the rows that were
written, or raises a lakefmt error naming the damaged file; never other rows silently; and
``verify()`` lists what a read trips over.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

import lakefmt
from lakefmt import types
from lakefmt.cli import main as cli_main
from lakefmt.codecs.image import encode_image
from lakefmt.errors import DecodeError, FormatError, LakefmtError, StorageError
from lakefmt.format import commit as commits
from lakefmt.format import fragments, layout, snapshot
from lakefmt.format.versions import branch_id_of, latest_version_number
from lakefmt.storage import local
from lakefmt.storage.local import LocalStorage
from lakefmt.types import media

RNG = np.random.default_rng(14)


def _cold() -> None:
    """Forget every decoded footer, position and row group: reads as a fresh process would."""
    for cache in (fragments._FOOTERS, fragments._POSITIONS, fragments._UPDATES, fragments._SIZES):
        cache.clear()
    fragments._GROUPS.clear()
    fragments._VERIFIED.clear()
    snapshot._SCANNED.clear()


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def _head(root: Path) -> Any:
    return LocalStorage(str(root))


def _manifest(root: Path) -> Any:
    from lakefmt.format.versions import read_latest

    return read_latest(_head(root), layout.MAIN_BRANCH)


# -- defect 8: media that can never be read ---------------------------------------------------
def _jpeg() -> bytes:
    return encode_image(RNG.integers(0, 255, (32, 40, 3), dtype=np.uint8), "jpeg")


def _png() -> bytes:
    return encode_image(RNG.integers(0, 255, (32, 40, 3), dtype=np.uint8), "png")


def _video() -> bytes:
    from lakefmt.codecs.video import encode_video

    # fixed frames: a cut of 100 bytes leaves a video that still probes (moov is last)
    frames = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    return encode_video(frames, fps=30)


def _ascii_ply() -> bytes:
    import trimesh

    return trimesh.creation.box().export(file_type="ply", encoding="ascii")


@pytest.mark.parametrize(
    "column_type,make,cut",
    [
        (types.Image(sample_compression="jpeg"), _jpeg, 0.5),
        (types.Image(sample_compression="jpeg"), _jpeg, "-1"),  # only the EOI's last byte
        (types.Image(sample_compression="png"), _png, 0.6),
        (types.Video(), _video, "-100"),  # the moov box at the end is cut: probes fine
        (types.Mesh(), _ascii_ply, "-3"),  # the last face's line is cut
    ],
    ids=["jpeg-half", "jpeg-eoi", "png", "mp4-moov", "ascii-ply"],
)
def test_media_cut_short_is_refused_on_append_naming_column_and_row(
    tmp_path: Path, column_type: types.Type, make: Any, cut: Any
) -> None:
    whole = make()
    end = len(whole) + int(cut) if isinstance(cut, str) else int(len(whole) * cut)
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"m": column_type})
    with pytest.raises(DecodeError, match=r"column 'm' row 2: .*(truncated|corrupt)"):
        ds.append({"m": [whole, whole, whole[:end]]})
    ds.append({"m": [whole]})  # nothing of the refused batch was kept; whole files still go
    ds.commit()
    assert len(lakefmt.open_read_only(str(tmp_path / "ds"))) == 1


def test_vectorised_jpeg_check_names_the_cut_row(tmp_path: Path) -> None:
    good = _jpeg()
    values = [good] * 9 + [good[: len(good) // 3]] + [good] * 5
    ds = lakefmt.create(
        str(tmp_path / "ds"), schema={"img": types.Image(sample_compression="jpeg")}
    )
    with pytest.raises(DecodeError, match="column 'img' row 9: truncated"):
        ds.append({"img": pa.array(values, type=pa.binary())})


def test_image_with_bytes_after_its_end_marker_is_kept(tmp_path: Path) -> None:
    """The cheap check cannot vouch for it; a decode does, so the bytes are kept as given."""
    trailer = _jpeg() + b"\x00" * 300 + b"camera trailer"
    ds = lakefmt.create(
        str(tmp_path / "ds"), schema={"img": types.Image(sample_compression="jpeg")}
    )
    ds.append({"img": [trailer]})
    ds.commit()
    again = lakefmt.open_read_only(str(tmp_path / "ds"))
    assert again["img"].get_bytes(0) == trailer
    assert again["img"][0].shape == (32, 40, 3)


def test_image_folder_import_refuses_a_cut_jpeg(tmp_path: Path) -> None:
    folder = tmp_path / "images" / "cat"
    folder.mkdir(parents=True)
    good = _jpeg()
    (folder / "a.jpg").write_bytes(good)
    (folder / "b.jpg").write_bytes(good[: len(good) // 2])
    result = CliRunner().invoke(
        cli_main, ["import", str(tmp_path / "images"), str(tmp_path / "ds")]
    )
    assert result.exit_code != 0
    assert "truncated" in result.output and "row 1" in result.output


def _with_unchecked_media(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Appends as lakefmt wrote them before it checked the end of images."""
    context = monkeypatch.context()
    patched = context.__enter__()
    patched.setattr(media, "check_image_whole", lambda data, fmt: None)
    return context


def test_verify_deep_decodes_every_image_and_lists_bad_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "ds")
    good = _png()
    cut = good[: len(good) // 2]
    ds = lakefmt.create(url, schema={"img": types.Image(), "n": "int32"})
    with monkeypatch.context() as older:
        older.setattr(media, "check_image_whole", lambda data, fmt: None)
        ds.append({"img": [good, good, cut, good, cut], "n": [0, 1, 2, 3, 4]})
    ds.commit()
    ds.delete(0)  # row indices in the report are the version's: the cut ones are now 1 and 3
    ds.commit()
    reader = lakefmt.open_read_only(url)
    assert reader.verify() == []  # every file intact: the damage is inside the values
    problems = reader.verify(deep=True)
    assert [p.split(" does not decode")[0] for p in problems] == [
        "column 'img' row 1",
        "column 'img' row 3",
    ]
    runner = CliRunner()
    assert runner.invoke(cli_main, ["verify", url]).exit_code == 0
    deep = runner.invoke(cli_main, ["verify", "--deep", url])
    assert deep.exit_code != 0
    assert "column 'img' row 1 does not decode" in deep.output
    assert "2 problem(s)" in deep.output


# -- defect 13: page checksums ----------------------------------------------------------------
def _data_file(root: Path, manifest: Any, column: str) -> Path:
    field = manifest.field_by_name(column)
    for fragment in manifest.fragments:
        for data_file in fragment.files:
            if field.id in data_file.field_ids:
                return root / data_file.path
    raise AssertionError(f"no data file holds {column}")


def test_flipped_byte_in_a_float_page_is_a_format_error_not_wrong_floats(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    values = RNG.random(20_000)  # random floats: stored uncompressed, a flip would go unseen
    ds = lakefmt.create(str(root), schema={"x": "float64"})
    ds.append({"x": values})
    ds.commit()
    path = _data_file(root, _manifest(root), "x")
    _flip(path, path.stat().st_size // 2)
    _cold()
    reader = lakefmt.open_read_only(str(root))
    with pytest.raises(FormatError, match=path.name):
        reader["x"][:]
    with pytest.raises(FormatError, match=path.name):
        reader.to_arrow()
    assert any(path.name in p for p in reader.verify())


def test_flipped_byte_in_a_float_page_fails_a_query_too(tmp_path: Path) -> None:
    # TQL reads data files with DuckDB's Parquet reader, which does not check page CRCs
    root = tmp_path / "ds"
    values = RNG.random(20_000)
    ds = lakefmt.create(str(root), schema={"x": "float64", "i": "int64"})
    ds.append({"x": values, "i": np.arange(len(values))})
    ds.commit()
    path = _data_file(root, _manifest(root), "x")
    _flip(path, _pages_of(path)[0] - 1000)
    _cold()
    reader = lakefmt.open_read_only(str(root))
    with pytest.raises(FormatError, match=path.name):
        reader.query("SELECT x WHERE x > 0.5").to_arrow()
    with pytest.raises(FormatError, match=path.name):
        reader.query("SELECT SUM(x) AS s").to_arrow()


def _pages_of(path: Path) -> list[int]:
    """Offsets of bytes inside page data of a Parquet file (between the magic and footer)."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(str(path))
    offsets = []
    for g in range(meta.num_row_groups):
        column = meta.row_group(g).column(0)
        start = column.dictionary_page_offset if column.has_dictionary_page else None
        start = start or column.data_page_offset
        offsets.append(start + column.total_compressed_size - 2)  # the last page's last bytes
    return offsets


def test_deletion_and_update_files_carry_page_checksums_checked_on_read(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64", "s": "text"})
    ds.append({"a": np.arange(100), "s": [f"s{i}" for i in range(100)]})
    ds.commit()
    ds.delete([3, 5, 7])
    ds["s"][10] = "changed"
    ds.commit()
    fragment = _manifest(root).fragments[0]
    assert pq.read_table(root / fragment.deletion.path)["position"].to_pylist() == [3, 5, 7]
    # a flip in the deletion file's page: the CRC catches it, no row silently comes back
    deletion = root / fragment.deletion.path
    _flip(deletion, _pages_of(deletion)[0])
    _cold()
    reader = lakefmt.open_read_only(str(root))
    with pytest.raises(FormatError, match=deletion.name):
        reader["a"][:]
    assert any(deletion.name in p for p in reader.verify())


def test_written_files_have_checksummed_pages(tmp_path: Path) -> None:
    """Every Parquet file lakefmt writes has a CRC in each page header (pyarrow's reader
    with verification on rejects a page whose bytes were changed, so test that instead)."""
    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64"})
    ds.append({"a": np.arange(50)})
    ds.commit()
    ds.delete([1])
    ds["a"][2] = 99
    ds.commit()
    fragment = _manifest(root).fragments[0]
    for relative in (fragment.files[0].path, fragment.deletion.path, fragment.updates[0].path):
        path = root / relative
        _flip(path, _pages_of(path)[0])
        with pytest.raises(OSError, match="CRC"):
            import pyarrow.parquet as pq

            pq.ParquetFile(str(path), page_checksum_verification=True).read()


# -- defect 14: a manifest in the wrong place --------------------------------------------------
def test_older_manifest_copied_over_the_head_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64"})
    for i in range(3):
        ds.append({"a": [i]})
        ds.commit()
    storage = _head(root)
    head = latest_version_number(storage, layout.MAIN_BRANCH)
    older = root / layout.manifest_path(layout.MAIN_BRANCH, head - 2)
    shutil.copyfile(older, root / layout.manifest_path(layout.MAIN_BRANCH, head))
    with pytest.raises(FormatError, match=f"{head:020d}.json.*version {head - 2}"):
        lakefmt.open_read_only(str(root))
    # a handle opened before the damage fails fast instead of rebasing 200 times
    ds.append({"a": [9]})
    calls: list[int] = []
    real = commits.write_manifest_if_absent

    def counting(storage: Any, manifest: Any) -> bool:
        calls.append(manifest.version)
        return real(storage, manifest)

    commits.write_manifest_if_absent = counting  # type: ignore[assignment]
    try:
        # the writer's base is the real head: its next number is free, the commit lands
        ds.commit()
    finally:
        commits.write_manifest_if_absent = real  # type: ignore[assignment]
    assert len(calls) == 1


def test_stale_writer_over_a_copied_manifest_fails_fast(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.commit()
    stale = lakefmt.open(str(root))  # based on this head
    ds.append({"a": [2]})
    ds.commit()
    ds.append({"a": [3]})
    ds.commit()
    head = latest_version_number(_head(root), layout.MAIN_BRANCH)
    shutil.copyfile(
        root / layout.manifest_path(layout.MAIN_BRANCH, head - 1),
        root / layout.manifest_path(layout.MAIN_BRANCH, head),
    )
    stale.append({"a": [4]})
    with pytest.raises(FormatError, match="copied or moved"):
        stale.commit()  # its rebase reads the copied head: refused at once, not 200 attempts


def test_manifest_moved_to_another_branch_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.commit()
    ds.branch("dev")
    dev = lakefmt.open(str(root), branch="dev")
    dev.append({"a": [2]})
    dev.commit()
    dev_id = branch_id_of(_head(root), "dev")
    dev_head = latest_version_number(_head(root), "dev", dev_id)
    main_head = latest_version_number(_head(root), layout.MAIN_BRANCH)
    shutil.copyfile(
        root / layout.manifest_path(layout.MAIN_BRANCH, main_head),
        root / layout.manifest_path("dev", dev_head, dev_id),
    )
    with pytest.raises(FormatError, match=r"branch 'main'.*of 'dev'"):
        lakefmt.open_read_only(str(root), branch="dev")


# -- defect 15: damaged deletion and update files, replaced data files --------------------------
def test_data_file_replaced_by_a_parquet_file_with_fewer_columns(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64", "b": "int64"})
    ds.append({"a": np.arange(10), "b": np.arange(10)})
    ds.commit()
    path = _data_file(root, _manifest(root), "b")
    pq.write_table(pa.table({"a": np.arange(10)}), path)
    _cold()
    reader = lakefmt.open_read_only(str(root))
    with pytest.raises(FormatError, match=path.name):
        reader["b"][:]
    with pytest.raises(FormatError, match=path.name):
        list(reader.batches(4))
    assert any(path.name in p for p in reader.verify())


def test_damaged_deletion_and_update_files_are_format_errors_and_verify_lists_them(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64"})
    ds.append({"a": np.arange(20)})
    ds.commit()
    ds.delete([1, 2])
    ds["a"][5] = 50
    ds.commit()
    fragment = _manifest(root).fragments[0]
    deletion, update = root / fragment.deletion.path, root / fragment.updates[0].path
    deletion.write_bytes(deletion.read_bytes()[:20])
    update.write_bytes(b"not parquet at all")
    _cold()
    reader = lakefmt.open_read_only(str(root))
    with pytest.raises(FormatError, match=deletion.name):
        reader["a"][:]
    problems = reader.verify()  # never raises: lists both
    assert any(deletion.name in p for p in problems)
    assert any(update.name in p for p in problems)


def test_deletion_file_swapped_for_another_of_the_same_fragment(tmp_path: Path) -> None:
    """A valid deletion file of an older version (fewer rows deleted) put in place of the
    current one: the recorded size and count catch it."""
    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"a": "int64"})
    ds.append({"a": np.arange(20)})
    ds.commit()
    ds.delete([1])
    ds.commit()
    old = root / _manifest(root).fragments[0].deletion.path
    ds.delete([2])
    ds.commit()
    current = root / _manifest(root).fragments[0].deletion.path
    shutil.copyfile(old, current)
    _cold()
    with pytest.raises(FormatError, match=current.name):
        lakefmt.open_read_only(str(root))["a"][:]


# -- defect 17: a full disk, a handle dropped at exit ----------------------------------------
def test_full_disk_is_a_storage_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "float64"})
    real_file = pa.OSFile
    # every data file goes to /dev/full, where each write fails with ENOSPC
    monkeypatch.setattr(local.pa, "OSFile", lambda path, mode: real_file("/dev/full", mode))
    ds.append({"a": RNG.random(1000)})
    with pytest.raises(StorageError, match=r"data/[0-9a-f]{32}\.parquet: No space left"):
        ds.flush()
    monkeypatch.undo()
    # the manifest write too
    real = LocalStorage._write_temp

    def full(self: LocalStorage, data: bytes) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalStorage, "_write_temp", full)
    with pytest.raises(StorageError, match=r"_versions/\d{20}\.json: No space left"):
        ds.flush()
    monkeypatch.setattr(LocalStorage, "_write_temp", real)
    ds.flush()  # the disk has room again: the buffered rows land, once
    assert len(lakefmt.open_read_only(str(tmp_path / "ds"))) == 1000


def test_full_disk_on_a_real_tiny_file_system(tmp_path: Path) -> None:
    """A 256 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        ds = lakefmt.create(str(mount / "ds"), schema={"a": "float64"})
        ds.append({"a": RNG.random(100_000)})  # 800 KB: does not fit
        with pytest.raises(StorageError, match=r"ds: cannot write data/.*No space left"):
            ds.flush()
        assert os.listdir(mount / "ds" / "data") == []  # the partial file was removed
        ds.rollback()
        assert len(lakefmt.open_read_only(str(mount / "ds"))) == 0
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)  # lazy: never left busy


def test_handle_dropped_at_exit_after_a_failed_flush_logs_the_reason(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import builtins, errno, gc, sys
        import lakefmt
        from lakefmt.storage import local

        real = local.LocalStorage._write_temp
        failures = [1]

        def full_disk(self, data):
            if failures:
                failures.pop()
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, data)

        ds = lakefmt.create(sys.argv[1], schema={"a": "int64"})
        local.LocalStorage._write_temp = full_disk
        ds.append({"a": [1, 2, 3]})
        try:
            ds.flush()
        except OSError as exc:
            print("flush failed:", type(exc).__name__, flush=True)
        # what interpreter teardown looks like to a __del__: finalizing, builtins going
        sys.is_finalizing = lambda: True
        del builtins.open
        del ds
        gc.collect()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
    )
    assert "flush failed: StorageError" in done.stdout
    assert "NameError" not in done.stderr, done.stderr
    assert "3 rows buffered" in done.stderr and "were not written" in done.stderr


# -- defect 10 for a generic storage -------------------------------------------------------
class _LostAnswer(LocalStorage):
    """A storage whose creates write the file and then raise (the answer was lost)."""

    lose = 0
    read_fails = False

    def put_if_absent(self, path: str, data: bytes) -> bool:
        created = super().put_if_absent(path, data)
        if self.lose and path.endswith(".json") and "_versions" in path:
            self.lose -= 1
            raise StorageError(f"{self.url}: create '{path}' failed: connection reset")
        return created

    def read(self, path: str, *, start: int | None = None, end: int | None = None) -> bytes:
        if self.read_fails and "_versions/0" in path:
            raise StorageError(f"{self.url}: read '{path}' failed: connection reset")
        return super().read(path, start=start, end=end)


def _lossy(ds: Any) -> _LostAnswer:
    storage = _LostAnswer(ds._storage.root)
    ds._storage = storage
    if hasattr(ds, "_snap"):
        ds._snap.storage = storage
    return storage


def test_generic_storage_whose_create_raises_after_writing(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    storage = _lossy(ds)
    storage.lose = 1
    ds.append({"a": [1, 2]})
    version = ds.commit("landed although the answer was lost")  # read back: it landed
    assert lakefmt.open_read_only(url)["a"][:].tolist() == [1, 2]
    assert lakefmt.open_read_only(url).version == version
    # when even the read-back fails the outcome is unknown; committing again adds no rows twice
    storage.lose, storage.read_fails = 1, True
    ds.append({"a": [3]})
    with pytest.raises(StorageError, match="unknown"):
        ds.commit("unknown outcome")
    storage.read_fails = False
    ds.commit("retry")
    assert lakefmt.open_read_only(url)["a"][:].tolist() == [1, 2, 3]


# -- defect 15: the corruption matrix ---------------------------------------------------------
KINDS = [
    "data",
    "media",
    "deletion",
    "update",
    "manifest",
    "tag",
    "branch",
    "hint",
    "format",
]
DAMAGES = ["truncate-half", "truncate-last", "flip-early", "flip-middle", "flip-late", "replace"]


def _build(root: Path) -> dict[str, Any]:
    """A dataset with one file of every kind; returns what reads must give."""
    url = str(root)
    ds = lakefmt.create(
        url, schema={"a": "int64", "x": "float64", "s": "text", "img": types.Image()}
    )
    image = _png()
    for k in range(2):
        n = 40
        ds.append(
            {
                "a": np.arange(k * n, (k + 1) * n),
                "x": RNG.random(n),
                "s": [f"row {i}" for i in range(k * n, (k + 1) * n)],
                "img": [image] * n,
            }
        )
        ds.commit(f"part {k}")
    ds.tag("release")
    ds.delete([3, 4, 50])
    ds["s"][7] = "updated"
    ds["x"][8] = -1.0
    ds.commit("edits")
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    dev.append({"a": [999], "x": [0.5], "s": ["dev row"], "img": [image]})
    dev.commit("dev")
    storage = _head(root)
    storage.write(
        layout.latest_hint_path(layout.MAIN_BRANCH), str(_manifest(root).version).encode()
    )
    return _read_all(url)


def _read_all(url: str) -> dict[str, Any]:
    """Every row of main's head, the tag and the dev branch, through random access and scans."""
    _cold()
    out: dict[str, Any] = {}
    head = lakefmt.open_read_only(url)
    out["head"] = head.to_arrow().to_pylist()
    out["head[5]"] = {
        c: head[c][5] if c != "img" else head[c].get_bytes(5) for c in ("a", "s", "img")
    }
    out["head batches"] = sum(len(b["a"]) for b in head.batches(16))
    out["tag"] = lakefmt.open_read_only(url, version="release").to_arrow().to_pylist()
    out["dev"] = lakefmt.open_read_only(url, branch="dev").to_arrow(["a", "s"]).to_pylist()
    return out


def _target(root: Path, kind: str) -> Path:
    manifest = _manifest(root)
    if kind in ("data", "media"):
        return _data_file(root, manifest, "img" if kind == "media" else "x")
    if kind == "deletion":
        return root / next(f.deletion.path for f in manifest.fragments if f.deletion)
    if kind == "update":
        return root / next(f.updates[0].path for f in manifest.fragments if f.updates)
    if kind == "manifest":
        return root / layout.manifest_path(layout.MAIN_BRANCH, manifest.version)
    if kind == "tag":
        return root / layout.tag_path("release")
    if kind == "branch":
        return root / layout.branch_path("dev")
    if kind == "hint":
        return root / layout.latest_hint_path(layout.MAIN_BRANCH)
    return root / layout.FORMAT_FILE


def _replacement(root: Path, kind: str, target: Path) -> bytes:
    """Another valid file of the same kind (or what a careless copy would put there)."""
    manifest = _manifest(root)
    import pyarrow.parquet as pq

    if kind in ("data", "media"):
        sink = io.BytesIO()
        pq.write_table(pa.table({"a": np.arange(40)}), sink)  # valid Parquet, other columns
        return sink.getvalue()
    if kind == "deletion":
        sink = io.BytesIO()
        pq.write_table(pa.table({"position": pa.array([0, 1, 2], pa.int64())}), sink)
        return sink.getvalue()
    if kind == "update":
        other = next(
            u.path for f in manifest.fragments for u in f.updates if root / u.path != target
        )
        return (root / other).read_bytes()
    if kind == "manifest":
        return (root / layout.manifest_path(layout.MAIN_BRANCH, manifest.version - 1)).read_bytes()
    if kind in ("tag", "branch"):
        return json.dumps({"name": "x"}).encode()  # valid JSON, not a ref
    if kind == "hint":
        return b"3"  # a stale hint
    return (root / layout.manifest_path(layout.MAIN_BRANCH, 1)).read_bytes()


def _damage(path: Path, how: str, replacement: bytes) -> None:
    data = path.read_bytes()
    if how == "truncate-half":
        path.write_bytes(data[: len(data) // 2])
    elif how == "truncate-last":
        path.write_bytes(data[:-1])
    elif how == "replace":
        path.write_bytes(replacement)
    else:
        share = {"flip-early": 0.1, "flip-middle": 0.5, "flip-late": 0.9}[how]
        offset = min(len(data) - 1, int(len(data) * share))
        _flip(path, offset)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("integrity") / "template"
    return root, _build(root)


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_damaged_file_gives_the_right_rows_or_an_error_naming_it(
    tmp_path: Path, template: tuple[Path, dict[str, Any]], kind: str, how: str
) -> None:
    source, expected = template
    root = tmp_path / "ds"
    shutil.copytree(source, root)
    target = _target(root, kind)
    _damage(target, how, _replacement(root, kind, target))
    name = target.name
    try:
        got = _read_all(str(root))
    except LakefmtError as exc:
        assert name in str(exc), f"{type(exc).__name__} does not name {name}: {exc}"
        try:
            reader = lakefmt.open_read_only(str(root))
        except LakefmtError as open_error:  # the head itself is unreadable: that is the report
            assert name in str(open_error)
            return
        problems = reader.verify()
        assert any(name in p for p in problems), f"verify() missed {name}: {problems}"
        return
    for key, value in expected.items():
        assert got[key] == value, f"damaged {kind} ({how}) silently changed {key}"


def test_each_column_chunk_is_checked_the_first_time_it_is_read(tmp_path: Path) -> None:
    """Checks are remembered per (row group, column): reading one column of a group does
    not let another column's damaged pages through."""
    import pyarrow.parquet as pq

    root = tmp_path / "ds"
    ds = lakefmt.create(str(root), schema={"x": "float64", "y": "float64"})
    ds.append({"x": RNG.random(5000), "y": RNG.random(5000)})
    ds.commit()
    path = _data_file(root, _manifest(root), "y")
    _cold()
    reader = lakefmt.open_read_only(str(root))
    reader["x"][:]  # checks x's pages of every group
    fragments._GROUPS.clear()  # decoded groups are gone; the record of checks stays
    meta = pq.read_metadata(str(path)).row_group(0).column(1)
    _flip(path, meta.data_page_offset + meta.total_compressed_size - 2)  # y's page
    with pytest.raises(FormatError, match=path.name):
        reader["y"][:]
    assert reader["x"][:].shape == (5000,)  # x was checked: read without a second check
