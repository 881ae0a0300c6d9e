"""Write-behind: full append buffers are written on a background thread while appending
goes on, committed in order, and never lost when that write fails."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt.dataset import writer as writer_module
from lakefmt.format import fragments as files

CHUNK = 100  # rows per append in these tests; 100 int64 rows = 800 bytes


@pytest.fixture
def small_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Buffers fill after two appends of CHUNK rows."""
    monkeypatch.setattr(writer_module, "FLUSH_BYTES", 2 * CHUNK * 8)


def _fresh(tmp_path: Path) -> tuple[str, lakefmt.Dataset]:
    """A new local dataset of one int64 column ``id``, and its path."""
    path = str(tmp_path / "ds")
    return path, lakefmt.create(path, schema={"id": "int64"})


def _committed_ids(path: str) -> list[int]:
    """The ids a fresh reader sees (what was committed)."""
    return lakefmt.open_read_only(path)["id"][:].tolist()


def _append_chunks(ds: lakefmt.Dataset, count: int, start: int = 0) -> None:
    for k in range(start, start + count):
        ds.append({"id": np.arange(k * CHUNK, (k + 1) * CHUNK, dtype=np.int64)})


@pytest.mark.usefixtures("small_flush")
def test_full_buffers_are_written_on_another_thread_and_committed_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    write = files.write_data_file

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "write_data_file", recording)
    path, ds = _fresh(tmp_path)
    for k in range(12):
        _append_chunks(ds, 1, start=k)
        assert len(ds) == (k + 1) * CHUNK  # rows written behind still count
        assert len(ds._writes.behind) <= writer_module.WRITE_BEHIND_DEPTH
    # earlier buffers were committed as versions while appending went on
    reader = lakefmt.open_read_only(path)
    assert 0 < len(reader) < 12 * CHUNK
    assert reader["id"][:].tolist() == list(range(len(reader)))
    ds.commit()
    assert _committed_ids(path) == list(range(12 * CHUNK))
    assert any(name.startswith("lakefmt-write") for name in threads)


def _fail_writes_behind(monkeypatch: pytest.MonkeyPatch, error: OSError) -> dict[str, bool]:
    """Make data-file writes on the write-behind threads raise ``error`` while the returned
    switch's ``"on"`` is True (writes on the caller's thread still succeed)."""
    write = files.write_data_file
    failing = {"on": True}

    def flaky(*args: object, **kwargs: object) -> object:
        if failing["on"] and threading.current_thread().name.startswith("lakefmt-write"):
            raise error
        return write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "write_data_file", flaky)
    return failing


@pytest.mark.usefixtures("small_flush")
def test_a_failed_write_behind_is_raised_and_loses_no_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = _fail_writes_behind(monkeypatch, OSError(28, "No space left on device"))
    path, ds = _fresh(tmp_path)
    raised_at = None
    for k in range(8):
        try:
            _append_chunks(ds, 1, start=k)
        except OSError as exc:  # a later append meets the failure of the write behind
            assert "No space left" in str(exc)
            raised_at = k
            break
    assert raised_at is not None
    assert len(ds) == (raised_at + 1) * CHUNK  # nothing dropped, the raising append's rows kept
    assert ds._writes.behind == []  # the failed buffer is back in the buffer
    failing["on"] = False
    ds.commit()
    got = _committed_ids(path)
    assert got == list(range((raised_at + 1) * CHUNK))  # every row once, in order


@pytest.mark.usefixtures("small_flush")
def test_a_failed_write_behind_surfaces_at_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = _fail_writes_behind(monkeypatch, OSError(5, "Input/output error"))
    path, ds = _fresh(tmp_path)
    _append_chunks(ds, 2)  # one buffer handed over, its write fails in the background
    assert len(ds._writes.behind) == 1
    with pytest.raises(OSError, match="Input/output"):
        ds.commit()
    assert ds._writes.behind == [] and len(ds) == 2 * CHUNK  # back in the buffer
    failing["on"] = False
    ds.commit()
    assert _committed_ids(path) == list(range(2 * CHUNK))


@pytest.mark.usefixtures("small_flush")
def test_rollback_drops_rows_written_behind(tmp_path: Path) -> None:
    path, ds = _fresh(tmp_path)
    _append_chunks(ds, 1)
    ds.commit()
    _append_chunks(ds, 3, start=1)
    assert ds._writes.behind
    ds.rollback()
    assert len(ds) == CHUNK
    ds.commit()
    assert _committed_ids(path) == list(range(CHUNK))


@pytest.mark.usefixtures("small_flush")
def test_rows_written_behind_in_a_parent_process_are_written_again(tmp_path: Path) -> None:
    path, ds = _fresh(tmp_path)
    _append_chunks(ds, 2)
    assert len(ds._writes.behind) == 1
    ds._writes.behind[0].pid = -1  # as seen from a forked child: that thread is not here
    ds.commit()
    assert ds._writes.behind == []
    assert _committed_ids(path) == list(range(2 * CHUNK))


@pytest.mark.usefixtures("small_flush")
def test_a_dropped_handle_commits_rows_written_behind(tmp_path: Path) -> None:
    path, ds = _fresh(tmp_path)
    _append_chunks(ds, 5)
    assert ds._writes.behind
    del ds
    gc.collect()
    assert _committed_ids(path) == list(range(5 * CHUNK))


@pytest.mark.usefixtures("small_flush")
def test_reads_see_rows_written_behind(tmp_path: Path) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"id": "int64"})
    _append_chunks(ds, 3)
    assert ds._writes.behind
    assert ds["id"][:].tolist() == list(range(3 * CHUNK))  # reading flushes first


@pytest.mark.usefixtures("small_flush")
def test_another_writer_in_between_keeps_every_row(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    first = lakefmt.create(path, schema={"id": "int64"})
    first.commit()
    second = lakefmt.open(path)
    _append_chunks(first, 3)  # one buffer behind, one buffered
    second.append({"id": np.arange(-5, 0, dtype=np.int64)})
    second.commit()
    first.commit()
    got = sorted(_committed_ids(path))
    assert got == list(range(-5, 0)) + list(range(3 * CHUNK))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(
        st.one_of(st.integers(min_value=1, max_value=250), st.sampled_from(["flush"])),
        min_size=1,
        max_size=25,
    ),
    flush_bytes=st.integers(min_value=8, max_value=4000),
)
def test_any_mix_of_appends_and_flushes_keeps_every_row_in_order(
    steps: list[int | str], flush_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "FLUSH_BYTES", flush_bytes)
    url = f"mem://write-behind-{uuid.uuid4().hex}"
    ds = lakefmt.create(url, schema={"id": "int64"})
    expected: list[int] = []
    for step in steps:
        if step == "flush":
            ds.flush()
            continue
        assert isinstance(step, int)
        values = list(range(len(expected), len(expected) + step))
        ds.append({"id": np.array(values, dtype=np.int64)})
        expected.extend(values)
        assert len(ds) == len(expected)
    ds.commit()
    assert ds["id"][:].tolist() == expected
    assert lakefmt.open_read_only(url)["id"][:].tolist() == expected


def test_rows_written_behind_are_committed_at_interpreter_exit(tmp_path: Path) -> None:
    """A script that appends past the flush threshold and exits without flushing loses no
    row: the exit handler waits for the writes behind and commits them."""
    path = str(tmp_path / "ds")
    script = textwrap.dedent(
        f"""
        import numpy as np, lakefmt
        from lakefmt.dataset import writer as writer_module
        writer_module.FLUSH_BYTES = {2 * CHUNK * 8}
        ds = lakefmt.create({path!r}, schema={{"id": "int64"}})
        for k in range(7):
            ds.append({{"id": np.arange(k * {CHUNK}, (k + 1) * {CHUNK}, dtype=np.int64)}})
        assert ds._writes.behind, "some buffers should be in flight"
        keep = ds  # still referenced at exit: the exit handler, not __del__, flushes it
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert _committed_ids(path) == list(range(7 * CHUNK))
