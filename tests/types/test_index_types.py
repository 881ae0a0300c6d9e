"""Index type descriptors: Deep Lake 4 spellings, their stored form, validation, legacy names."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lakefmt
from lakefmt import types
from lakefmt.errors import FormatError, InvalidArgumentError, InvalidTypeError
from lakefmt.format.versions import read_latest
from lakefmt.storage import open_storage
from lakefmt.types.indexes import (
    IndexDeclaration,
    canonical_index_type,
    declared_index_types,
)

T = types

# (column type as a Deep Lake user writes it, the stored index_type, the declarations read back)
SPELLINGS: list[tuple[str, Any, Any, list[IndexDeclaration]]] = [
    (
        "EmbeddingIndex(ClusteredQuantized)",
        lambda: T.Embedding(8, index_type=T.EmbeddingIndex(T.ClusteredQuantized)),
        "clustered_quantized",
        [T.EmbeddingIndex(T.ClusteredQuantized, quantization=T.QuantizationType.SQ8)],
    ),
    (
        "EmbeddingIndex(IndexType.Clustered)",
        lambda: T.Embedding(8, "float32", T.EmbeddingIndex(T.IndexType.Clustered)),
        "clustered",
        [T.EmbeddingIndex(T.Clustered)],
    ),
    (
        "EmbeddingIndex()",
        lambda: T.Embedding(8, index_type=T.EmbeddingIndex()),
        "clustered_quantized",
        [T.EmbeddingIndex(T.ClusteredQuantized)],
    ),
    (
        "Embedding(index_type=PooledQuantized)",
        lambda: T.Embedding(8, index_type=T.PooledQuantized),
        "pooled_quantized",
        [T.EmbeddingIndex(T.PooledQuantized)],
    ),
    (
        "Embedding(index_type=QuantizationType.Binary)",
        lambda: T.Embedding(8, index_type=T.QuantizationType.Binary),
        {"name": "clustered_quantized", "quantization": "binary"},
        [T.EmbeddingIndex(T.ClusteredQuantized, quantization=T.Binary)],
    ),
    (
        "EmbeddingIndex(QuantizationType.Binary)",
        lambda: T.Embedding(8, index_type=T.EmbeddingIndex(T.QuantizationType.Binary)),
        {"name": "clustered_quantized", "quantization": "binary"},
        [T.EmbeddingIndex(quantization="binary")],
    ),
    (
        "EmbeddingIndexEnumType.Clustered (4.1)",
        lambda: T.Embedding(8, index_type=T.EmbeddingIndexType(T.EmbeddingIndexEnumType.Clustered)),
        "clustered",
        [T.EmbeddingIndex(T.Clustered)],
    ),
    (
        "Embedding(index_type='clustered_quantized')",
        lambda: T.Embedding(8, index_type="clustered_quantized"),
        "clustered_quantized",
        [T.EmbeddingIndex()],
    ),
    ("Text(index_type=BM25)", lambda: T.Text(index_type=T.BM25), "bm25", [T.TextIndex(T.BM25)]),
    ("Text(Inverted)", lambda: T.Text(T.Inverted), "inverted", [T.TextIndex(T.Inverted)]),
    (
        "Text(index_type=TextIndex(Exact))",
        lambda: T.Text(index_type=T.TextIndex(T.Exact)),
        "exact",
        [T.TextIndex(T.Exact)],
    ),
    (
        "Text(index_type=TextIndexType.Inverted) (4.2 docs)",
        lambda: T.Text(index_type=T.TextIndexType.Inverted),
        "inverted",
        [T.TextIndex(T.Inverted)],
    ),
    (
        "Text(index_type=TextIndexEnumType.BM25)",
        lambda: T.Text(index_type=T.TextIndex(T.TextIndexEnumType.BM25)),
        "bm25",
        [T.TextIndex(T.BM25)],
    ),
    ("Text(index_type='BM25')", lambda: T.Text(index_type="BM25"), "bm25", [T.TextIndex("bm25")]),
    (
        "Text(index_type=[BM25, Exact])",
        lambda: T.Text(index_type=[T.BM25, T.TextIndex(T.Exact)]),
        ["bm25", "exact"],
        [T.TextIndex(T.BM25), T.TextIndex(T.Exact)],
    ),
    (
        "Int32(NumericIndex(Inverted))",
        lambda: T.Int32(T.NumericIndex(T.Inverted)),
        "numeric",
        [T.NumericIndex()],
    ),
    ("Float16(Inverted)", lambda: T.Float16(T.Inverted), "numeric", [T.NumericIndex()]),
    ("Float64('Inverted')", lambda: T.Float64("Inverted"), "numeric", [T.NumericIndex()]),
    (
        "UInt64(NumericIndexEnumType.Inverted) (4.3 docs)",
        lambda: T.UInt64(index_type=T.NumericIndex(T.NumericIndexEnumType.Inverted)),
        "numeric",
        [T.NumericIndex()],
    ),
    (
        "Int8(index_type='inverted_index')",
        lambda: T.Int8(index_type="inverted_index"),
        "numeric",
        [T.NumericIndex(T.Inverted)],
    ),
    ("Dict(Inverted)", lambda: T.Dict(T.Inverted), "json", [T.JsonIndex()]),
    (
        "Dict(JsonIndex(Inverted))",
        lambda: T.Dict(index_type=T.JsonIndex(T.Inverted)),
        "json",
        [T.JsonIndex(T.Inverted)],
    ),
    (
        "Dict(JsonIndex(path='$.meta[\"a b\"][0]'))",
        lambda: T.Dict(index_type=T.JsonIndex(path='$.meta["a b"][0]')),
        {"name": "json", "path": '$.meta["a b"][0]'},
        [T.JsonIndex(path='$.meta["a b"][0]')],
    ),
]


@pytest.mark.parametrize(
    ("make", "stored", "declared"),
    [case[1:] for case in SPELLINGS],
    ids=[case[0] for case in SPELLINGS],
)
def test_spelling_is_stored_canonically_and_read_back(
    make: Any, stored: Any, declared: list[IndexDeclaration]
) -> None:
    column_type = make()
    assert column_type.params()["index_type"] == stored
    assert declared_index_types(column_type.params()) == declared
    rebuilt = types.type_from_json(column_type.to_json())
    assert rebuilt == column_type
    assert rebuilt.params()["index_type"] == stored


def _buildable(case: tuple[Any, ...]) -> bool:
    """Whether lakefmt builds the spelling's index (JSON and binary ones are refused)."""
    return not any(
        isinstance(d, T.JsonIndex)
        or (isinstance(d, T.EmbeddingIndex) and d.quantization is T.QuantizationType.Binary)
        for d in case[3]
    )


def test_declarations_survive_a_manifest_and_a_reopen(file_url: str) -> None:
    kept = [case for case in SPELLINGS if _buildable(case)]
    schema = {case[0]: case[1]() for case in kept}
    schema["plain"] = T.Int32()
    ds = lakefmt.create(file_url, schema=schema)
    ds.commit("schema")
    again = lakefmt.open(file_url)
    manifest = read_latest(open_storage(file_url), "main")
    for name, stored, declared in ((case[0], case[2], case[3]) for case in kept):
        assert again.schema[name] == schema[name], name
        params = manifest.field_by_name(name).type["params"]
        assert params["index_type"] == stored, name
        assert declared_index_types(params) == declared, name
    plain = manifest.field_by_name("plain").type
    assert plain == {"name": "int32"}  # no index: the stored form is unchanged
    assert declared_index_types(plain.get("params", {})) == []


@pytest.mark.parametrize("case", [c for c in SPELLINGS if not _buildable(c)], ids=lambda c: c[0])
def test_indexes_lakefmt_does_not_build_are_refused_on_new_columns(
    file_url: str, case: tuple[Any, ...]
) -> None:
    with pytest.raises(InvalidTypeError, match="not built by this version"):
        lakefmt.create(file_url, schema={"c": case[1]()})
    ds = lakefmt.create(file_url)
    with pytest.raises(InvalidTypeError, match="not built by this version"):
        ds.add_column("c", case[1]())
    assert "c" not in ds.schema


def test_indexed_columns_hold_and_return_data(file_url: str) -> None:
    ds = lakefmt.create(
        file_url,
        schema={
            "emb": T.Embedding(4, index_type=T.Clustered),
            "meta": T.Dict(),
            "id": T.Int64(T.Inverted),
            "text": T.Text([T.BM25, T.Inverted]),
        },
    )
    vectors = np.arange(8, dtype=np.float32).reshape(2, 4)
    ds.append(
        {"emb": vectors, "meta": [{"tag": "a"}, {"tag": "b"}], "id": [1, 2], "text": ["x", "y"]}
    )
    ds.commit("rows")
    again = lakefmt.open(file_url)
    np.testing.assert_array_equal(again["emb"][:], vectors)
    assert again["meta"][:] == [{"tag": "a"}, {"tag": "b"}]
    assert list(again["id"][:]) == [1, 2]
    assert again["text"][:] == ["x", "y"]
    assert again.schema["emb"] == T.Embedding(4, index_type=T.EmbeddingIndex(T.Clustered))


@pytest.mark.parametrize(
    ("legacy", "declared"),
    [
        ("flat", [T.EmbeddingIndex(T.Clustered)]),
        ("hnsw", [T.EmbeddingIndex(T.Clustered)]),
        ("ivf", [T.EmbeddingIndex(T.PooledQuantized)]),
        ("pq", [T.EmbeddingIndex(T.PooledQuantized)]),
        ("binary", [T.EmbeddingIndex(T.QuantizationType.Binary)]),
        ("clustered", [T.EmbeddingIndex(T.Clustered)]),
        (["hnsw", "pq"], [T.EmbeddingIndex(T.Clustered), T.EmbeddingIndex(T.PooledQuantized)]),
    ],
)
def test_legacy_embedding_strings_still_read(legacy: Any, declared: list[IndexDeclaration]) -> None:
    stored = {"name": "lakefmt.embedding", "params": {"size": 4, "dtype": "float32"}}
    stored["params"]["index_type"] = legacy  # type: ignore[index]  # a dict literal's value
    assert declared_index_types(stored["params"]) == declared  # type: ignore[arg-type]  # dict
    rebuilt = types.type_from_json(stored)
    assert declared_index_types(rebuilt.params()) == declared
    assert rebuilt == T.Embedding(4, index_type=legacy)


def test_legacy_text_strings_are_canonical() -> None:
    for name in ("inverted", "bm25", "exact"):
        stored = {"name": "text", "params": {"index_type": name}}
        assert types.type_from_json(stored) == T.Text(index_type=name)
        assert declared_index_types(stored["params"]) == [T.TextIndex(name)]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: T.Embedding(8, index_type=T.BM25), InvalidTypeError, "a Text index"),
        (lambda: T.Embedding(8, index_type=T.TextIndex(T.BM25)), InvalidTypeError, "Embedding"),
        (lambda: T.Embedding(8, index_type=T.Inverted), InvalidTypeError, "a Text index"),
        (lambda: T.Embedding(8, index_type="nope"), InvalidTypeError, "unknown index_type"),
        (lambda: T.Text(index_type=T.Clustered), InvalidTypeError, "an Embedding index"),
        (lambda: T.Text(index_type=T.EmbeddingIndex()), InvalidTypeError, "takes BM25"),
        (lambda: T.Text(index_type=T.NumericIndex()), InvalidTypeError, "a numeric index"),
        (lambda: T.Text(index_type="hnsw"), InvalidTypeError, "unknown index_type 'hnsw'"),
        (lambda: T.Text(index_type=T.TextIndex), InvalidTypeError, "is a class"),
        (lambda: T.Text(index_type=[T.BM25, "bm25"]), InvalidTypeError, "twice"),
        (lambda: T.Text(index_type=3), InvalidTypeError, "index_type must be"),
        (lambda: T.Int32(T.BM25), InvalidTypeError, "a Text index"),
        (lambda: T.Float32(T.JsonIndex()), InvalidTypeError, "a Dict index"),
        (lambda: T.Numeric("bool", T.Inverted), InvalidTypeError, "Bool"),
        (lambda: T.Dict(T.BM25), InvalidTypeError, "a Text index"),
        (
            lambda: T.EmbeddingIndex(T.Clustered, quantization=T.Binary),
            InvalidArgumentError,
            "float32",
        ),
        (
            lambda: T.EmbeddingIndex(T.PooledQuantized, quantization="sq8"),
            InvalidArgumentError,
            "product quantization",
        ),
        (
            lambda: T.EmbeddingIndex(T.Binary, quantization=T.QuantizationType.SQ8),
            InvalidArgumentError,
            "two different quantizations",
        ),
        (
            lambda: T.EmbeddingIndex(quantization="int4"),
            InvalidArgumentError,
            "unknown quantization",
        ),
        (lambda: T.EmbeddingIndex(T.BM25), InvalidTypeError, "not an embedding index"),
        (lambda: T.EmbeddingIndex(3), InvalidTypeError, "must be an IndexType"),  # type: ignore[arg-type]  # the error under test
        (lambda: T.TextIndex(T.Clustered), InvalidTypeError, "not a text index"),
        (lambda: T.NumericIndex(T.BM25), InvalidTypeError, "only Inverted"),
        (lambda: T.JsonIndex(T.Exact), InvalidTypeError, "only Inverted"),
        (lambda: T.JsonIndex(path="category"), InvalidArgumentError, "must start with '$'"),
        (lambda: T.JsonIndex(path="$.a.*"), InvalidArgumentError, "no wildcards"),
        (lambda: T.JsonIndex(path="$.a[?(@.b)]"), InvalidArgumentError, "unexpected"),
        (lambda: T.JsonIndex(path="$..a"), InvalidArgumentError, "unexpected"),
        (lambda: T.JsonIndex(path=5), InvalidArgumentError, "must be a string"),  # type: ignore[arg-type]  # the error under test
    ],
)
def test_invalid_index_types_are_refused(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    "stored",
    [
        {"name": "text", "params": {"index_type": "hnsw_v9"}},
        {"name": "int32", "params": {"index_type": "bm25"}},
        {"name": "lakefmt.embedding", "params": {"size": 4, "index_type": {"name": "ivf_v2"}}},
        {
            "name": "lakefmt.embedding",
            "params": {"size": 4, "index_type": {"name": "clustered", "m": 16}},
        },
    ],
)
def test_stored_index_types_this_lakefmt_does_not_know(stored: dict[str, Any]) -> None:
    with pytest.raises(FormatError, match="newer lakefmt"):
        types.type_from_json(stored)


def test_declared_index_types_refuses_unknown_names() -> None:
    with pytest.raises(InvalidTypeError, match="newer lakefmt may be needed"):
        declared_index_types({"index_type": "graph_v9"})
    with pytest.raises(InvalidTypeError, match="not an index declaration"):
        declared_index_types({"index_type": [3]})
    assert declared_index_types({}) == []


def test_singletons_are_the_index_type_members() -> None:
    assert T.BM25 is T.IndexType.BM25
    assert T.Inverted is T.IndexType.Inverted
    assert T.Exact is T.IndexType.Exact
    assert T.Clustered is T.IndexType.Clustered
    assert T.ClusteredQuantized is T.IndexType.ClusteredQuantized
    assert T.PooledQuantized is T.IndexType.PooledQuantized
    assert T.Binary is T.QuantizationType.Binary
    assert T.EmbeddingIndexType is T.EmbeddingIndex
    assert T.TextIndexEnumType is T.TextIndexType
    assert T.TextIndex(T.BM25) != T.TextIndex(T.Exact)
    assert len({T.TextIndex(T.BM25), T.TextIndex("bm25"), T.TextIndex(T.TextIndexType.BM25)}) == 1


_ALL_EMBEDDING = [T.Clustered, T.ClusteredQuantized, T.PooledQuantized, T.Binary, "hnsw", "pq"]
_ALL_TEXT = [T.BM25, T.Inverted, T.Exact, "bm25", T.TextIndexType.Exact]


@given(st.lists(st.sampled_from(_ALL_EMBEDDING), min_size=1, max_size=4))
def test_embedding_declarations_round_trip(specs: list[Any]) -> None:
    """Storing is idempotent and the reader gives back exactly what was declared."""
    declared = [T.EmbeddingIndex(s) if not isinstance(s, str) else None for s in specs]
    unique: list[Any] = []
    for spec in specs:
        form = canonical_index_type(spec, "embedding", "Embedding(4)")
        if form not in unique:
            unique.append(form)
    if len(unique) < len(specs):
        with pytest.raises(InvalidTypeError, match="twice"):
            T.Embedding(4, index_type=specs)
        return
    column_type = T.Embedding(4, index_type=specs)
    stored = column_type.params()["index_type"]
    assert canonical_index_type(stored, "embedding", "Embedding(4)") == stored
    read = declared_index_types({"index_type": stored})
    assert [d.to_json() for d in read] == unique
    assert all(d is None or d in read for d in declared)
    assert T.Embedding(4, index_type=read) == column_type


@given(st.lists(st.sampled_from(_ALL_TEXT), min_size=1, max_size=3, unique_by=lambda s: str(s)))
def test_text_declarations_round_trip(specs: list[Any]) -> None:
    names = [s.lower() if isinstance(s, str) else s.value for s in specs]
    if len(set(names)) < len(names):
        with pytest.raises(InvalidTypeError, match="twice"):
            T.Text(index_type=specs)
        return
    column_type = T.Text(index_type=specs)
    read = declared_index_types(column_type.params())
    assert [d.name for d in read] == names
    assert types.type_from_json(column_type.to_json()) == column_type
