"""Bad input to every public entry point gives a lakefmt error naming the problem (issue 14).

The rule (issue 14, "Done when"): no public API raises a bare ``KeyError``, ``IndexError``,
``AttributeError``, ``JSONDecodeError``, ``UnicodeDecodeError`` (or ``ValueError``/
``TypeError``) for bad input or malformed files. Each refusal is a subclass of
:class:`lakefmt.errors.LakefmtError` whose message names the problem (and the column or row
where there is one); where Python convention expects a builtin (an index out of range, a
missing column or key, an unknown attribute), the error is also that builtin. A refused call
leaves the committed data, tags and branches as they were, and leaves nothing buffered that
a later flush would write.

The tables below call the dataset API (``Dataset``, ``ReadOnlyDataset``, views, ``Column``,
``Row``, ``History``, ``Tags``, ``Branches``, metadata), the top-level functions, the column
types, the importers and exporters and the CLI, on a local and a ``mem://`` dataset; a
hypothesis test throws arbitrary Python values (and numpy scalars of every dtype) at every
column type; the last table damages each JSON file of a dataset in ways
``tests/format/test_integrity_cases.py`` does not (empty, not UTF-8, JSON of the wrong shape,
fields of the wrong type) and requires a correct read or a ``FormatError`` naming the file.
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import lakefmt
from lakefmt import types as T
from lakefmt.cli import main as cli_main
from lakefmt.errors import FormatError, LakefmtError
from lakefmt.format import layout
from lakefmt.format.defaults import encode_default

# -- the dataset every case runs against ----------------------------------------------------


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()

SCHEMA: dict[str, Any] = {
    "id": "int64",
    "u8": "uint8",
    "f": "float32",
    "s": "text",
    "b": "bytes",
    "ok": "bool",
    "lbl": T.ClassLabel(class_names=["a", "b", "c"]),
    "emb": T.Embedding(4),
    "arr": T.Array("float32", shape=(2,)),
    "seq": T.Sequence("int32"),
    "st": T.Struct({"x": "int32"}),
    "d": T.Dict(),
    "box": T.BoundingBox(),
    "img": T.Image(sample_compression="png"),
    "lnk": T.Link(T.Bytes()),
}


def _rows(link: str) -> dict[str, Any]:
    return {
        "id": [1, 2, 3],
        "u8": [1, 2, 3],
        "f": [1.0, 2.0, 3.0],
        "s": ["a", "b", "c"],
        "b": [b"x", b"y", b"z"],
        "ok": [True, False, True],
        "lbl": ["a", "b", "c"],
        "emb": np.ones((3, 4), np.float32),
        "arr": np.ones((3, 2), np.float32),
        "seq": [[1], [2, 3], []],
        "st": [{"x": 1}, {"x": 2}, {"x": 3}],
        "d": [{"k": 1}, {}, {"z": [1]}],
        "box": [[[0, 0, 1, 1]]] * 3,
        "img": [PNG] * 3,
        "lnk": [link] * 3,
    }


def _build(url: str, link: str) -> None:
    ds = lakefmt.create(url, schema=SCHEMA)
    ds.append(_rows(link))
    ds.commit("first")
    ds.tag("t1")
    ds.branch("dev")
    ds["id"][0] = 10
    ds.commit("second")


@pytest.fixture(scope="module", params=["local", "mem"])
def dataset_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("bad-input")
    link = root / "linked.bin"
    link.write_bytes(b"linked bytes")
    url = str(root / "ds") if request.param == "local" else f"mem://bad-input-{uuid.uuid4().hex}"
    _build(url, str(link))
    return url


def _state(url: str) -> tuple[Any, ...]:
    """Everything committed: main's head and its rows, dev's head, tags, history."""
    main = lakefmt.open_read_only(url)
    dev = lakefmt.open_read_only(url, branch="dev")
    return (
        main.version,
        main.to_arrow(),
        dev.version,
        dev.to_arrow(),
        {t.name: t.version for t in main.tags},
        main.branches.names(),
        [v.id for v in main.history],
        dict(main.metadata),
        {c: dict(main[c].metadata) for c in main.schema},
    )


def _assert_unchanged(url: str, before: tuple[Any, ...]) -> None:
    after = _state(url)
    assert after[0] == before[0], "the refused call made a version"
    for got, want in zip(after, before, strict=True):
        if isinstance(want, pa.Table):
            assert got.equals(want), "the refused call changed committed rows"
        else:
            assert got == want, "the refused call changed committed state"


def _refused(
    url: str,
    call: Callable[[], Any],
    needles: tuple[str, ...],
    builtin: type[BaseException] | None,
    writer: lakefmt.Dataset | None = None,
) -> LakefmtError:
    """Run ``call``: it must raise a LakefmtError naming ``needles`` and change nothing."""
    before = _state(url)
    with pytest.raises(LakefmtError) as info:
        call()
    exc = info.value
    message = str(exc)
    for needle in needles:
        assert needle in message, f"{type(exc).__name__} does not name {needle!r}: {message}"
    if builtin is not None:
        assert isinstance(exc, builtin), f"{type(exc).__name__} is not a {builtin.__name__}"
    if writer is not None:
        writer.flush()  # nothing of the refused call may wait in the buffer
    _assert_unchanged(url, before)
    return exc


# -- cases: (id, call(ds, url, other_url), words the message must contain, builtin) ---------

Call = Callable[[Any, str, str], Any]
CASES: list[tuple[str, Call, tuple[str, ...], type[BaseException] | None]] = []


def case(
    name: str, *needles: str, builtin: type[BaseException] | None = None
) -> Callable[[Call], Call]:
    def register(fn: Call) -> Call:
        CASES.append((name, fn, needles, builtin))
        return fn

    return register


def _setitem(target: Any, key: Any, value: Any) -> None:
    target[key] = value


def _delitem(target: Any, key: Any) -> None:
    del target[key]


# row indexing of datasets, views, columns and rows
for label, key, needles, builtin in [
    ("int past the end", 3, ("3", "out of range"), IndexError),
    ("negative past the start", -4, ("-4", "out of range"), IndexError),
    ("huge int", 2**70, ("out of range",), IndexError),
    ("numpy int past the end", np.int8(9), ("9", "out of range"), IndexError),
    ("list with an index past the end", [0, 7], ("7", "out of range"), IndexError),
    ("numpy array past the end", np.array([-9]), ("-9", "out of range"), IndexError),
    ("mask of the wrong length", [True, False], ("mask", "2"), IndexError),
    ("float", 1.5, ("float",), TypeError),
    ("numpy float", np.float64(1.0), ("float",), TypeError),
    ("numpy timedelta", np.timedelta64(1, "s"), ("timedelta64",), TypeError),
    ("numpy bool", np.bool_(True), ("bool",), TypeError),
    ("0-d float array", np.array(1.5), ("float",), TypeError),
    ("0-d int array past the end", np.array(5), ("5", "out of range"), IndexError),
    ("None", None, ("NoneType",), TypeError),
    ("bytes", b"id", ("bytes",), TypeError),
    ("list of floats", [0.5], ("float",), TypeError),
    ("list of strings", ["id"], ("str",), TypeError),
    ("tuple mixing", ("id", 0), ("integers",), TypeError),
    ("dict", {0: 1}, ("dict",), TypeError),
    ("slice step 0", slice(None, None, 0), ("step",), ValueError),
    ("slice of floats", slice(0.5, 2), ("slice",), TypeError),
    ("slice of strings", slice("a", "b"), ("slice",), TypeError),
    ("ragged list of lists", [[0, 1], [1]], ("1-D",), TypeError),
    ("list of lists", [[0, 1], [1, 2]], ("1-D",), TypeError),
    ("list of huge ints", [0, 2**70], ("out of range",), IndexError),
    ("2-D mask", np.zeros((3, 3), bool), ("1-D",), TypeError),
]:
    for where, get in [
        ("ds", lambda ds: ds),
        ("column", lambda ds: ds["id"]),
        ("view", lambda ds: ds[0:3]),
        ("view of a list", lambda ds: ds[[0, 1, 2]]),
    ]:
        case(f"{where}[{label}]", *needles, builtin=builtin)(
            lambda ds, url, other, get=get, key=key: get(ds)[key]
        )
    case(f"column[{label}] = 1", *needles, builtin=builtin)(
        lambda ds, url, other, key=key: _setitem(ds["id"], key, 1)
    )
    case(f"delete({label})", *needles, builtin=builtin)(
        lambda ds, url, other, key=key: ds.delete(key)
    )
    case(f"get_bytes({label})", *needles, builtin=builtin)(
        lambda ds, url, other, key=key: ds["b"].get_bytes(key)
    )

# unknown columns wherever a column is named
for label, fn in [
    ("ds['nope']", lambda ds, url, other: ds["nope"]),
    ("view['nope']", lambda ds, url, other: ds[0:2]["nope"]),
    ("row['nope']", lambda ds, url, other: ds[0]["nope"]),
    ("row['nope'] = 1", lambda ds, url, other: _setitem(ds[0], "nope", 1)),
    ("row.get_bytes('nope')", lambda ds, url, other: ds[0].get_bytes("nope")),
    ("schema['nope']", lambda ds, url, other: ds.schema["nope"]),
    ("remove_column('nope')", lambda ds, url, other: ds.remove_column("nope")),
    ("rename_column('nope', 'x')", lambda ds, url, other: ds.rename_column("nope", "x")),
    ("to_arrow(['nope'])", lambda ds, url, other: ds.to_arrow(["nope"])),
    ("to_arrow('nope')", lambda ds, url, other: ds.to_arrow("nope")),
    ("to_batches(['nope'])", lambda ds, url, other: ds.to_batches(["nope"])),
    ("to_pandas(['nope'])", lambda ds, url, other: ds.to_pandas(["nope"])),
    ("batches(columns=['nope'])", lambda ds, url, other: next(ds.batches(columns=["nope"]))),
    ("append with an unknown column", lambda ds, url, other: ds.append({**_one(), "nope": [1]})),
    ("append rows with an unknown column", lambda ds, url, other: ds.append([{"nope": 1}])),
    ("column metadata of 'nope'", lambda ds, url, other: ds["nope"].metadata),
]:
    case(label, "nope", builtin=KeyError)(fn)

for label, key in [("int", 5), ("None", None), ("bytes", b"id"), ("list", ["id"])]:
    case(f"schema[{label}]", builtin=KeyError)(lambda ds, url, other, key=key: ds.schema[key])
    case(f"row[{label}]", builtin=KeyError)(lambda ds, url, other, key=key: ds[0][key])
    case(f"remove_column({label})", builtin=KeyError)(
        lambda ds, url, other, key=key: ds.remove_column(key)
    )
    case(f"to_arrow([{label}])", builtin=KeyError)(
        lambda ds, url, other, key=key: ds.to_arrow([key])
    )


def _one(**values: Any) -> dict[str, Any]:
    """A one-row column-batch append: row 0 of the fixture's rows, with ``values`` instead."""
    row = {k: [v[0]] for k, v in _rows("/nonexistent/link").items()}
    row.update({k: [v] for k, v in values.items()})
    return row


# values of the wrong type for each column type (appends and updates)
BAD_VALUES: list[tuple[str, Any, str]] = [
    ("id", "seven", "seven"),
    ("id", 1.5, "1.5"),
    ("id", 2**64, "id"),
    ("id", b"1", "id"),
    ("id", [1], "id"),
    ("id", {"a": 1}, "id"),
    ("id", np.float64(1.5), "id"),
    ("id", np.complex128(1 + 2j), "id"),
    ("id", np.array([1 + 2j])[0:1], "id"),
    ("id", np.datetime64("2020-01-01"), "id"),
    ("id", np.uint64(2**64 - 1), "id"),
    ("u8", -1, "u8"),
    ("u8", 256, "u8"),
    ("u8", np.int64(300), "u8"),
    ("f", "x", "f"),
    ("f", 1e308, "f"),
    ("f", [1.0], "f"),
    ("f", np.complex64(1), "f"),
    ("s", 5, "s"),
    ("s", b"bytes", "s"),
    ("s", "\ud800", "s"),
    ("s", ["a"], "s"),
    ("b", 5, "b"),
    ("b", 1.5, "b"),
    ("ok", "yes", "ok"),
    ("ok", 2, "ok"),
    ("ok", [True], "ok"),
    ("lbl", "zebra", "zebra"),
    ("lbl", 7, "7"),
    ("lbl", -1, "lbl"),
    ("lbl", 1.5, "lbl"),
    ("lbl", np.uint64(2**64 - 1), "lbl"),
    ("emb", [1.0, 2.0], "emb"),
    ("emb", "abcd", "emb"),
    ("emb", 5, "emb"),
    ("emb", [[1.0] * 4] * 2, "emb"),
    ("emb", ["a", "b", "c", "d"], "emb"),
    ("emb", [1e308] * 4, "emb"),
    ("arr", [1.0, 2.0, 3.0], "arr"),
    ("arr", "ab", "arr"),
    ("arr", {"a": 1}, "arr"),
    ("seq", [1.5], "seq"),
    ("seq", "abc", "seq"),
    ("seq", 5, "seq"),
    ("seq", [[1]], "seq"),
    ("seq", [2**40], "seq"),
    ("st", {"y": 1}, "y"),
    ("st", 5, "st"),
    ("st", {"x": "one"}, "st"),
    ("st", [1], "st"),
    ("d", {1: 2}, "d"),
    ("d", {"k": object()}, "d"),
    ("d", {"k": float("nan")}, "d"),
    ("d", {"k": b"\xff"}, "d"),
    ("box", [1.0, 2.0, 3.0], "box"),
    ("box", "box", "box"),
    ("box", [[1, 2, 3, 4, 5]], "box"),
    ("img", b"garbage", "img"),
    ("img", "not an image", "img"),
    ("img", 5, "img"),
    ("img", PNG[:20], "img"),
    ("img", np.zeros((2, 2, 7), np.uint8), "img"),
    ("img", np.zeros((2, 2, 3), np.float64), "img"),
    ("lnk", 5, "lnk"),
    ("lnk", b"/x", "lnk"),
    ("lnk", "\ud800", "lnk"),
]
for column, value, needle in BAD_VALUES:
    label = f"{column}={value!r}"[:60]
    case(f"append {label}", needle)(
        lambda ds, url, other, column=column, value=value: ds.append(_one(**{column: value}))
    )
    case(f"append row {label}", needle)(
        lambda ds, url, other, column=column, value=value: ds.append(
            [{k: v[0] for k, v in _one(**{column: value}).items()}]
        )
    )
    case(f"update {label}", needle)(
        lambda ds, url, other, column=column, value=value: _setitem(ds[column], 1, value)
    )
    if not (column == "seq" and isinstance(value, int)):  # [5, 5] is one Sequence value
        case(f"update rows {label}", needle)(
            lambda ds, url, other, column=column, value=value: _setitem(
                ds[column], [0, 1], [value, value]
            )
        )
    case(f"row update {label}", needle, "row 2")(
        lambda ds, url, other, column=column, value=value: _setitem(ds[2], column, value)
    )
    case(f"add_column default {label}", needle.replace(column, "new"))(
        lambda ds, url, other, column=column, value=value: ds.add_column(
            "new", SCHEMA[column], default_value=value
        )
    )

# malformed appends
for label, data, needles in [
    ("an int", 5, ("int",)),
    ("a string", "rows", ("str",)),
    ("None", None, ("None",)),
    ("a list of ints", [1, 2], ("int",)),
    ("a list of strings", ["a"], ("str",)),
    ("a complex array", {**_one(), "id": np.array([1 + 0j])}, ("id", "complex")),
    ("a datetime array", {**_one(), "id": np.array(["2020-01-01"], "datetime64[D]")}, ("id",)),
    ("a string array", {**_one(), "f": np.array(["1.5"])}, ("f",)),
    ("uneven columns", {**_one(), "id": [1, 2]}, ("id",)),
    ("a missing column", {k: v for k, v in _one().items() if k != "u8"}, ("u8",)),
    ("a row missing a column", [{"id": 1}], ("u8",)),
    ("rows that are not dicts", [{**{k: v[0] for k, v in _one().items()}}, 5], ("int",)),
    ("a column name that is not a string", {**_one(), 5: [1]}, ("5",)),
    ("an arrow table of other columns", pa.table({"zz": [1]}), ("zz",)),
    ("an arrow table of the wrong type", pa.table({"id": ["x"]}), ("id",)),
]:
    case(f"append {label}", *needles)(lambda ds, url, other, data=data: ds.append(data))

# schema changes
for label, fn, needles in [
    ("add an existing column", lambda ds: ds.add_column("id", "int32"), ("id",)),
    ("add an empty name", lambda ds: ds.add_column("", "int32"), ("name",)),
    ("add a name that is an int", lambda ds: ds.add_column(5, "int32"), ("5",)),
    ("add a name that is None", lambda ds: ds.add_column(None, "int32"), ("None",)),
    ("add an unknown type", lambda ds: ds.add_column("n", "int33"), ("int33",)),
    ("add a type that is an int", lambda ds: ds.add_column("n", 5), ("5",)),
    ("add a type that is None", lambda ds: ds.add_column("n", None), ("None",)),
    ("add a type that is a dict", lambda ds: ds.add_column("n", {"a": 1}), ("n",)),
    ("rename onto an existing column", lambda ds: ds.rename_column("id", "s"), ("s",)),
    ("rename to an empty name", lambda ds: ds.rename_column("id", ""), ("name",)),
    ("rename to an int", lambda ds: ds.rename_column("id", 5), ("5",)),
    ("rename to itself", lambda ds: ds.rename_column("id", "id"), ("id",)),
]:
    case(label, *needles)(lambda ds, url, other, fn=fn: fn(ds))

# column types built with bad arguments
for label, make in [
    ("Embedding(0)", lambda: T.Embedding(0)),
    ("Embedding('x')", lambda: T.Embedding("x")),
    ("Embedding(4, index_type='nope')", lambda: T.Embedding(4, index_type="nope")),
    ("Embedding(4, dtype='complex64')", lambda: T.Embedding(4, dtype="complex64")),
    ("Array()", lambda: T.Array("float32")),
    ("Array(shape=(0,))", lambda: T.Array("float32", shape=(0,))),
    ("Array(dimensions=-1)", lambda: T.Array("float32", dimensions=-1)),
    ("Array('nope', dimensions=1)", lambda: T.Array("nope", dimensions=1)),
    ("ClassLabel(class_names=[1])", lambda: T.ClassLabel(class_names=[1])),  # type: ignore[list-item]
    ("ClassLabel(class_names=['a', 'a'])", lambda: T.ClassLabel(class_names=["a", "a"])),
    ("ClassLabel('float32')", lambda: T.ClassLabel("float32")),
    ("Image('int8')", lambda: T.Image("int8")),
    ("Image(sample_compression='gif')", lambda: T.Image(sample_compression="gif")),
    ("Video('avi')", lambda: T.Video("avi")),
    ("BoundingBox(format='nope')", lambda: T.BoundingBox(format="nope")),
    ("BoundingBox(bbox_type='nope')", lambda: T.BoundingBox(bbox_type="nope")),
    ("Point(dimensions=0)", lambda: T.Point(dimensions=0)),
    ("Polygon(dimensions='2')", lambda: T.Polygon(dimensions="2")),  # type: ignore[arg-type]
    ("SegmentMask(sample_compression='jpeg')", lambda: T.SegmentMask(sample_compression="jpeg")),
    ("BinaryMask(sample_compression='jpeg')", lambda: T.BinaryMask(sample_compression="jpeg")),
    ("Sequence('nope')", lambda: T.Sequence("nope")),
    ("Struct({})", lambda: T.Struct({})),
    ("Struct({'': 'int32'})", lambda: T.Struct({"": "int32"})),
    ("Struct({'a': 'nope'})", lambda: T.Struct({"a": "nope"})),
    ("Text(index_type='nope')", lambda: T.Text(index_type="nope")),
    ("Link('nope')", lambda: T.Link("nope")),
    ("resolve_type('nope')", lambda: T.resolve_type("nope")),
    ("resolve_type(object())", lambda: T.resolve_type(object())),
]:
    case(f"type {label}", builtin=None)(lambda ds, url, other, make=make: make())

# metadata
for label, fn, needles, builtin in [
    ("metadata['nope']", lambda ds: ds.metadata["nope"], ("nope",), KeyError),
    ("del metadata['nope']", lambda ds: _delitem(ds.metadata, "nope"), ("nope",), KeyError),
    ("metadata[5] = 1", lambda ds: _setitem(ds.metadata, 5, 1), ("int",), None),
    ("metadata['k'] = object()", lambda ds: _setitem(ds.metadata, "k", object()), ("k",), None),
    ("metadata['k'] = nan", lambda ds: _setitem(ds.metadata, "k", float("nan")), ("k",), None),
    ("column metadata['nope']", lambda ds: ds["id"].metadata["nope"], ("nope",), KeyError),
    (
        "del column metadata['nope']",
        lambda ds: _delitem(ds["id"].metadata, "nope"),
        ("nope",),
        KeyError,
    ),
    (
        "column metadata['k'] = set()",
        lambda ds: _setitem(ds["id"].metadata, "k", {1}),
        ("k",),
        None,
    ),
]:
    case(label, *needles, builtin=builtin)(lambda ds, url, other, fn=fn: fn(ds))

# attributes
for label, fn, needles in [
    ("set an unknown attribute", lambda ds: setattr(ds, "auto_commit_enabled", True), ("auto",)),
    ("set a read-only property", lambda ds: setattr(ds, "version", "x"), ("version",)),
    ("set url", lambda ds: setattr(ds, "url", "mem://x"), ("url",)),
]:
    case(label, *needles, builtin=AttributeError)(lambda ds, url, other, fn=fn: fn(ds))

# versions, tags, branches
BAD_ID = "0123456789abcdef"
for label, fn, needles in [
    ("history[99]", lambda ds: ds.history[99], ("99",)),
    ("history[-99]", lambda ds: ds.history[-99], ("-99",)),
    ("history['nope']", lambda ds: ds.history["nope"], ("nope",)),
    ("history[unknown id]", lambda ds: ds.history[BAD_ID], (BAD_ID,)),
    ("history[1.5]", lambda ds: ds.history[1.5], ("1.5",)),
    ("history[None]", lambda ds: ds.history[None], ("None",)),
    ("tags['nope']", lambda ds: ds.tags["nope"], ("nope",)),
    ("tags[5]", lambda ds: ds.tags[5], ("5",)),
    ("tags[None]", lambda ds: ds.tags[None], ("None",)),
    ("tags['../x']", lambda ds: ds.tags["../x"], ("../x",)),
    ("tags['']", lambda ds: ds.tags[""], ("tag",)),
    ("branches['nope']", lambda ds: ds.branches["nope"], ("nope",)),
    ("branches[5]", lambda ds: ds.branches[5], ("5",)),
    ("tag an existing name", lambda ds: ds.tag("t1"), ("t1",)),
    ("tag ''", lambda ds: ds.tag(""), ("tag",)),
    ("tag 'a b'", lambda ds: ds.tag("a b"), ("a b",)),
    ("tag '../x'", lambda ds: ds.tag("../x"), ("../x",)),
    ("tag 5", lambda ds: ds.tag(5), ("5",)),
    ("tag None", lambda ds: ds.tag(None), ("None",)),
    ("tag a version id", lambda ds: ds.tag(BAD_ID), (BAD_ID,)),
    ("tag a huge name", lambda ds: ds.tag("x" * 100_000), ("tag",)),
    ("tag an unknown version", lambda ds: ds.tag("n", version="nope"), ("nope",)),
    ("tag an unknown version id", lambda ds: ds.tag("n", version=BAD_ID), (BAD_ID,)),
    ("tag version 5", lambda ds: ds.tag("n", version=5), ("5",)),
    ("tag with a message that is an int", lambda ds: ds.tag("n", message=5), ("message",)),
    ("branch an existing name", lambda ds: ds.branch("dev"), ("dev",)),
    ("branch main", lambda ds: ds.branch("main"), ("main",)),
    ("branch 'a b'", lambda ds: ds.branch("a b"), ("a b",)),
    ("branch 5", lambda ds: ds.branch(5), ("5",)),
    ("branch from an unknown version", lambda ds: ds.branch("n", version="nope"), ("nope",)),
    ("merge an unknown branch", lambda ds: ds.merge("nope"), ("nope",)),
    ("merge 5", lambda ds: ds.merge(5), ("5",)),
    ("merge itself", lambda ds: ds.merge("main"), ("main",)),
    ("merge resolve='bogus'", lambda ds: ds.merge("dev", resolve="bogus"), ("bogus",)),
    ("merge resolve=None", lambda ds: ds.merge("dev", resolve=None), ("None",)),
    ("merge resolve=1", lambda ds: ds.merge("dev", resolve=1), ("1",)),
    ("delete main", lambda ds: ds.branches["main"].delete(), ("main",)),
    ("commit message 5", lambda ds: ds.commit(5), ("message",)),
    ("cleanup older_than=-1", lambda ds: ds.cleanup(older_than=-1), ("older_than",)),
    ("cleanup older_than='x'", lambda ds: ds.cleanup(older_than="x"), ("older_than",)),
    ("cleanup older_than=None", lambda ds: ds.cleanup(older_than=None), ("older_than",)),
    ("batches(batch_size=0)", lambda ds: ds.batches(batch_size=0), ("batch_size",)),
    ("batches(batch_size=-1)", lambda ds: ds.batches(batch_size=-1), ("batch_size",)),
    ("batches(batch_size='x')", lambda ds: ds.batches(batch_size="x"), ("batch_size",)),
    ("batches(batch_size=1.5)", lambda ds: ds.batches(batch_size=1.5), ("batch_size",)),
    ("to_batches(batch_size=0)", lambda ds: ds.to_batches(batch_size=0), ("batch_size",)),
    ("query syntax error", lambda ds: ds.query("SELEC *"), ("SELEC",)),
    ("query of an int", lambda ds: ds.query(5), ("int",)),
    ("query None", lambda ds: ds.query(None), ("None",)),
    ("query an unknown column", lambda ds: ds.query("SELECT * WHERE nope > 1"), ("nope",)),
    ("query empty", lambda ds: ds.query(""), ("query",)),
    ("explain an int", lambda ds: ds.explain(5), ("int",)),
]:
    case(label, *needles)(lambda ds, url, other, fn=fn: fn(ds))

# top-level functions: URLs, versions, branches, credentials
for label, fn, needles in [
    ("open a missing dataset", lambda url, other: lakefmt.open(other), ("absent",)),
    ("open an unknown scheme", lambda url, other: lakefmt.open("nosuch://x"), ("nosuch",)),
    ("open an int", lambda url, other: lakefmt.open(5), ("5",)),
    ("open None", lambda url, other: lakefmt.open(None), ("None",)),
    ("open ''", lambda url, other: lakefmt.open(""), ("URL",)),
    ("open s3 without a bucket", lambda url, other: lakefmt.open("s3://"), ("s3://",)),
    ("open version 'nope'", lambda url, other: lakefmt.open(url, version="nope"), ("nope",)),
    ("open version ''", lambda url, other: lakefmt.open(url, version=""), ("version",)),
    ("open version 5", lambda url, other: lakefmt.open(url, version=5), ("5",)),
    ("open an unknown id", lambda url, other: lakefmt.open(url, version=BAD_ID), (BAD_ID,)),
    ("open version 'v1'", lambda url, other: lakefmt.open(url, version="v1"), ("v1",)),
    ("open version 'v-1'", lambda url, other: lakefmt.open(url, version="v-1"), ("v-1",)),
    ("open version 'dev/v99'", lambda url, other: lakefmt.open(url, version="dev/v99"), ("v99",)),
    ("open a huge version", lambda url, other: lakefmt.open(url, version="9" * 5000), ("9999",)),
    ("open branch 'nope'", lambda url, other: lakefmt.open(url, branch="nope"), ("nope",)),
    ("open branch 5", lambda url, other: lakefmt.open(url, branch=5), ("5",)),
    ("open branch '../x'", lambda url, other: lakefmt.open(url, branch="../x"), ("../x",)),
    ("open creds 'x'", lambda url, other: lakefmt.open(url, creds="x"), ("creds",)),
    ("open creds [1]", lambda url, other: lakefmt.open(url, creds=[1]), ("creds",)),
    (
        "open s3 creds typo",
        lambda url, other: lakefmt.open("s3://b/x", creds={"aws_key": "k"}),
        ("aws_key",),
    ),
    ("open s3 creds not str", lambda url, other: lakefmt.open("s3://b/x", creds={5: "k"}), ("5",)),
    (
        "read-only open version 'nope'",
        lambda url, other: lakefmt.open_read_only(url, version="nope"),
        ("nope",),
    ),
    (
        "read-only open branch 'nope'",
        lambda url, other: lakefmt.open_read_only(url, branch="nope"),
        ("nope",),
    ),
    ("create over a dataset", lambda url, other: lakefmt.create(url), ("already exists",)),
    (
        "create with a bad type",
        lambda url, other: lakefmt.create(other, schema={"a": "nope"}),
        ("nope",),
    ),
    (
        "create with a None type",
        lambda url, other: lakefmt.create(other, schema={"a": None}),
        ("a",),
    ),
    (
        "create with an int name",
        lambda url, other: lakefmt.create(other, schema={5: "int32"}),
        ("5",),
    ),
    (
        "create with a list schema",
        lambda url, other: lakefmt.create(other, schema=["a"]),
        ("schema",),
    ),
    ("create with a str schema", lambda url, other: lakefmt.create(other, schema="a"), ("schema",)),
    ("create creds 'x'", lambda url, other: lakefmt.create(other, creds="x"), ("creds",)),
    ("exists creds 'x'", lambda url, other: lakefmt.exists(url, creds="x"), ("creds",)),
    ("exists an int", lambda url, other: lakefmt.exists(5), ("5",)),
    ("delete a missing dataset", lambda url, other: lakefmt.delete(other), ("absent",)),
    ("copy a missing dataset", lambda url, other: lakefmt.copy(other, other + "-2"), ("absent",)),
    ("copy onto a dataset", lambda url, other: lakefmt.copy(url, url), ("already exists",)),
    ("like a missing dataset", lambda url, other: lakefmt.like(other, other + "-2"), ("absent",)),
    ("like onto a dataset", lambda url, other: lakefmt.like(url, url), ("already exists",)),
    ("like an int", lambda url, other: lakefmt.like(5, other), ("5",)),
    ("query without a source", lambda url, other: lakefmt.query("SELECT 1 +"), ("+",)),
    (
        "query a missing dataset",
        lambda url, other: lakefmt.query(f'SELECT * FROM "{other}"'),
        ("absent",),
    ),
    ("query an int", lambda url, other: lakefmt.query(5), ("int",)),
    ("explain_query garbage", lambda url, other: lakefmt.explain_query("SELEC"), ("SELEC",)),
    ("open_async missing", lambda url, other: lakefmt.open_async(other).result(), ("absent",)),
    (
        "read-only tag delete",
        lambda url, other: lakefmt.open_read_only(url).tags["t1"].delete(),
        ("read-only",),
    ),
    (
        "read-only branch delete",
        lambda url, other: lakefmt.open_read_only(url).branches["dev"].delete(),
        ("read-only",),
    ),
    (
        "read-only append",
        lambda url, other: lakefmt.open_read_only(url).append(_one()),
        ("read-only",),
    ),
    (
        "read-only update",
        lambda url, other: _setitem(lakefmt.open_read_only(url)["id"], 0, 5),
        ("read-only",),
    ),
    (
        "old version update",
        lambda url, other: _setitem(lakefmt.open(url, version="t1")["id"], 0, 5),
        ("read-only",),
    ),
    (
        "old version metadata",
        lambda url, other: _setitem(lakefmt.open(url, version="t1").metadata, "k", 5),
        ("read-only",),
    ),
    (
        "view update of a query",
        lambda url, other: _setitem(lakefmt.open(url).query("SELECT id")["id"], 0, 5),
        ("read-only",),
    ),
]:
    case(label, *needles)(lambda ds, url, other, fn=fn: fn(url, other))


@pytest.mark.parametrize(("name", "call", "needles", "builtin"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_lakefmt_error_naming_it_and_changes_nothing(
    dataset_url: str,
    tmp_path: Path,
    name: str,
    call: Call,
    needles: tuple[str, ...],
    builtin: type[BaseException] | None,
) -> None:
    ds = lakefmt.open(dataset_url)
    other = (
        str(tmp_path / "absent") if "://" not in dataset_url else f"mem://absent-{uuid.uuid4().hex}"
    )
    _refused(dataset_url, lambda: call(ds, dataset_url, other), needles, builtin, writer=ds)


# -- arbitrary values into every column -----------------------------------------------------

NUMPY_SCALARS = [
    np.dtype(code).type(1)
    for code in [
        "?",
        "b",
        "B",
        "h",
        "H",
        "i",
        "I",
        "l",
        "L",
        "q",
        "Q",
        "e",
        "f",
        "d",
        "g",
        "F",
        "D",
        "G",
    ]
] + [
    np.str_("1"),
    np.bytes_(b"1"),
    np.datetime64("2020-01-01"),
    np.timedelta64(1, "s"),
    np.void(b"\x01"),
    np.float64("nan"),
    np.float32("inf"),
    np.int64(-1),
    np.uint64(2**64 - 1),
    np.array(1),
    np.array([]),
]

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=5)
    | st.sampled_from(NUMPY_SCALARS),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
        | st.tuples(inner, inner)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("bad-input-fuzz")
    link = root / "linked.bin"
    link.write_bytes(b"linked bytes")
    url = f"mem://bad-input-fuzz-{uuid.uuid4().hex}"
    _build(url, str(link))
    return url


def _accepts_or_refuses(call: Callable[[], Any]) -> bool:
    try:
        call()
    except LakefmtError:
        return False
    return True


@pytest.mark.parametrize("column", list(SCHEMA))
@given(value=VALUES)
def test_any_value_is_stored_or_refused_with_a_lakefmt_error(
    fuzz_url: str, column: str, value: Any
) -> None:
    """An append, an update and a default of any value either work or raise a LakefmtError;
    what is refused leaves nothing behind."""
    ds = lakefmt.open(fuzz_url)
    before = _state(fuzz_url)
    _accepts_or_refuses(lambda: ds.append(_one(**{column: value})))
    ds.rollback()
    _accepts_or_refuses(lambda: ds.append([{k: v[0] for k, v in _one(**{column: value}).items()}]))
    ds.rollback()
    _accepts_or_refuses(lambda: _setitem(ds[column], 0, value))
    ds.rollback()
    _assert_unchanged(fuzz_url, before)
    _accepts_or_refuses(
        lambda: encode_default(value, T.resolve_type(SCHEMA[column]), column=column)
    )


@pytest.mark.parametrize("column", ["id", "u8", "f", "ok", "lbl", "s", "b", "emb", "seq"])
@pytest.mark.parametrize(
    "scalar", NUMPY_SCALARS, ids=[f"{type(s).__name__}" for s in NUMPY_SCALARS]
)
def test_numpy_scalars_of_every_dtype(fuzz_url: str, column: str, scalar: Any) -> None:
    """A numpy scalar of any dtype is stored as the value it is, or refused (a LakefmtError)."""
    ds = lakefmt.open(fuzz_url)
    before = _state(fuzz_url)
    if _accepts_or_refuses(lambda: ds.append(_one(**{column: scalar}))):
        ds.rollback()
    _accepts_or_refuses(lambda: _setitem(ds[column], 0, scalar))
    ds.rollback()
    _assert_unchanged(fuzz_url, before)


# -- importers and exporters ------------------------------------------------------------------


def _files(root: Path) -> dict[str, Path]:
    """Input files an importer may be given by mistake."""
    out = {
        "garbage": root / "garbage.parquet",
        "binary csv": root / "binary.csv",
        "empty csv": root / "empty.csv",
        "bad json": root / "bad.json",
        "json list": root / "list.json",
        "json wrong types": root / "types.json",
        "images": root / "images",
        "empty folder": root / "empty",
    }
    out["garbage"].write_bytes(b"PAR1 not really parquet")
    out["binary csv"].write_bytes(b"a,b\n\xff\xfe,\x00\x81\n")
    out["empty csv"].write_bytes(b"")
    out["bad json"].write_bytes(b'{"images": [')
    out["json list"].write_text("[1, 2]")
    out["json wrong types"].write_text(
        json.dumps({"images": [{"id": "x", "file_name": 5}], "annotations": 7, "categories": {}})
    )
    (out["images"] / "cat").mkdir(parents=True)
    (out["images"] / "cat" / "a.png").write_bytes(PNG)
    out["empty folder"].mkdir()
    return out


IMPORT_CASES: list[tuple[str, Callable[[dict[str, Path], str], Any], tuple[str, ...]]] = [
    (
        "parquet missing",
        lambda f, dst: lakefmt.from_parquet(str(f["images"] / "no.parquet"), dst),
        ("no.parquet",),
    ),
    (
        "parquet garbage",
        lambda f, dst: lakefmt.from_parquet(str(f["garbage"]), dst),
        ("garbage.parquet",),
    ),
    (
        "parquet of a folder of images",
        lambda f, dst: lakefmt.from_parquet(str(f["images"]), dst),
        ("images",),
    ),
    (
        "arrow with a bad schema type",
        lambda f, dst: lakefmt.from_arrow(pa.table({"a": [1]}), dst, schema={"a": "nope"}),
        ("nope",),
    ),
    ("csv missing", lambda f, dst: lakefmt.from_csv(str(f["images"] / "no.csv"), dst), ("no.csv",)),
    ("csv empty", lambda f, dst: lakefmt.from_csv(str(f["empty csv"]), dst), ("empty.csv",)),
    ("arrow of an int", lambda f, dst: lakefmt.from_arrow(5, dst), ("int",)),
    ("arrow of a dict", lambda f, dst: lakefmt.from_arrow({"a": [1]}, dst), ("dict",)),
    ("pandas of a string", lambda f, dst: lakefmt.from_pandas("x", dst), ("str",)),
    (
        "image folder missing",
        lambda f, dst: lakefmt.from_image_folder(str(f["images"] / "no"), dst),
        ("no",),
    ),
    (
        "image folder of a file",
        lambda f, dst: lakefmt.from_image_folder(str(f["garbage"]), dst),
        ("garbage",),
    ),
    (
        "image folder empty",
        lambda f, dst: lakefmt.from_image_folder(str(f["empty folder"]), dst),
        ("empty",),
    ),
    (
        "image folder compression",
        lambda f, dst: lakefmt.from_image_folder(str(f["images"]), dst, compression="gif"),
        ("gif",),
    ),
    (
        "image folder batch_size 0",
        lambda f, dst: lakefmt.from_image_folder(str(f["images"]), dst, batch_size=0),
        ("batch_size",),
    ),
    (
        "coco annotations not json",
        lambda f, dst: lakefmt.from_coco(str(f["images"]), str(f["bad json"]), dst),
        ("bad.json",),
    ),
    (
        "coco annotations a list",
        lambda f, dst: lakefmt.from_coco(str(f["images"]), str(f["json list"]), dst),
        ("list.json",),
    ),
    (
        "coco annotations wrong types",
        lambda f, dst: lakefmt.from_coco(str(f["images"]), str(f["json wrong types"]), dst),
        ("types.json",),
    ),
    (
        "coco annotations missing",
        lambda f, dst: lakefmt.from_coco(str(f["images"]), str(f["images"] / "no.json"), dst),
        ("no.json",),
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "needles"), IMPORT_CASES, ids=[c[0] for c in IMPORT_CASES]
)
def test_importers_refuse_bad_input_and_leave_no_dataset(
    tmp_path: Path, name: str, call: Callable[[dict[str, Path], str], Any], needles: tuple[str, ...]
) -> None:
    files = _files(tmp_path)
    dst = str(tmp_path / "imported")
    with pytest.raises(LakefmtError) as info:
        call(files, dst)
    for needle in needles:
        assert needle in str(info.value), f"{type(info.value).__name__}: {info.value}"
    assert not lakefmt.exists(dst), "a refused import left a dataset behind"


EXPORT_CASES: list[tuple[str, Callable[[Any, Path], Any], tuple[str, ...]]] = [
    (
        "parquet unknown column",
        lambda ds, out: lakefmt.to_parquet(ds, out / "x.parquet", columns=["nope"]),
        ("nope",),
    ),
    (
        "parquet columns a string",
        lambda ds, out: lakefmt.to_parquet(ds, out / "x.parquet", columns=5),
        ("5",),
    ),
    (
        "parquet max_rows_per_file 0",
        lambda ds, out: lakefmt.to_parquet(ds, out / "x", max_rows_per_file=0),
        ("max_rows_per_file",),
    ),
    (
        "parquet max_rows_per_file 'x'",
        lambda ds, out: lakefmt.to_parquet(ds, out / "x", max_rows_per_file="x"),
        ("max_rows_per_file",),
    ),
    (
        "parquet into a missing folder",
        lambda ds, out: lakefmt.to_parquet(ds, out / "no" / "x.parquet"),
        ("no",),
    ),
    (
        "csv unknown column",
        lambda ds, out: lakefmt.to_csv(ds, out / "x.csv", columns=["nope"]),
        ("nope",),
    ),
    ("csv to an int", lambda ds, out: lakefmt.to_csv(ds, 5), ("5",)),
    (
        "images unknown column",
        lambda ds, out: lakefmt.to_image_folder(ds, out / "imgs", column="nope"),
        ("nope",),
    ),
    (
        "images of a non-image column",
        lambda ds, out: lakefmt.to_image_folder(ds, out / "imgs", column="id"),
        ("id",),
    ),
    (
        "images unknown label column",
        lambda ds, out: lakefmt.to_image_folder(
            ds, out / "imgs", column="img", label_column="nope"
        ),
        ("nope",),
    ),
    (
        "images label column not a label",
        lambda ds, out: lakefmt.to_image_folder(ds, out / "imgs", column="img", label_column="emb"),
        ("emb",),
    ),
    (
        "images unknown filename column",
        lambda ds, out: lakefmt.to_image_folder(
            ds, out / "imgs", column="img", filename_column="nope"
        ),
        ("nope",),
    ),
    (
        "export of a non-view",
        lambda ds, out: lakefmt.to_parquet("not a dataset", out / "x.parquet"),
        ("str",),
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "needles"), EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES]
)
def test_exporters_refuse_bad_input(
    dataset_url: str,
    tmp_path: Path,
    name: str,
    call: Callable[[Any, Path], Any],
    needles: tuple[str, ...],
) -> None:
    ds = lakefmt.open_read_only(dataset_url)
    _refused(dataset_url, lambda: call(ds, tmp_path), needles, None)


# -- the CLI ---------------------------------------------------------------------------------

CLI_CASES: list[tuple[str, Callable[[str, Path], list[str]], tuple[str, ...]]] = [
    ("info of a missing dataset", lambda url, tmp: ["info", str(tmp / "absent")], ("absent",)),
    ("info of an unknown scheme", lambda url, tmp: ["info", "nosuch://x"], ("nosuch",)),
    ("log of an unknown branch", lambda url, tmp: ["log", url, "--branch", "nope"], ("nope",)),
    ("head of an unknown column", lambda url, tmp: ["head", url, "--columns", "nope"], ("nope",)),
    ("head of empty column names", lambda url, tmp: ["head", url, "--columns", ","], ("column",)),
    ("query syntax error", lambda url, tmp: ["query", url, "SELEC"], ("SELEC",)),
    ("query unknown column", lambda url, tmp: ["query", url, "SELECT nope"], ("nope",)),
    ("tag that exists", lambda url, tmp: ["tag", url, "t1"], ("t1",)),
    ("tag an invalid name", lambda url, tmp: ["tag", url, "a b"], ("a b",)),
    ("tag an unknown version", lambda url, tmp: ["tag", url, "n", "--version", "nope"], ("nope",)),
    ("delete an unknown tag", lambda url, tmp: ["tag", url, "nope", "--delete"], ("nope",)),
    ("branch that exists", lambda url, tmp: ["branch", url, "dev"], ("dev",)),
    ("delete an unknown branch", lambda url, tmp: ["branch", url, "nope", "--delete"], ("nope",)),
    ("delete main", lambda url, tmp: ["branch", url, "main", "--delete"], ("main",)),
    ("verify an unknown version", lambda url, tmp: ["verify", url, "--version", "nope"], ("nope",)),
    (
        "export unknown column",
        lambda url, tmp: ["export", url, str(tmp / "x.parquet"), "--columns", "nope"],
        ("nope",),
    ),
    (
        "export images of a non-image column",
        lambda url, tmp: ["export", url, str(tmp / "i"), "--format", "images", "--column", "id"],
        ("id",),
    ),
    (
        "import garbage parquet",
        lambda url, tmp: ["import", str(_garbage(tmp)), str(tmp / "new")],
        ("garbage",),
    ),
    (
        "import onto a dataset",
        lambda url, tmp: ["import", str(_csv(tmp)), url],
        ("already exists",),
    ),
    ("copy onto a dataset", lambda url, tmp: ["copy", url, url], ("already exists",)),
    (
        "creds file not json",
        lambda url, tmp: ["info", url, "--creds-file", str(_garbage(tmp))],
        ("garbage",),
    ),
    (
        "creds file a list",
        lambda url, tmp: ["info", url, "--creds-file", str(_json(tmp, [1]))],
        ("object",),
    ),
    (
        "creds file not utf-8",
        lambda url, tmp: ["info", url, "--creds-file", str(_bytes(tmp, b"\xff\xfe{"))],
        ("creds",),
    ),
    (
        "creds file with a typo",
        lambda url, tmp: ["info", "s3://b/x", "--creds-file", str(_json(tmp, {"aws_key": "k"}))],
        ("aws_key",),
    ),
]


def _garbage(tmp: Path) -> Path:
    path = tmp / "garbage.parquet"
    path.write_bytes(b"PAR1 garbage")
    return path


def _csv(tmp: Path) -> Path:
    path = tmp / "rows.csv"
    path.write_text("a,b\n1,2\n")
    return path


def _json(tmp: Path, value: Any) -> Path:
    path = tmp / "creds.json"
    path.write_text(json.dumps(value))
    return path


def _bytes(tmp: Path, data: bytes) -> Path:
    path = tmp / "creds.json"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("name", "args", "needles"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_reports_bad_input_in_one_line_and_changes_nothing(
    dataset_url: str,
    tmp_path: Path,
    name: str,
    args: Callable[[str, Path], list[str]],
    needles: tuple[str, ...],
) -> None:
    if dataset_url.startswith("mem://"):
        pytest.skip("the CLI runs on datasets other processes can open")
    before = _state(dataset_url)
    result = CliRunner().invoke(cli_main, args(dataset_url, tmp_path))
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), f"traceback: {result.exception!r}"
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(("error:", "Error:")), result.output
    for needle in needles:
        assert needle in result.output, result.output
    _assert_unchanged(dataset_url, before)


# -- malformed JSON files on disk --------------------------------------------------------------
# tests/format/test_integrity_cases.py truncates, flips and replaces every kind of file; these
# are the damages it leaves out: empty, not UTF-8, JSON of the wrong shape, members of the
# wrong type.

JSON_KINDS = ["format", "manifest", "tag", "branch", "hint"]
CONTENTS: dict[str, bytes | Callable[[dict[str, Any]], Any]] = {
    "empty": b"",
    "not utf-8": b"\xff\xfe\x00{",
    "json null": b"null",
    "json list": b"[]",
    "json string": b'"x"',
    "json number": b"7",
    "json object": b"{}",
    "nested garbage": b'{"a": {"b": [1, 2, {"c": null}]}}',
}
for member in [
    "version",
    "id",
    "branch",
    "fields",
    "fragments",
    "name",
    "dataset_id",
    "format_version",
    "ref",
]:
    for label, bad in [
        ("null", None),
        ("a string", "x"),
        ("a list", [1]),
        ("an object", {"x": 1}),
        ("a huge number", 2**80),
    ]:
        CONTENTS[f"{member} {label}"] = lambda doc, member=member, bad=bad: {**doc, member: bad}
CONTENTS["fields of the wrong shape"] = lambda doc: {**doc, "fields": [{"id": "x", "name": 5}]}
CONTENTS["fragments of the wrong shape"] = lambda doc: {**doc, "fragments": [{"files": 5}]}


def _json_target(root: Path, kind: str) -> Path:
    if kind == "format":
        return root / layout.FORMAT_FILE
    if kind == "manifest":
        manifests = sorted((root / layout.versions_dir(layout.MAIN_BRANCH)).glob("*.json"))
        return manifests[-1]
    if kind == "tag":
        return root / layout.tag_path("t1")
    if kind == "branch":
        return root / layout.branch_path("dev")
    return root / layout.latest_hint_path(layout.MAIN_BRANCH)


def _read_everything(url: str) -> Any:
    ds = lakefmt.open_read_only(url)
    return (
        ds.version,
        ds.to_arrow().to_pylist(),
        ds.tags.names(),
        [t.version for t in ds.tags],
        ds.branches.names(),
        [v.id for v in ds.history],
        lakefmt.open_read_only(url, version="t1").to_arrow(["id"]).to_pylist(),
        lakefmt.open_read_only(url, branch="dev").to_arrow(["id"]).to_pylist(),
        lakefmt.open(url).version,
    )


@pytest.fixture(scope="module")
def json_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("bad-json")
    link = root / "linked.bin"
    link.write_bytes(b"linked bytes")
    _build(str(root / "ds"), str(link))
    return root / "ds", _read_everything(str(root / "ds"))


@pytest.mark.parametrize("content", list(CONTENTS))
@pytest.mark.parametrize("kind", JSON_KINDS)
def test_malformed_json_files_give_a_format_error_or_a_correct_read(
    tmp_path: Path, json_template: tuple[Path, Any], kind: str, content: str
) -> None:
    source, expected = json_template
    root = tmp_path / "ds"
    shutil.copytree(source, root)
    target = _json_target(root, kind)
    make = CONTENTS[content]
    if callable(make):
        try:
            document = json.loads(target.read_bytes())
        except ValueError:
            pytest.skip(f"the {kind} file is not a JSON document")
        if not isinstance(document, dict):
            pytest.skip(f"the {kind} file is not a JSON object")
        target.write_text(json.dumps(make(document)))
    else:
        target.write_bytes(make)
    try:
        got = _read_everything(str(root))
    except FormatError as exc:
        assert target.name in str(exc), f"the FormatError does not name {target.name}: {exc}"
        return
    except LakefmtError as exc:  # a damaged ref may also read as missing, naming it
        assert kind in ("tag", "branch") and target.stem in str(exc), f"{type(exc).__name__}: {exc}"
        return
    assert got == expected, f"a damaged {kind} file ({content}) silently changed what is read"
