"""lakefmt.dask on a real local cluster: two worker processes, listening on 127.0.0.1 only."""

from __future__ import annotations

import ipaddress
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lakefmt
import lakefmt.dask
from lakefmt.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    InvalidArgumentError,
    MissingDependencyError,
    QueryError,
    SchemaError,
)
from lakefmt.integrations import dask as lakefmt_dask

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
psutil = pytest.importorskip("psutil")

#: the real partition task, before a test replaces it
_WRITE_PARTITION = lakefmt_dask._write_partition


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One cluster for the module: starting one costs seconds."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _frame(start: int, count: int) -> Any:
    ids = np.arange(start, start + count, dtype=np.int64)
    return pd.DataFrame(
        {
            "id": ids,
            "score": (ids / 7).astype(np.float32),
            "text": [f"row {i}" for i in ids],
            "flag": ids % 3 == 0,
            "vec": [np.full(4, i, dtype=np.float32) for i in ids],
        }
    )


SCHEMA = {
    "id": "int64",
    "score": "float32",
    "text": "text",
    "flag": "bool",
    "vec": lakefmt.types.Embedding(4),
}


def _dask_frame(frame: Any, npartitions: int) -> Any:
    """Vectors and bytes stay objects (Dask would make strings of object columns)."""
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_pandas(frame, npartitions=npartitions)


def _same(got: Any, want: Any) -> None:
    """Equal frames (media bytes, vectors as lists), ignoring the index."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for name in want.columns:
        a = [x.tolist() if isinstance(x, np.ndarray) else x for x in got[name]]
        b = [x.tolist() if isinstance(x, np.ndarray) else x for x in want[name]]
        assert a == b, name


def test_cluster_listens_on_loopback_only(client: Any) -> None:
    pids = {psutil.Process().pid, *client.run(lambda: psutil.Process().pid).values()}
    nanny_pids = {p.ppid() for p in map(psutil.Process, pids)} - {psutil.Process().ppid()}
    listening = [
        c.laddr
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids | nanny_pids
    ]
    assert listening, "found no listening socket of the cluster"
    assert all(ipaddress.ip_address(addr.ip).is_loopback for addr in listening), listening


def test_eight_partitions_one_version(client: Any, tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    lakefmt.create(url, SCHEMA)
    before = lakefmt.open(url)._manifest.version
    written = _frame(0, 800)
    version = lakefmt.dask.write(_dask_frame(written, 8), url, message="dask")
    ds = lakefmt.open(url)
    assert ds._manifest.version == before + 1 and ds.version == version
    assert len(ds._manifest.fragments) == 8
    _same(ds.to_pandas(), written)
    back = lakefmt.dask.read(url, partition_rows=100)
    assert back.npartitions == 8
    assert back.divisions == (0, 100, 200, 300, 400, 500, 600, 700, 799)
    _same(back.compute(), written)
    assert back.loc[250:252].compute()["id"].tolist() == [250, 251, 252]


def test_create_infers_the_schema_and_retries_commit_nothing(client: Any, tmp_path: Path) -> None:
    url = str(tmp_path / "new")
    frame = _frame(0, 40).drop(columns=["vec"])
    ddf = _dask_frame(frame, 4)
    first = lakefmt.dask.write(ddf, url, mode="create", transaction_id="job")
    assert dict(lakefmt.open(url).schema.to_dict()) == {
        "id": lakefmt.types.Int64(),
        "score": lakefmt.types.Float32(),
        "text": lakefmt.types.Text(),
        "flag": lakefmt.types.Bool(),
    }
    assert lakefmt.dask.write(ddf, url, transaction_id="job") == first
    _same(lakefmt.open(url).to_pandas(), frame)
    with pytest.raises(DatasetExistsError):
        lakefmt.dask.write(ddf, url, mode="create")


def test_old_versions_branches_deletions_updates_renames(client: Any, tmp_path: Path) -> None:
    url = str(tmp_path / "history")
    ds = lakefmt.create(url, SCHEMA)
    for start in range(0, 300, 100):
        ds.append(_frame(start, 100))
        ds.flush()
    first = ds.commit("three fragments")
    ds.delete([5, 6, 150, 299])
    ds["text"][10] = "changed"
    ds["score"][0:200] = np.zeros(200, dtype=np.float32)
    ds.rename_column("text", "caption")
    second = ds.commit("edited")
    dev = ds.branch("dev").open()
    dev.append(_frame(1000, 10).rename(columns={"text": "caption"}))
    dev.commit("on dev")
    for version, branch in ((first, None), (second, None), (None, None), (None, "dev")):
        view = lakefmt.open_read_only(url, version=version, branch=branch)
        frame = lakefmt.dask.read(url, version=version, branch=branch, partition_rows=64)
        _same(frame.compute(), view.to_pandas())
        assert frame.npartitions == len(view._manifest.fragments)
    columns = lakefmt.dask.read(url, columns=["caption", "id"]).compute()
    _same(columns, lakefmt.open_read_only(url).to_pandas(["caption", "id"]))


def test_filter_is_pushed_to_each_task(client: Any, tmp_path: Path) -> None:
    url = str(tmp_path / "filtered")
    ds = lakefmt.create(url, SCHEMA)
    for start in range(0, 400, 100):
        ds.append(_frame(start, 100))
        ds.flush()
    ds.delete([9])
    frame = lakefmt.dask.read(url, filter="id % 9 = 0 AND flag", columns=["id"], partition_rows=1)
    assert frame.npartitions == 4
    want = [i for i in range(400) if i % 9 == 0 and i % 3 == 0 and i != 9]
    assert sorted(frame.compute()["id"].tolist()) == want
    with pytest.raises(QueryError):
        lakefmt.dask.read(url, filter="nope > 1")


def test_bad_arguments(client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "bad")
    lakefmt.create(url, SCHEMA)
    ddf = _dask_frame(_frame(0, 10), 2)
    with pytest.raises(InvalidArgumentError, match="mode"):
        lakefmt.dask.write(ddf, url, mode="overwrite")
    with pytest.raises(InvalidArgumentError, match="dask DataFrame"):
        lakefmt.dask.write(_frame(0, 10), url)
    with pytest.raises(DatasetNotFoundError):
        lakefmt.dask.write(ddf, str(tmp_path / "absent"))
    with pytest.raises(SchemaError):
        lakefmt.dask.write(ddf, url, schema={"id": "int32"})
    assert len(lakefmt.open(url)) == 0
    with pytest.raises(InvalidArgumentError, match="filter"):
        lakefmt.dask.read(url, filter=3)  # type: ignore[arg-type]  # the mistake tested
    with pytest.raises(InvalidArgumentError, match="target_rows"):
        lakefmt.dask.read(url, partition_rows=0)

    def missing(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr("lakefmt.integrations.dask.importlib.import_module", missing)
    with pytest.raises(MissingDependencyError, match=r"lakefmt\[dask\]"):
        lakefmt.dask.read(url)


def _write_or_die(frame: Any, url: str, schema: Any, creds: Any) -> list[str]:
    """A partition task whose first attempt dies with SIGKILL after writing part of its
    rows (a marker file per partition says whether it ran before)."""
    marker = Path(url).parent / f"attempt-{int(frame['id'].iloc[0])}"
    if not marker.exists():
        marker.write_text("1")
        lakefmt.write_fragments(url, frame.iloc[: len(frame) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return _WRITE_PARTITION(frame, url, schema, creds)


def test_worker_killed_mid_write_is_retried_once(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "killed")
    lakefmt.create(url, SCHEMA)
    written = _frame(0, 80)
    monkeypatch.setattr("lakefmt.integrations.dask._write_partition", _write_or_die)
    version = lakefmt.dask.write(_dask_frame(written, 2), url)
    ds = lakefmt.open(url)
    assert ds.version == version
    _same(ds.to_pandas(), written)  # each row once, although the half-writes landed on disk
    orphans = len(list((tmp_path / "killed" / "data").iterdir())) - len(ds._manifest.fragments)
    assert orphans == 2
    ds.cleanup(older_than=0)
    assert len(list((tmp_path / "killed" / "data").iterdir())) == len(ds._manifest.fragments)
    _same(lakefmt.open(url).to_pandas(), written)
