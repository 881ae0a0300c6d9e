"""The ``lakefmt`` console script, run for real in a subprocess: outputs and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import lakefmt
from tests.cli.conftest import (
    CLI_ENV,
    Run,
    assert_ok,
    assert_usage_error,
    assert_user_error,
    run_cli,
    run_many,
)


def _data_files(url: str) -> list[Path]:
    return sorted(Path(url).glob("data/*.parquet"))


# -- the installed entry point -----------------------------------------------------------------
def test_console_script_entry_point(sample_ds: str) -> None:
    exe = shutil.which("lakefmt")
    assert exe, "the `lakefmt` console script is not on PATH; run `pip install -e . --no-deps`"
    info = subprocess.run([exe, "info", sample_ds], capture_output=True, text=True, env=CLI_ENV)
    assert info.returncode == 0, info.stderr
    assert "rows      25" in info.stdout
    missing = subprocess.run(
        [exe, "info", sample_ds + "-nope"], capture_output=True, text=True, env=CLI_ENV
    )
    assert_user_error(missing, "no lakefmt dataset")


def test_help_lists_every_command(cli: Run) -> None:
    out = assert_ok(cli("--help"))
    for command in (
        "info",
        "log",
        "head",
        "query",
        "import",
        "export",
        "copy",
        "tag",
        "branch",
        "optimize",
        "cleanup",
        "verify",
    ):
        assert command in out
    assert lakefmt.__version__ in assert_ok(cli("--version"))


def _ids(url: str) -> tuple[str, str]:
    """The version ids of the sample's commits "first rows" and "more rows"."""
    first, more = (v.id for v in list(lakefmt.open_read_only(url).history)[-2:])
    return first, more


# -- inspecting ---------------------------------------------------------------------------------
def test_info(cli: Run, sample_ds: str) -> None:
    out = assert_ok(cli("info", sample_ds))
    assert "rows      25" in out
    assert f"version   {_ids(sample_ds)[1]} (branch main)" in out
    assert "fragments 2" in out
    assert "branches  main" in out
    size = sum(p.stat().st_size for p in _data_files(sample_ds))
    assert f"size      {size} bytes" in out
    for column, dtype in (("id", "Int64()"), ("name", "Text()"), ("score", "Float32()")):
        assert any(column in line and dtype in line for line in out.splitlines()), out


def test_log_shows_ids_messages_tags_and_branches(cli: Run, sample_ds: str) -> None:
    first, more = _ids(sample_ds)
    lakefmt.open(sample_ds).tag("release", version=first)
    lakefmt.open(sample_ds).branch("dev")
    out = assert_ok(cli("log", sample_ds))
    lines = out.splitlines()
    assert "branches: main, dev" in out or "branches: dev, main" in out
    v2 = next(line for line in lines if more in line)
    v1 = next(line for line in lines if first in line)
    assert "more rows" in v2 and "first rows" in v1 and "release" in v1
    assert lines.index(v2) < lines.index(v1), "newest first"
    dev = lakefmt.open(sample_ds, branch="dev")
    dev.append({"id": [99], "name": ["on dev"], "score": [0.0]})
    dev_commit = dev.commit("dev work")
    on_dev = assert_ok(cli("log", sample_ds, "--branch", "dev"))
    assert dev_commit in on_dev and "dev work" in on_dev and "more rows" in on_dev


def test_head(cli: Run, sample_ds: str) -> None:
    out = assert_ok(cli("head", sample_ds, "-n", "3"))
    assert "name-0" in out and "name-2" in out and "name-3" not in out
    out = assert_ok(cli("head", sample_ds, "--columns", "name"))
    assert "name-9" in out and "name-10" not in out  # default 10 rows
    assert "score" not in out


# -- versions -----------------------------------------------------------------------------------
def test_tag_create_list_delete(sample_ds: str) -> None:
    v1, v2 = _ids(sample_ds)
    latest, first = run_many(
        ("tag", sample_ds, "latest"),
        ("tag", sample_ds, "first", "--version", v1, "-m", "the first rows"),
    )
    assert f"tagged {v2} as latest" in assert_ok(latest)
    assert f"tagged {v1} as first" in assert_ok(first)
    listing, again, missing = run_many(
        ("tag", sample_ds),
        ("tag", sample_ds, "first"),
        ("tag", sample_ds, "x", "--version", "v99"),
    )
    line = next(x for x in assert_ok(listing).splitlines() if "first" in x and v1 in x)
    assert "the first rows" in line and "latest" in listing.stdout
    assert len(lakefmt.open_read_only(sample_ds, version="first")) == 20
    assert_user_error(again, "already exists")
    assert_user_error(missing, "v99")
    assert "deleted tag first" in assert_ok(run_cli("tag", sample_ds, "first", "--delete"))
    listing, gone = run_many(("tag", sample_ds), ("tag", sample_ds, "first", "--delete"))
    assert "first" not in assert_ok(listing) and "latest" in listing.stdout
    assert_user_error(gone, "first")


def test_branch_create_list_delete(sample_ds: str) -> None:
    assert assert_ok(run_cli("branch", sample_ds)).split() == ["main"]
    dev, old = run_many(
        ("branch", sample_ds, "dev"),
        ("branch", sample_ds, "old", "--version", _ids(sample_ds)[0]),
    )
    assert "created branch dev" in assert_ok(dev)
    assert "created branch old" in assert_ok(old)
    listing, again, main = run_many(
        ("branch", sample_ds),
        ("branch", sample_ds, "dev"),
        ("branch", sample_ds, "main", "--delete"),
    )
    assert sorted(assert_ok(listing).split()) == ["dev", "main", "old"]
    assert_user_error(again, "already exists")
    assert_user_error(main, "main")
    assert len(lakefmt.open_read_only(sample_ds, branch="old")) == 20
    assert len(lakefmt.open_read_only(sample_ds, branch="dev")) == 25
    assert "deleted branch dev" in assert_ok(run_cli("branch", sample_ds, "dev", "--delete"))
    assert sorted(lakefmt.open_read_only(sample_ds).branches.names()) == ["main", "old"]


# -- maintenance --------------------------------------------------------------------------------
def test_optimize_compacts_without_changing_rows(cli: Run, sample_ds: str) -> None:
    before = lakefmt.open_read_only(sample_ds).to_arrow()
    out = assert_ok(cli("optimize", sample_ds))
    assert ": 2 -> 1 fragments" in out
    after = lakefmt.open_read_only(sample_ds)
    assert after.to_arrow().equals(before)
    assert len(after._manifest.fragments) == 1


def test_cleanup_dry_run_lists_then_deletes(cli: Run, tmp_path: Path) -> None:
    url = str(tmp_path / "c")
    ds = lakefmt.create(url, schema={"a": "int64"})
    for i in range(3):
        ds.append({"a": [i]})
        ds.flush()  # uncommitted manifests: not kept once a commit follows
    ds.commit("three rows")
    ds.branch("scratch")
    scratch = lakefmt.open(url, branch="scratch")
    scratch.append({"a": [9]})
    scratch.commit("scratch row")
    ds.branches["scratch"].delete()  # its data file is now unreferenced
    del ds, scratch
    files_before = sorted(p for p in Path(url).rglob("*") if p.is_file())

    out = assert_ok(cli("cleanup", url, "--dry-run", "--older-than", "0"))
    first, *listed = out.splitlines()
    # 3 flush manifests of main, the deleted branch's commit (its tombstone stays)
    assert first.startswith("would delete 4 manifests and 1 files")
    assert len(listed) == 5 and any(line.strip().startswith("data/") for line in listed)
    assert sorted(p for p in Path(url).rglob("*") if p.is_file()) == files_before  # nothing gone

    # the default grace period (7 days) keeps these young files
    assert "would delete 0 manifests and 0 files" in assert_ok(cli("cleanup", url, "--dry-run"))
    assert assert_ok(cli("cleanup", url, "--older-than", "0")).startswith(
        "deleted 4 manifests and 1 files"
    )
    for line in listed:
        assert not (Path(url) / line.strip()).exists()
    remaining = lakefmt.open_read_only(url)
    assert remaining["a"][:].tolist() == [0, 1, 2] and remaining.verify() == []


def test_copy(cli: Run, sample_ds: str, tmp_path: Path) -> None:
    dst = str(tmp_path / "copied")
    assert f"copied {sample_ds} to {dst}" in assert_ok(cli("copy", sample_ds, dst))
    copied = lakefmt.open_read_only(dst)
    assert copied.to_arrow().equals(lakefmt.open_read_only(sample_ds).to_arrow())
    assert [v.message for v in copied.history][-2:] == ["first rows", "more rows"]
    assert_user_error(cli("copy", sample_ds, dst), "already exists")


# -- verify -------------------------------------------------------------------------------------
def test_verify_ok_and_old_versions(cli: Run, sample_ds: str) -> None:
    v1, v2 = _ids(sample_ds)
    out = assert_ok(cli("verify", sample_ds))
    assert out.startswith("ok:") and v2 in out and "25 rows" in out
    assert "20 rows" in assert_ok(cli("verify", sample_ds, "--version", v1))


def test_verify_missing_data_file(cli: Run, sample_ds: str) -> None:
    victim = _data_files(sample_ds)[0]
    victim.unlink()
    result = cli("verify", sample_ds)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert any(victim.name in line and "missing" in line for line in lines), result.stderr
    assert lines[-1].startswith("error: 1 problem(s)")


def test_verify_truncated_data_file(cli: Run, sample_ds: str) -> None:
    victim = _data_files(sample_ds)[0]
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size // 2)
    result = cli("verify", sample_ds)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    problems = [line for line in result.stderr.splitlines() if victim.name in line]
    assert any("bytes, the manifest says" in p for p in problems), result.stderr
    assert any("is damaged" in p for p in problems), result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: 2 problem(s)")


def test_verify_damaged_manifest(cli: Run, sample_ds: str) -> None:
    manifest = sorted(Path(sample_ds).glob("_versions/*.json"))[-1]
    manifest.write_bytes(manifest.read_bytes()[:-20])
    assert_user_error(cli("verify", sample_ds), "damaged")


# -- import / export (tables) ---------------------------------------------------------------------
def test_import_and_export_parquet(cli: Run, tmp_path: Path) -> None:
    table = pa.table(
        {
            "n": pa.array([1, None, 3], pa.int64()),
            "s": ["a", "b", None],
            "f": pa.array([0.5, 1.5, None], pa.float32()),
        }
    )
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    dst = str(tmp_path / "imported")
    out = assert_ok(cli("import", str(src), dst))
    assert out.strip() == f"imported 3 rows into {dst} ({lakefmt.open_read_only(dst).version})"
    assert lakefmt.open_read_only(dst).to_arrow().equals(table)

    exported, parts = tmp_path / "out.parquet", tmp_path / "parts"
    whole, split, typed = run_many(
        ("export", dst, str(exported)),
        (
            "export",
            dst,
            str(parts),
            "--format",
            "parquet",
            "--max-rows-per-file",
            "2",
            "--columns",
            "s,n",
        ),
        ("import", str(src), str(tmp_path / "typed"), "--type", "n=int32", "--type", "f=float64"),
    )
    assert "exported 3 rows" in assert_ok(whole)
    assert pq.read_table(exported).equals(table)
    assert assert_ok(split).strip() == f"exported 3 rows to 2 files in {parts}"
    assert [pq.read_table(p).num_rows for p in sorted(parts.iterdir())] == [2, 1]
    assert pq.read_table(parts).to_pydict() == {"s": ["a", "b", None], "n": [1, None, 3]}
    assert_ok(typed)
    typed_ds = lakefmt.open_read_only(str(tmp_path / "typed"))
    assert typed_ds.schema["n"] == lakefmt.types.Int32()
    assert typed_ds.schema["f"] == lakefmt.types.Float64()
    assert typed_ds["n"][:].tolist() == [1, None, 3]


def test_import_and_export_csv(cli: Run, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id,city,temp\n1,Oslo,-3.5\n2,Lima,19.25\n3,,\n")
    dst = str(tmp_path / "imported")
    assert "imported 3 rows" in assert_ok(cli("import", str(src), dst))
    ds = lakefmt.open_read_only(dst)
    assert ds["city"][:] == ["Oslo", "Lima", None] or ds["city"][:] == ["Oslo", "Lima", ""]
    out = tmp_path / "out.csv"
    assert_ok(cli("export", dst, str(out)))
    assert pacsv.read_csv(out).equals(pacsv.read_csv(src))


def test_import_and_export_errors(sample_ds: str, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.parquet"
    bogus.write_bytes(b"this is not parquet at all")
    (tmp_path / "notes.txt").write_text("x")
    results = run_many(
        ("import", str(tmp_path / "missing.parquet"), str(tmp_path / "d1")),
        ("import", str(bogus), str(tmp_path / "d2")),
        ("import", str(tmp_path / "notes.txt"), str(tmp_path / "d3")),
        ("import", str(bogus), sample_ds, "--format", "coco"),
        ("import", str(bogus), str(tmp_path / "d4"), "--type", "n=bogus"),
        ("export", sample_ds, str(tmp_path / "out")),
        ("export", sample_ds, str(tmp_path / "imgs"), "--format", "images"),
        ("export", sample_ds, str(tmp_path / "no" / "such" / "dir" / "x.csv")),
    )
    assert_user_error(results[0], "missing.parquet")
    assert_user_error(results[1])
    assert not (tmp_path / "d2").exists()  # a failed import leaves nothing
    assert_usage_error(results[2], "--format")
    assert_usage_error(results[3], "--annotations")
    assert_usage_error(results[4], "--type")
    assert_usage_error(results[5], "--format")
    assert_user_error(results[6], "image")
    assert_user_error(results[7])
    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    assert_user_error(run_cli("import", str(src), sample_ds), "already exists")


# -- errors -------------------------------------------------------------------------------------
def test_missing_dataset_is_a_one_line_error(tmp_path: Path) -> None:
    nothing = str(tmp_path / "nothing-here")
    commands = ["info", "verify", "cleanup", "tag"]
    for result in run_many(*((command, nothing) for command in commands)):
        assert_user_error(result, "no lakefmt dataset")


def test_bad_urls(sample_ds: str, tmp_path: Path) -> None:
    a_file = next(Path(sample_ds).glob("data/*.parquet"))
    results = run_many(
        ("info", "foo://bucket/x"),
        ("info", "mem://never-created"),
        ("info", ""),
        ("info", str(a_file)),  # a file, not a dataset folder
        ("info", "file://" + str(tmp_path / "nope")),
    )
    assert_user_error(results[0], "unknown storage scheme", "foo://")
    assert_user_error(results[1], "no lakefmt dataset")
    assert_user_error(results[2])
    assert_user_error(results[3])
    assert_user_error(results[4], "no lakefmt dataset")


def test_bad_columns_versions_and_branches(sample_ds: str) -> None:
    results = run_many(
        ("head", sample_ds, "--columns", "nope"),
        ("log", sample_ds, "--branch", "nope"),
        ("verify", sample_ds, "--version", "v42"),
    )
    assert_user_error(results[0], "nope")
    assert_user_error(results[1], "nope")
    assert_user_error(results[2], "v42")


def test_creds_file_errors(sample_ds: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    a_list = tmp_path / "list.json"
    a_list.write_text("[1, 2]")
    good = tmp_path / "creds.json"
    good.write_text(json.dumps({"aws_access_key_id": "x", "aws_secret_access_key": "y"}))
    results = run_many(
        ("info", sample_ds, "--creds-file", str(tmp_path / "none.json")),
        ("info", sample_ds, "--creds-file", str(broken)),
        ("head", sample_ds, "--creds-file", str(a_list)),
        ("info", sample_ds, "--creds-file", str(good)),
        ("info", sample_ds, "--creds-file", str(tmp_path)),  # a folder
    )
    assert_user_error(results[0], "credentials file", "none.json")
    assert_user_error(results[1], "not valid JSON")
    assert_user_error(results[2], "JSON object")
    assert "rows      25" in assert_ok(results[3])
    assert_usage_error(results[4])


def test_usage_errors_exit_2(sample_ds: str) -> None:
    results = run_many(
        ("info",),
        ("frobnicate", sample_ds),
        ("head", sample_ds, "--bogus"),
        ("head", sample_ds, "-n", "-1"),
        ("query", sample_ds, "SELECT *", "--format", "xml"),
    )
    assert_usage_error(results[0], "Missing argument")
    assert_usage_error(results[1], "No such command")
    assert_usage_error(results[2], "No such option")
    for result in results[3:]:
        assert_usage_error(result)


def test_verify_detects_same_size_corruption(cli: Run, sample_ds: str) -> None:
    victim = _data_files(sample_ds)[0]
    data = bytearray(victim.read_bytes())
    data[60:100] = b"x" * 40  # same size, damaged page bytes: only page checksums see it
    victim.write_bytes(bytes(data))
    result = cli("verify", sample_ds)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert any(victim.name in line and "damaged" in line for line in result.stderr.splitlines())
