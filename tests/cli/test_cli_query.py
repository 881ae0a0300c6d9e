"""``lakefmt query``: the four output formats, -o, and bad queries."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.cli.conftest import Run, assert_ok, assert_usage_error, assert_user_error, run_many

TQL = "SELECT id, name WHERE id >= 20 ORDER BY id DESC LIMIT 3"
EXPECTED = [
    {"id": 24, "name": "name-24"},
    {"id": 23, "name": "name-23"},
    {"id": 22, "name": "name-22"},
]


def test_query_table(cli: Run, sample_ds: str, tmp_path: Path) -> None:
    out = assert_ok(cli("query", sample_ds, TQL))
    assert "3 rows" in out
    lines = [line for line in out.splitlines() if "name-2" in line]
    assert [line.split()[1] for line in lines] == ["24", "23", "22"], out
    saved = tmp_path / "t.txt"
    assert assert_ok(cli("query", sample_ds, TQL, "-o", str(saved))).strip() == (
        f"wrote 3 rows to {saved}"
    )
    assert "name-24" in saved.read_text() and "\x1b[" not in saved.read_text()


def test_query_json(cli: Run, sample_ds: str, tmp_path: Path) -> None:
    assert json.loads(assert_ok(cli("query", sample_ds, TQL, "--format", "json"))) == EXPECTED
    saved = tmp_path / "r.json"
    assert_ok(cli("query", sample_ds, TQL, "--format", "json", "-o", str(saved)))
    assert json.loads(saved.read_text()) == EXPECTED


def test_query_csv(cli: Run, sample_ds: str, tmp_path: Path) -> None:
    out = assert_ok(cli("query", sample_ds, TQL, "--format", "csv"))
    assert out.splitlines() == ['"id","name"', '24,"name-24"', '23,"name-23"', '22,"name-22"']
    saved = tmp_path / "r.csv"
    assert_ok(cli("query", sample_ds, TQL, "--format", "csv", "--output", str(saved)))
    assert pacsv.read_csv(saved).to_pylist() == EXPECTED


def test_query_parquet(cli: Run, sample_ds: str, tmp_path: Path) -> None:
    saved = tmp_path / "r.parquet"
    assert "wrote 3 rows" in assert_ok(
        cli("query", sample_ds, TQL, "--format", "parquet", "-o", str(saved))
    )
    assert pq.read_table(saved).to_pylist() == EXPECTED
    assert_usage_error(cli("query", sample_ds, TQL, "--format", "parquet"), "-o FILE")


def test_query_aggregates_and_empty_results(sample_ds: str) -> None:
    count, empty = run_many(
        ("query", sample_ds, "SELECT COUNT(*) AS n WHERE score > 0.5", "--format", "json"),
        ("query", sample_ds, "SELECT id WHERE id < 0", "--format", "csv"),
    )
    # linspace(0, 1, 20)[10:]; the five 0.5 rows are not > 0.5
    assert json.loads(assert_ok(count)) == [{"n": 10}]
    assert assert_ok(empty).strip() == '"id"'


def test_bad_queries_are_one_line_errors(sample_ds: str, tmp_path: Path) -> None:
    results = run_many(
        ("query", sample_ds, "SELECT nope"),
        ("query", sample_ds, "SELECT * WHERE"),
        ("query", sample_ds, "SELECT * ORDER BY COSINE_SIMILARITY(name, 3)"),
        (
            "query",
            sample_ds,
            TQL,
            "-o",
            str(tmp_path / "no" / "dir" / "x.json"),
            "--format",
            "json",
        ),
    )
    assert_user_error(results[0], "nope")
    assert_user_error(results[1], "position")
    assert_user_error(results[2])
    assert_user_error(results[3])
