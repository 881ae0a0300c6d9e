"""Two-phase writes: write_fragments on a worker, commit_fragments on the driver."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lakefmt
from lakefmt.dataset import two_phase
from lakefmt.errors import (
    ColumnMissingValueError,
    InvalidArgumentError,
    ReadOnlyError,
    SchemaError,
)
from lakefmt.format import transactions
from lakefmt.format.transactions import CommitFragments, FragmentInfo


@pytest.fixture
def url(tmp_path: Path) -> str:
    lakefmt.create(tmp_path / "ds", schema={"id": "int64", "text": "text"})
    return str(tmp_path / "ds")


def _batch(start: int, count: int) -> dict[str, list[Any]]:
    ids = list(range(start, start + count))
    return {"id": ids, "text": [f"t{i}" for i in ids]}


def _ids(url: str) -> list[int]:
    return lakefmt.open_read_only(url)["id"][:].tolist()


def test_workers_write_driver_commits_one_version(url: str) -> None:
    ds = lakefmt.open(url)
    before = ds._manifest.version
    infos = [
        info.to_json()
        for start in (0, 10, 20)
        for info in lakefmt.write_fragments(url, _batch(start, 10))
    ]
    assert _ids(url) == []  # nothing committed yet
    version = ds.commit_fragments([json.loads(i) for i in infos], message="ingest")
    assert ds._manifest.version == before + 1
    assert ds.version == version
    assert _ids(url) == list(range(30))
    assert lakefmt.open_read_only(url)["text"][:] == [f"t{i}" for i in range(30)]
    commit = ds.history[version]
    assert commit.message == "ingest"


def test_infos_round_trip_json_and_are_small(url: str) -> None:
    (info,) = lakefmt.write_fragments(url, _batch(0, 100))
    assert FragmentInfo.from_json(info.to_json()) == info
    assert info.rows == 100 and len(info.paths) == 1
    assert len(info.to_json()) < 2000
    assert {f.name for f in info.fields} == {"id", "text"}


def test_arrow_inputs_stream_in_parts(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(two_phase, "FLUSH_BYTES", 1)  # every batch a part of its own
    table = pa.table(_batch(0, 30))
    batches = table.to_batches(max_chunksize=10)
    reader = pa.RecordBatchReader.from_batches(table.schema, batches)
    from_reader = lakefmt.write_fragments(url, reader)
    from_list = lakefmt.write_fragments(url, [table.slice(0, 5), table.slice(5)])
    from_iter = lakefmt.write_fragments(url, iter(batches))
    assert [i.rows for i in from_reader] == [10, 10, 10]
    assert [i.rows for i in from_list] == [5, 25]
    ds = lakefmt.open(url)
    ds.commit_fragments([*from_reader, *from_list, *from_iter])
    assert _ids(url) == list(range(30)) * 3


def test_bad_stream_part_and_empty_input(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="stream of pyarrow"):
        lakefmt.write_fragments(url, iter([pa.table(_batch(0, 2)), {"id": [1]}]))
    assert lakefmt.write_fragments(url, {"id": [], "text": []}) == []
    with pytest.raises(ColumnMissingValueError):
        lakefmt.write_fragments(url, {"id": [1]})


def test_expected_schema_is_checked_before_writing(url: str, tmp_path: Path) -> None:
    assert lakefmt.write_fragments(url, _batch(0, 1), schema={"id": "int64"})
    files = set(os.listdir(tmp_path / "ds" / "data"))
    with pytest.raises(SchemaError, match=r"not Int32\(\)"):
        lakefmt.write_fragments(url, _batch(0, 1), schema={"id": "int32"})
    with pytest.raises(SchemaError, match="no column 'nope'"):
        lakefmt.write_fragments(url, _batch(0, 1), schema={"nope": "int64"})
    assert set(os.listdir(tmp_path / "ds" / "data")) == files


def test_same_transaction_twice_adds_rows_once(url: str) -> None:
    ds = lakefmt.open(url)
    infos = lakefmt.write_fragments(url, _batch(0, 5))
    first = ds.commit_fragments(infos, transaction_id="job-1")
    # a retried driver: same infos, a fresh handle, even fresh infos of the same job
    again = lakefmt.open(url).commit_fragments(infos, transaction_id="job-1")
    rewritten = lakefmt.write_fragments(url, _batch(0, 5))
    third = lakefmt.open(url).commit_fragments(rewritten, transaction_id="job-1")
    assert first == again == third
    assert _ids(url) == list(range(5))
    assert lakefmt.open(url)._manifest.version == ds._manifest.version
    other = lakefmt.open(url).commit_fragments(rewritten, transaction_id="job-2")
    assert other != first
    assert _ids(url) == list(range(5)) * 2
    manifest = lakefmt.open(url)._manifest
    assert [r.id for r in manifest.transactions] == ["job-1", "job-2"]
    assert "transactions" in manifest.writer_features


def test_same_infos_without_transaction_are_not_added_twice(url: str) -> None:
    ds = lakefmt.open(url)
    infos = lakefmt.write_fragments(url, _batch(0, 5))
    ds.commit_fragments(infos)
    ds.commit_fragments(infos)
    assert _ids(url) == list(range(5))
    assert "transactions" not in ds._manifest.writer_features


def test_transaction_found_past_the_remembered_ones(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transactions, "TRANSACTION_MEMORY", 3)
    ds = lakefmt.open(url)
    first_infos = lakefmt.write_fragments(url, _batch(0, 2))
    first = ds.commit_fragments(first_infos, transaction_id="t0")
    for k in range(1, 6):
        ds.commit_fragments(lakefmt.write_fragments(url, _batch(10 * k, 1)), transaction_id=f"t{k}")
        ds.append(_batch(100 + k, 1))  # flush versions in between
        ds.flush()
    assert [r.id for r in ds._manifest.transactions] == ["t3", "t4", "t5"]
    rows = _ids(url)
    assert ds.commit_fragments(first_infos, transaction_id="t0") == first
    assert _ids(url) == rows


def test_commit_rebases_over_concurrent_appends(url: str) -> None:
    driver = lakefmt.open(url)
    infos = lakefmt.write_fragments(url, _batch(0, 3))
    other = lakefmt.open(url)
    other.append(_batch(100, 2))
    other.commit()
    driver.commit_fragments(infos, transaction_id="x")  # driver's handle is stale
    assert _ids(url) == [100, 101, 0, 1, 2]
    other.append(_batch(200, 1))
    other.commit()
    assert _ids(url) == [100, 101, 0, 1, 2, 200]


def test_handle_buffer_is_flushed_first(url: str) -> None:
    ds = lakefmt.open(url)
    ds.append(_batch(50, 2))
    ds.commit_fragments(lakefmt.write_fragments(url, _batch(0, 2)))
    assert _ids(url) == [50, 51, 0, 1]


def test_schema_changes_after_writing_rebase(url: str) -> None:
    infos = lakefmt.write_fragments(url, _batch(0, 3))
    ds = lakefmt.open(url)
    ds.rename_column("text", "label")
    ds.add_column("score", "float32", default_value=0.5)
    ds.add_column("maybe", "int32")
    ds.commit()
    ds.commit_fragments(infos)
    view = lakefmt.open_read_only(url)
    assert view["label"][:] == ["t0", "t1", "t2"]
    assert view["score"][:].tolist() == [0.5, 0.5, 0.5]
    assert view["maybe"][:].tolist() == [None, None, None]


def test_dropped_column_reads_as_dropped(url: str) -> None:
    infos = lakefmt.write_fragments(url, _batch(0, 3))
    ds = lakefmt.open(url)
    ds.remove_column("text")
    ds.commit_fragments(infos)
    view = lakefmt.open_read_only(url)
    assert view.to_arrow().column_names == ["id"]
    assert view["id"][:].tolist() == [0, 1, 2]


def test_dropped_and_added_again_is_refused(url: str) -> None:
    infos = lakefmt.write_fragments(url, _batch(0, 3))
    ds = lakefmt.open(url)
    ds.remove_column("text")
    ds.add_column("text", "text", default_value="")
    before = ds._manifest.version
    with pytest.raises(SchemaError, match="dropped and added again"):
        ds.commit_fragments(infos, transaction_id="t")
    assert lakefmt.open(url)._manifest.version == before
    # nothing recorded: a later, valid commit of the same transaction lands
    ds.commit_fragments(lakefmt.write_fragments(url, _batch(0, 1)), transaction_id="t")
    assert _ids(url) == [0]


def test_changed_type_is_refused(url: str) -> None:
    (info,) = lakefmt.write_fragments(url, _batch(0, 3))
    manifest = lakefmt.open(url)._manifest
    fields = [
        f.model_copy(update={"type": {"name": "int32"}}) if f.name == "id" else f
        for f in manifest.fields
    ]
    changed = manifest.model_copy(update={"fields": fields})
    with pytest.raises(SchemaError, match="changed type"):
        CommitFragments([info]).apply(lakefmt.open(url)._storage, changed)
    # declaring an index changes the type's parameters, not its cells: it rebases
    ds = lakefmt.open(url)
    ds["text"].create_index("inverted")
    assert ds._manifest.field_by_name("text").type != info.fields[1].type
    ds.commit_fragments([info])
    assert _ids(url) == [0, 1, 2]
    found = lakefmt.query(f"SELECT * FROM \"{url}\" WHERE CONTAINS(text, 't1')")
    assert found["id"][:].tolist() == [1]


def test_edited_info_is_refused(url: str) -> None:
    (info,) = lakefmt.write_fragments(url, _batch(0, 3))
    data = json.loads(info.to_json())
    data["rows"] = 2
    ds = lakefmt.open(url)
    with pytest.raises(InvalidArgumentError, match="changed after it was written"):
        ds.commit_fragments([data])
    with pytest.raises(InvalidArgumentError, match="changed after it was written"):
        ds.commit_fragments([json.dumps(data)])
    with pytest.raises(InvalidArgumentError, match="not a lakefmt fragment info"):
        ds.commit_fragments([{"rows": 3}])
    with pytest.raises(InvalidArgumentError, match="JSON"):
        ds.commit_fragments(["{not json"])
    with pytest.raises(InvalidArgumentError, match="newer lakefmt"):
        ds.commit_fragments([{**json.loads(info.to_json()), "info_version": 9}])
    with pytest.raises(InvalidArgumentError, match="a list of infos"):
        ds.commit_fragments(info)  # type: ignore[arg-type]  # the mistake tested
    with pytest.raises(InvalidArgumentError, match="not int"):
        ds.commit_fragments([3])  # type: ignore[list-item]  # the mistake tested
    assert _ids(url) == []


def test_resealed_forgeries_are_refused(url: str) -> None:
    (info,) = lakefmt.write_fragments(url, _batch(0, 3))
    ds = lakefmt.open(url)
    escape = info.files[0].model_copy(update={"path": "../elsewhere/x.parquet"})
    cases = {
        "not a data file name": info.model_copy(update={"files": [escape]}),
        "row groups hold": info.model_copy(update={"rows": 4}),
        "listed twice": None,
        "field ids": info.model_copy(update={"fields": info.fields[:1]}),
    }
    for message, forged in cases.items():
        given = [info, info] if forged is None else [forged.sealed()]
        with pytest.raises(InvalidArgumentError, match=message):
            ds.commit_fragments(given)
    assert _ids(url) == []


def test_missing_or_changed_files_are_refused(url: str, tmp_path: Path) -> None:
    (gone,) = lakefmt.write_fragments(url, _batch(0, 3))
    (grown,) = lakefmt.write_fragments(url, _batch(3, 3))
    os.remove(tmp_path / "ds" / gone.paths[0])
    with open(tmp_path / "ds" / grown.paths[0], "ab") as f:
        f.write(b"x")
    ds = lakefmt.open(url)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        ds.commit_fragments([gone])
    with pytest.raises(InvalidArgumentError, match="was changed"):
        ds.commit_fragments([grown])
    assert _ids(url) == []


def test_infos_of_another_dataset_or_branch_are_refused(url: str, tmp_path: Path) -> None:
    lakefmt.create(tmp_path / "other", schema={"id": "int64", "text": "text"})
    foreign = lakefmt.write_fragments(tmp_path / "other", _batch(0, 1))
    ds = lakefmt.open(url)
    with pytest.raises(InvalidArgumentError, match="written for dataset"):
        ds.commit_fragments(foreign)
    ds.branch("dev")
    on_dev = lakefmt.write_fragments(url, _batch(0, 2), branch="dev")
    with pytest.raises(InvalidArgumentError, match="branch 'dev'"):
        ds.commit_fragments(on_dev)
    dev = lakefmt.open(url, branch="dev")
    dev.commit_fragments(on_dev)
    assert dev["id"][:].tolist() == [0, 1]
    assert _ids(url) == []


def test_bad_transaction_ids_and_read_only(url: str) -> None:
    infos = lakefmt.write_fragments(url, _batch(0, 1))
    ds = lakefmt.open(url)
    for bad in ("", " x", "x\n", "é", "x" * 201, 7):
        with pytest.raises(InvalidArgumentError, match="transaction_id"):
            ds.commit_fragments(infos, transaction_id=bad)  # type: ignore[arg-type]
    with pytest.raises(ReadOnlyError):
        lakefmt.open_read_only(url).commit_fragments(infos)
    assert _ids(url) == []


def test_cleanup_removes_abandoned_fragments_after_grace(url: str, tmp_path: Path) -> None:
    ds = lakefmt.open(url)
    kept = lakefmt.write_fragments(url, _batch(0, 2))
    ds.commit_fragments(kept)
    abandoned = lakefmt.write_fragments(url, _batch(10, 2))
    data = tmp_path / "ds" / "data"
    ds.cleanup()  # default grace: a write in flight keeps its files
    assert (data / abandoned[0].paths[0].split("/")[1]).exists()
    report = ds.cleanup(older_than=0)
    assert not (data / abandoned[0].paths[0].split("/")[1]).exists()
    assert abandoned[0].paths[0] in report.files
    assert (data / kept[0].paths[0].split("/")[1]).exists()
    with pytest.raises(InvalidArgumentError, match="cleanup removed it"):
        ds.commit_fragments(abandoned)
    assert _ids(url) == [0, 1]


def test_transactions_survive_compaction_branches_and_merges(url: str) -> None:
    ds = lakefmt.open(url)
    infos = lakefmt.write_fragments(url, _batch(0, 2))
    first = ds.commit_fragments(infos, transaction_id="t")
    ds.optimize()
    dev = ds.branch("dev").open()
    dev.append(_batch(10, 1))
    dev.commit()
    assert dev.commit_fragments(infos, transaction_id="t") == first  # inherited by dev
    ds.merge("dev")
    assert [r.id for r in ds._manifest.transactions] == ["t"]
    assert ds.commit_fragments(infos, transaction_id="t") == first
    assert _ids(url) == [0, 1, 10]


def test_retry_after_compaction_and_cleanup_finds_the_transaction(url: str) -> None:
    ds = lakefmt.open(url)
    infos = lakefmt.write_fragments(url, _batch(0, 2))
    first = ds.commit_fragments(infos, transaction_id="t")
    ds.append(_batch(5, 1))
    ds.optimize()  # the head no longer lists the infos' files: only the record tells
    ds.cleanup(older_than=0)
    assert lakefmt.open(url).commit_fragments(infos, transaction_id="t") == first
    assert _ids(url) == [0, 1, 5]


def test_no_infos(url: str) -> None:
    ds = lakefmt.open(url)
    head = ds.version
    assert ds.commit_fragments([]) == head  # nothing to do: no version
    assert lakefmt.open(url)._manifest.version == ds._manifest.version
    empty_job = ds.commit_fragments([], transaction_id="empty")  # recorded: a retry adds nothing
    assert empty_job != head
    late = lakefmt.write_fragments(url, _batch(0, 1))
    assert ds.commit_fragments(late, "x", "empty") == empty_job
    assert _ids(url) == []
