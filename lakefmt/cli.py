"""The ``lakefmt`` command: parsing and printing only; the work is the public API's.

Exit codes: 0 success, 1 a user error (one line on stderr, no traceback), 2 bad usage,
141 (128 + SIGPIPE, what a shell reports for a tool killed by SIGPIPE) when the reader of
standard output went away (``lakefmt info URL | head -1``): the command stops quietly.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

import lakefmt
from lakefmt.errors import LakefmtError, VersionNotFoundError


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


#: Exit code after stdout's reader went away (128 + SIGPIPE, as for tools SIGPIPE kills).
EXIT_CLOSED_PIPE = 141


def _stdout_closed() -> bool:
    """Whether standard output is a pipe or socket whose reader is gone."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, ImportError, OSError, ValueError):
        return True  # no poll() (Windows) or no real stdout: the error was writing it


def _closed_pipe() -> NoReturn:
    """Stop quietly: stdout's reader went away (``| head``), like a tool killed by SIGPIPE."""
    # Python flushes stdout again at exit and would complain on stderr: point it at devnull
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_CLOSED_PIPE)


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn lakefmt and file errors into one line on stderr and exit code 1; a closed
    standard output into a quiet exit (:data:`EXIT_CLOSED_PIPE`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # buffered output meets a closed pipe here, not at exit
            return result
        except BrokenPipeError as exc:
            if _stdout_closed():
                _closed_pipe()
            _fail(str(exc))  # another pipe (a storage connection) broke: a real error
        except LakefmtError as exc:
            _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except OSError as exc:  # missing files, a file where a folder was expected, ...
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except ValueError as exc:
            _fail(str(exc).splitlines()[0])

    return wrapper


def _creds(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    # A missing or malformed credentials file is a user error (exit 1, one line), like
    # any other missing input file.
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        _fail(f"cannot read credentials file {path}: {exc.strerror or exc}")
    except ValueError as exc:
        _fail(f"credentials file {path} is not valid JSON: {str(exc).splitlines()[0]}")
    if not isinstance(data, dict):
        _fail(f"credentials file {path} must hold a JSON object")
    return data


creds_option = click.option(
    "--creds-file", type=click.Path(dir_okay=False), help="JSON file with cloud credentials."
)


def _console() -> Any:
    from rich.console import Console

    class StdoutConsole(Console):
        """rich's console on stdout, stopping like the other commands on a closed pipe."""

        def on_broken_pipe(self) -> None:
            self.quiet = True
            _closed_pipe()

    return StdoutConsole(soft_wrap=True)


def _cell(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return f"<array {tuple(value.shape)} {value.dtype}>"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _print_table(
    columns: list[str], rows: list[list[Any]], title: str | None = None, file: Any = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    # A file gets the table at its natural width, without colour codes.
    console = _console() if file is None else Console(file=file, width=10_000, no_color=True)
    console.print(table)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(lakefmt.__version__, prog_name="lakefmt")
def main() -> None:
    """Inspect, query, import and export lakefmt datasets."""


@main.command()
@click.argument("url")
@creds_option
@_user_errors
def info(url: str, creds_file: str | None) -> None:
    """Rows, schema, versions, fragments and size of a dataset."""
    ds = lakefmt.open_read_only(url, creds=_creds(creds_file))
    stats = ds.stats
    click.echo(f"dataset   {ds.url}")
    click.echo(f"version   {ds.version} (branch {ds.current_branch.name})")
    click.echo(f"rows      {len(ds)}")
    click.echo(f"commits   {len(ds.history)}")
    click.echo(f"tags      {', '.join(ds.tags.names()) or '-'}")
    click.echo(f"branches  {', '.join(ds.branches.names())}")
    click.echo(f"fragments {stats.fragments}")
    click.echo(f"size      {stats.data_bytes} bytes in data files")
    _print_table(["column", "type"], [[c.name, repr(c.dtype)] for c in ds.schema.columns], "schema")


def _tag_target(tag: lakefmt.Tag) -> str:
    """The id a tag names, or a note that its version is gone (listing never fails on it)."""
    try:
        return tag.version
    except VersionNotFoundError:
        return "(version missing)"


@main.command()
@click.argument("url")
@click.option("--branch", default=None, help="Branch to show (default: main).")
@creds_option
@_user_errors
def log(url: str, branch: str | None, creds_file: str | None) -> None:
    """Commit history, newest first, with tags."""
    ds = lakefmt.open_read_only(url, creds=_creds(creds_file), branch=branch)
    tags: dict[str, list[str]] = {}
    for tag in ds.tags:
        tags.setdefault(_tag_target(tag), []).append(tag.name)
    rows = [
        [
            v.id,
            v.timestamp.isoformat(timespec="seconds"),
            v.message or "",
            ", ".join(tags.get(v.id, [])),
        ]
        for v in reversed(list(ds.history))
    ]
    _print_table(
        ["version", "time", "message", "tags"], rows, f"branches: {', '.join(ds.branches.names())}"
    )


@main.command()
@click.argument("url")
@click.option("-n", "--rows", default=10, show_default=True, type=click.IntRange(min=0))
@click.option("--columns", default=None, help="Comma-separated columns.")
@creds_option
@_user_errors
def head(url: str, rows: int, columns: str | None, creds_file: str | None) -> None:
    """The first rows of a dataset."""
    ds = lakefmt.open_read_only(url, creds=_creds(creds_file))
    names = columns.split(",") if columns else list(ds.schema)
    view = ds[0 : min(rows, len(ds))]
    data = {
        name: view[name].get_bytes(slice(None)) if ds.schema[name].is_media else view[name][:]
        for name in names
    }
    _print_table(names, [[data[n][i] for n in names] for i in range(len(view))])


@main.command()
@click.argument("url")
@click.argument("tql")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table"
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
@creds_option
@_user_errors
def query(url: str, tql: str, fmt: str, output: str | None, creds_file: str | None) -> None:
    """Run a TQL query on a dataset and print or save the result."""
    from lakefmt.integrations import exporters

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs -o FILE")
    ds = lakefmt.open_read_only(url, creds=_creds(creds_file))
    result = ds.query(tql)
    if fmt == "parquet":
        assert output is not None  # checked before opening the dataset
        exporters.to_parquet(result, output, progress=False)
    elif fmt == "csv":
        if output:
            exporters.to_csv(result, output, progress=False)
        else:
            sys.stdout.flush()
            exporters.to_csv(result, sys.stdout.buffer, progress=False)
            sys.stdout.buffer.flush()
    else:
        table = result.to_arrow()
        records = _json_rows(table)
        if fmt == "json":
            text = json.dumps(records, default=str)
            if output:
                with open(output, "w", encoding="utf-8") as f:
                    f.write(text + "\n")
            else:
                click.echo(text)
        else:
            rows = [list(r.values()) for r in records]
            title = f"{len(records)} rows"
            if output:
                with open(output, "w", encoding="utf-8") as f:
                    _print_table(table.column_names, rows, title, file=f)
            else:
                _print_table(table.column_names, rows, title)
    if output:
        click.echo(f"wrote {len(result)} rows to {output}")


def _json_rows(table: Any) -> list[dict[str, Any]]:
    import pyarrow as pa

    plain = pa.table(
        [
            c.storage if isinstance(c.type, pa.ExtensionType) else c
            for c in (col.combine_chunks() for col in table.columns)
        ],
        names=table.column_names,
    )
    rows = plain.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, (bytes, bytearray)):
                row[key] = f"<{len(value)} bytes>"
    return rows


def _type_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("a=int32", "b=text")`` -> ``{"a": Int32(), "b": Text()}``; bad ones are usage errors."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, type_name = pair.partition("=")
        if not sep or not name or not type_name:
            raise click.BadParameter(f"'{pair}' is not COLUMN=TYPE", param_hint="--type")
        try:
            out[name] = lakefmt.types.resolve_type(type_name.strip())
        except LakefmtError as exc:
            raise click.BadParameter(
                f"'{type_name}' is not a lakefmt type (int32, float32, text, bytes, bool, ...)",
                param_hint="--type",
            ) from exc
    return out


def _kind(src: str, given: str) -> str:
    if given != "auto":
        return given
    if os.path.isdir(src):
        return "images"
    ext = os.path.splitext(src)[1].lower()
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext in (".csv", ".tsv"):
        return "csv"
    raise click.UsageError(f"cannot tell the format of '{src}'; pass --format")


@main.command("import")
@click.argument("src")
@click.argument("dst")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "parquet", "csv", "images", "coco"]),
    default="auto",
)
@click.option(
    "--annotations", type=click.Path(dir_okay=False), help="COCO annotation JSON (--format coco)."
)
@click.option("--no-labels", is_flag=True, help="Images: do not take labels from subfolders.")
@click.option(
    "--type",
    "type_overrides",
    multiple=True,
    metavar="COLUMN=TYPE",
    help="Parquet/CSV: store COLUMN as TYPE (int32, float32, text, ...) instead of the "
    "inferred type. Repeatable.",
)
@click.option(
    "--compression",
    type=click.Choice(["jpeg", "png", "tiff"]),
    default=None,
    help="Images/COCO: the image column's format when files mix formats (others re-encoded).",
)
@click.option("--progress/--no-progress", default=None)
@creds_option
@_user_errors
def import_(
    src: str,
    dst: str,
    fmt: str,
    annotations: str | None,
    no_labels: bool,
    type_overrides: tuple[str, ...],
    compression: str | None,
    progress: bool | None,
    creds_file: str | None,
) -> None:
    """Import Parquet, CSV, an image folder or COCO into a new dataset at DST."""
    from lakefmt.integrations import importers

    schema = _type_overrides(type_overrides)
    creds = _creds(creds_file)
    if not os.path.exists(src):
        _fail(f"no such file or folder: {src}")
    if annotations and not os.path.isfile(annotations):
        _fail(f"no such annotation file: {annotations}")
    kind = "coco" if annotations and fmt == "auto" else _kind(src, fmt)
    if schema and kind not in ("parquet", "csv"):
        raise click.UsageError("--type applies to Parquet and CSV imports")
    if kind == "parquet":
        ds = importers.from_parquet(src, dst, creds=creds, schema=schema, progress=progress)
    elif kind == "csv":
        ds = importers.from_csv(src, dst, creds=creds, schema=schema, progress=progress)
    elif kind == "images":
        ds = importers.from_image_folder(
            src,
            dst,
            labels_from_subfolders=not no_labels,
            compression=compression,
            creds=creds,
            progress=progress,
        )
    else:
        if not annotations:
            raise click.UsageError("--format coco needs --annotations FILE")
        ds = importers.from_coco(
            src, annotations, dst, compression=compression, creds=creds, progress=progress
        )
    click.echo(f"imported {len(ds)} rows into {ds.url} ({ds.version})")


@main.command()
@click.argument("url")
@click.argument("dst")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "images"]), default=None)
@click.option(
    "--column", default="image", show_default=True, help="Image column (--format images)."
)
@click.option("--label-column", default=None, help="Images: subfolders by this ClassLabel column.")
@click.option("--columns", default=None, help="Parquet/CSV: comma-separated columns to export.")
@click.option(
    "--max-rows-per-file",
    type=click.IntRange(min=1),
    default=None,
    help="Parquet: write a folder DST of numbered files with at most this many rows each.",
)
@click.option("--progress/--no-progress", default=None)
@creds_option
@_user_errors
def export(
    url: str,
    dst: str,
    fmt: str | None,
    column: str,
    label_column: str | None,
    columns: str | None,
    max_rows_per_file: int | None,
    progress: bool | None,
    creds_file: str | None,
) -> None:
    """Export a dataset to Parquet, CSV or an image folder."""
    from lakefmt.integrations import exporters

    ds = lakefmt.open_read_only(url, creds=_creds(creds_file))
    kind = fmt or (
        "csv" if dst.endswith(".csv") else "parquet" if dst.endswith(".parquet") else None
    )
    if kind is None:
        raise click.UsageError("pass --format (parquet, csv or images)")
    names = columns.split(",") if columns else None
    if kind == "parquet":
        files = exporters.to_parquet(
            ds, dst, columns=names, max_rows_per_file=max_rows_per_file, progress=progress
        )
        if max_rows_per_file:
            click.echo(f"exported {len(ds)} rows to {len(files)} files in {dst}")
            return
    elif kind == "csv":
        exporters.to_csv(ds, dst, columns=names, progress=progress)
    else:
        exporters.to_image_folder(
            ds, dst, column=column, label_column=label_column, progress=progress
        )
    click.echo(f"exported {len(ds)} rows to {dst}")


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option("--src-creds-file", type=click.Path(dir_okay=False))
@click.option("--dst-creds-file", type=click.Path(dir_okay=False))
@_user_errors
def copy(src: str, dst: str, src_creds_file: str | None, dst_creds_file: str | None) -> None:
    """Copy a dataset with its history to another location or storage."""
    lakefmt.copy(src, dst, src_creds=_creds(src_creds_file), dst_creds=_creds(dst_creds_file))
    click.echo(f"copied {src} to {dst}")


@main.command()
@click.argument("url")
@click.argument("name", required=False)
@click.option(
    "--version", default=None, help="Version id or tag to tag (default: the current version)."
)
@click.option("-m", "--message", default=None)
@click.option("--delete", is_flag=True, help="Delete the tag NAME.")
@creds_option
@_user_errors
def tag(
    url: str,
    name: str | None,
    version: str | None,
    message: str | None,
    delete: bool,
    creds_file: str | None,
) -> None:
    """List tags, or create (or --delete) the tag NAME."""
    ds = lakefmt.open(url, creds=_creds(creds_file))
    if name is None:
        _print_table(
            ["tag", "version", "message"],
            [[t.name, _tag_target(t), t.message or ""] for t in ds.tags],
        )
    elif delete:
        ds.tags[name].delete()
        click.echo(f"deleted tag {name}")
    else:
        created = ds.tag(name, message=message, version=version)
        click.echo(f"tagged {created.version} as {created.name}")


@main.command()
@click.argument("url")
@click.argument("name", required=False)
@click.option(
    "--version", default=None, help="Version id or tag to branch from (default: the latest)."
)
@click.option("--delete", is_flag=True, help="Delete the branch NAME.")
@creds_option
@_user_errors
def branch(
    url: str, name: str | None, version: str | None, delete: bool, creds_file: str | None
) -> None:
    """List branches, or create (or --delete) the branch NAME."""
    ds = lakefmt.open(url, creds=_creds(creds_file))
    if name is None:
        for b in ds.branches.names():
            click.echo(b)
    elif delete:
        ds.branches[name].delete()
        click.echo(f"deleted branch {name}")
    else:
        ds.branch(name, version=version)
        click.echo(f"created branch {name}")


@main.command()
@click.argument("url")
@creds_option
@_user_errors
def optimize(url: str, creds_file: str | None) -> None:
    """Compact small fragments and apply deletions (a new commit; no row changes)."""
    ds = lakefmt.open(url, creds=_creds(creds_file))
    before = ds.stats.fragments
    version = ds.optimize()
    click.echo(f"{version}: {before} -> {ds.stats.fragments} fragments")


@main.command()
@click.argument("url")
@click.option(
    "--older-than",
    default=7 * 24 * 3600.0,
    show_default=True,
    type=float,
    help="Keep unreferenced files younger than this many seconds.",
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted.")
@creds_option
@_user_errors
def cleanup(url: str, older_than: float, dry_run: bool, creds_file: str | None) -> None:
    """Delete files and manifests no kept version references."""
    ds = lakefmt.open(url, creds=_creds(creds_file))
    report = ds.cleanup(datetime.timedelta(seconds=older_than), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    counts = f"{len(report.manifests)} manifests and {len(report.files)} files"
    click.echo(f"{verb} {counts} ({report.bytes} bytes)")
    if dry_run:  # list them, so the user can check before deleting
        for path in [*report.manifests, *report.files]:
            click.echo(f"  {path}")


@main.command()
@click.argument("url")
@click.option("--version", default=None, help="Version id or tag to check (default: the latest).")
@click.option(
    "--deep", is_flag=True, help="Also decode every image, video and mesh (slow); list bad rows."
)
@creds_option
@_user_errors
def verify(url: str, version: str | None, deep: bool, creds_file: str | None) -> None:
    """Check that every file of a version exists, opens, and matches the manifest."""
    ds = lakefmt.open_read_only(url, creds=_creds(creds_file), version=version)
    problems = ds.verify(deep=deep)
    if problems:
        for p in problems:
            click.echo(p, err=True)
        _fail(f"{len(problems)} problem(s) in {ds.url} at {ds.version}")
    click.echo(f"ok: {ds.url} at {ds.version}: {len(ds)} rows, all files intact")


@main.command()
@click.argument("url")
@click.option("--version", default=None, help="Version id or tag (default: the latest).")
@click.option("--branch", default=None, help="Branch (default: main).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "sql"]),
    default="json",
    show_default=True,
    help="json: the read plan; sql: one DuckDB SELECT over the files.",
)
@creds_option
@_user_errors
def plan(
    url: str, version: str | None, branch: str | None, fmt: str, creds_file: str | None
) -> None:
    """Print what another engine must read for a version: every file, the Parquet column
    of each column, the rows to skip and the cells to replace (spec/format.md section 15)."""
    ds = lakefmt.open_read_only(url, creds=_creds(creds_file), version=version, branch=branch)
    if fmt == "json":
        click.echo(ds.read_plan().model_dump_json(indent=2))
    else:
        click.echo(ds.duckdb_sql())


if __name__ == "__main__":
    main()
