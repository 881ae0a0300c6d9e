"""Index type descriptors: which index a column's type declares, in Deep Lake 4's names.

A column asks for an index through its type's ``index_type``; the declaration is stored in
the column's type (``Field.type["params"]["index_type"]``) and the index layer builds what it
names. This module owns the descriptors, their validation against the column type, the one
canonical JSON form, and :func:`declared_index_types`, the only reader of that JSON.

Deep Lake 4 spellings (checked against Deep Lake 4.7's type stubs; 4.1-4.2 names marked):

* ``IndexType``: an enum of index kinds, ``Inverted``, ``BM25``, ``Exact``,
  ``Clustered``, ``ClusteredQuantized``, ``PooledQuantized``. The module attributes
  ``BM25``, ``Inverted``, ``Exact``, ``Clustered``, ``ClusteredQuantized`` and
  ``PooledQuantized`` are its members, usable directly: ``Text(index_type=types.BM25)``.
  ``Inverted`` means a text, numeric or JSON index depending on the column it is given to.
* ``QuantizationType``: an enum, ``Binary`` (Deep Lake's only member; also the module
  attribute ``Binary``) and ``SQ8`` (8-bit scalar codes, lakefmt's default).
* ``EmbeddingIndex(type=None, quantization=None)``: ``type`` is ``Clustered``,
  ``ClusteredQuantized``, ``PooledQuantized`` or a ``QuantizationType`` (Deep Lake: "maps to
  ClusteredQuantized"); ``EmbeddingIndexType`` is the same class (the name of the object
  Deep Lake's ``EmbeddingIndex()`` returns).
* ``TextIndex(type)``: ``Inverted``, ``BM25`` or ``Exact``. ``TextIndexType`` (alias
  ``TextIndexEnumType``, Deep Lake 4.1-4.2) is the enum of those three.
* ``NumericIndex(type=Inverted)`` (``NumericIndexEnumType.Inverted``, Deep Lake 4.3 docs).
* ``JsonIndex(type=Inverted, path=None)``: Deep Lake takes only ``type``; ``path`` is
  lakefmt's, a JSON path such as ``"$.meta.tags"`` limiting the index to one value.
* ``EmbeddingIndexEnumType`` (Deep Lake 4.1-4.2): ``Clustered``, ``ClusteredQuantized``.

Column types take any of these, a string, or a list of them (several indexes on one
column): ``Embedding(size, dtype, index_type=...)`` the embedding kinds, ``Text(index_type=)``
the text kinds, ``Int8`` ... ``UInt64``, ``Float16`` ... ``Float64`` (``index_type=``) the
numeric index, ``Dict(index_type=)`` the JSON index. Strings: the canonical names below, Deep
Lake's (``"Inverted"``, ``"inverted_index"``, ``"BM25"``, any case) and the legacy names
older lakefmt versions stored (``"flat"``, ``"hnsw"``, ``"ivf"``, ``"pq"``, ``"binary"``).

Canonical JSON (what ``params()["index_type"]`` holds): a string when the index has no
parameters, ``"clustered"``, ``"clustered_quantized"`` (SQ8 codes), ``"pooled_quantized"``,
``"bm25"``, ``"inverted"``, ``"exact"``, ``"numeric"``, ``"json"``; a dict ``{"name": ...,
<params>}`` when it has some (``{"name": "clustered_quantized", "quantization": "binary"}``,
``{"name": "json", "path": "$.a"}``); a list of those when a column declares several.
Differences from Deep Lake: ``ClusteredQuantized`` (not ``Clustered``) is the default, and
``PooledQuantized`` is an IVF-PQ index over 1-D embeddings (Deep Lake's is for 2-D token
matrices searched with ``MAXSIM``); ``Unique`` and ``EmbeddingsMatrixIndex`` are not offered.
"""

from __future__ import annotations

import enum
import re
from typing import Any, ClassVar, Literal

from lakefmt.errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "BM25",
    "Binary",
    "Clustered",
    "ClusteredQuantized",
    "EmbeddingIndex",
    "EmbeddingIndexEnumType",
    "EmbeddingIndexType",
    "Exact",
    "IndexDeclaration",
    "IndexType",
    "Inverted",
    "JsonIndex",
    "NumericIndex",
    "NumericIndexEnumType",
    "PooledQuantized",
    "QuantizationType",
    "TextIndex",
    "TextIndexEnumType",
    "TextIndexType",
    "canonical_index_type",
    "check_buildable",
    "declared_index_types",
]

#: What a column type is indexed as; the ``kind`` of a declaration.
ColumnKind = Literal["embedding", "text", "numeric", "json"]


class IndexType(enum.Enum):
    """The index kinds (Deep Lake 4's ``IndexType``); values are the canonical names."""

    Inverted = "inverted"
    BM25 = "bm25"
    Exact = "exact"
    PooledQuantized = "pooled_quantized"
    Clustered = "clustered"
    ClusteredQuantized = "clustered_quantized"


class QuantizationType(enum.Enum):
    """How ``ClusteredQuantized`` codes vectors in its graph (scores are re-ranked exactly)."""

    Binary = "binary"
    SQ8 = "sq8"


class TextIndexType(enum.Enum):
    """The text index kinds (Deep Lake 4.1-4.2's ``TextIndexType``/``TextIndexEnumType``)."""

    Inverted = "inverted"
    BM25 = "bm25"
    Exact = "exact"


class EmbeddingIndexEnumType(enum.Enum):
    """The embedding index kinds (Deep Lake 4.1-4.2's ``EmbeddingIndexEnumType``)."""

    Clustered = "clustered"
    ClusteredQuantized = "clustered_quantized"
    PooledQuantized = "pooled_quantized"


class NumericIndexEnumType(enum.Enum):
    """The numeric index kinds (Deep Lake 4.3's ``NumericIndexEnumType``)."""

    Inverted = "inverted"


TextIndexEnumType = TextIndexType

BM25 = IndexType.BM25
Inverted = IndexType.Inverted
Exact = IndexType.Exact
Clustered = IndexType.Clustered
ClusteredQuantized = IndexType.ClusteredQuantized
PooledQuantized = IndexType.PooledQuantized
Binary = QuantizationType.Binary

_KIND_ENUMS = (IndexType, TextIndexType, EmbeddingIndexEnumType, NumericIndexEnumType)
_EMBEDDING_NAMES = ("clustered", "clustered_quantized", "pooled_quantized")
_TEXT_NAMES = ("inverted", "bm25", "exact")
_DEFAULT_QUANTIZATION = QuantizationType.SQ8

# Strings older lakefmt versions accepted for Embedding(index_type=) and stored without
# building anything; read as the kind that builds what they named: "hnsw" is a float32
# graph (Clustered), "ivf"/"pq" inverted lists (PooledQuantized, IVF-PQ with an exact
# re-rank), "binary" Deep Lake's binary quantization, and "flat" (full-precision vectors)
# the full-precision graph.
_LEGACY_EMBEDDING: dict[str, dict[str, Any]] = {
    "flat": {"name": "clustered"},
    "hnsw": {"name": "clustered"},
    "ivf": {"name": "pooled_quantized"},
    "pq": {"name": "pooled_quantized"},
    "binary": {"name": "clustered_quantized", "quantization": "binary"},
}

# JSON path: "$" then .key, ["key"], ['key'] or [n] steps; no wildcards or filters.
_PATH_STEP = re.compile(
    r"""\.(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | \[(?P<index>[0-9]+)\]
      | \["(?P<dq>(?:[^"\\]|\\.)+)"\]
      | \['(?P<sq>(?:[^'\\]|\\.)+)'\]""",
    re.VERBOSE,
)


def _check_json_path(path: Any) -> str:
    """Return ``path`` if it is a JSON path lakefmt can index, else raise."""
    if not isinstance(path, str):
        raise InvalidArgumentError(f"JsonIndex path must be a string, got {path!r}")
    position = 1
    if not path.startswith("$"):
        raise InvalidArgumentError(
            f"JsonIndex path {path!r} is not a JSON path: it must start with '$' "
            "(e.g. '$.category' or '$.tags[0]')"
        )
    while position < len(path):
        step = _PATH_STEP.match(path, position)
        if step is None:
            raise InvalidArgumentError(
                f"JsonIndex path {path!r} is not a JSON path lakefmt can index: unexpected "
                f"{path[position:]!r} at position {position} (steps are .key, ['key'] or [n]; "
                "no wildcards or filters)"
            )
        position = step.end()
    return path


def _kind_value(spec: enum.Enum) -> str:
    """The canonical name an enum member of any of the kind enums stands for."""
    return str(spec.value)


class IndexDeclaration:
    """An index a column's type declares (the base of the descriptors below).

    ``kind`` is what column it indexes (``"embedding"``, ``"text"``, ``"numeric"``,
    ``"json"``); ``name`` is the canonical index name; :meth:`to_json` is the stored form.
    """

    kind: ClassVar[ColumnKind]
    name: str

    def index_params(self) -> dict[str, Any]:
        """The declaration's parameters besides its name (``{}`` when it has none)."""
        return {}

    def to_json(self) -> str | dict[str, Any]:
        """The canonical stored form: the name, or ``{"name": ..., **params}``."""
        params = self.index_params()
        return {"name": self.name, **params} if params else self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IndexDeclaration) and (
            self.kind,
            self.to_json(),
        ) == (other.kind, other.to_json())

    def __hash__(self) -> int:
        return hash((self.kind, repr(self.to_json())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_json()!r})"


class EmbeddingIndex(IndexDeclaration):
    """A vector index over an ``Embedding`` column.

    Args:
        type: ``ClusteredQuantized`` (default: IVF lists of ``quantization`` codes,
            re-ranked exactly), ``Clustered`` (an HNSW graph over float32 vectors),
            ``PooledQuantized`` (IVF-PQ, re-ranked exactly), or a ``QuantizationType``
            (Deep Lake's spelling of ``ClusteredQuantized`` with that quantization).
        quantization: ``QuantizationType.SQ8`` (default) or ``QuantizationType.Binary``;
            only for ``ClusteredQuantized``.

    Raises:
        InvalidTypeError: ``type`` is not an embedding index kind.
        InvalidArgumentError: ``quantization`` given for a kind that does not take it.
    """

    kind: ClassVar[ColumnKind] = "embedding"

    def __init__(
        self,
        type: IndexType | EmbeddingIndexEnumType | QuantizationType | str | None = None,
        quantization: QuantizationType | str | None = None,
    ) -> None:
        chosen: QuantizationType | None = _quantization(quantization)
        if isinstance(type, QuantizationType):
            if chosen is not None and chosen is not type:
                raise InvalidArgumentError(
                    f"EmbeddingIndex({type}, quantization={chosen}): two different quantizations"
                )
            chosen, name = type, "clustered_quantized"
        elif type is None:
            name = "clustered_quantized"
        elif isinstance(type, (*_KIND_ENUMS, str)):
            name = type.lower() if isinstance(type, str) else _kind_value(type)
            if name not in _EMBEDDING_NAMES:
                raise InvalidTypeError(
                    f"{type!r} is not an embedding index; EmbeddingIndex takes Clustered, "
                    "ClusteredQuantized, PooledQuantized or a QuantizationType"
                )
        else:
            raise InvalidTypeError(f"EmbeddingIndex type must be an IndexType, got {type!r}")
        if name == "clustered_quantized":
            chosen = chosen or _DEFAULT_QUANTIZATION
        elif chosen is not None:
            why = (
                "keeps float32 vectors"
                if name == "clustered"
                else "uses product quantization (PQ codes)"
            )
            raise InvalidArgumentError(
                f"quantization={chosen.value!r} does not apply to {name!r}, which {why}; "
                "quantization is a parameter of ClusteredQuantized only"
            )
        self.name = name
        #: The codes of a ``clustered_quantized`` graph; ``None`` for the other kinds.
        self.quantization: QuantizationType | None = chosen

    def index_params(self) -> dict[str, Any]:
        """``quantization`` when it is not the default SQ8."""
        if self.quantization is None or self.quantization is _DEFAULT_QUANTIZATION:
            return {}
        return {"quantization": self.quantization.value}


def _quantization(value: QuantizationType | str | None) -> QuantizationType | None:
    """A ``QuantizationType`` from a member or its name (any case)."""
    if value is None or isinstance(value, QuantizationType):
        return value
    if isinstance(value, str):
        for member in QuantizationType:
            if value.lower() in (member.value, member.name.lower()):
                return member
    raise InvalidArgumentError(
        f"unknown quantization {value!r}; use QuantizationType.SQ8 or QuantizationType.Binary"
    )


EmbeddingIndexType = EmbeddingIndex


class TextIndex(IndexDeclaration):
    """A text index over a ``Text`` column.

    Args:
        type: ``BM25`` (ranked search, ``BM25_SIMILARITY``), ``Inverted`` (``CONTAINS``) or
            ``Exact`` (whole-value and phrase lookups).

    Raises:
        InvalidTypeError: ``type`` is not a text index kind.
    """

    kind: ClassVar[ColumnKind] = "text"

    def __init__(self, type: IndexType | TextIndexType | str) -> None:
        name = type.lower() if isinstance(type, str) else None
        if isinstance(type, _KIND_ENUMS):
            name = _kind_value(type)
        if name == "inverted_index":  # Deep Lake's create_index string
            name = "inverted"
        if name not in _TEXT_NAMES:
            raise InvalidTypeError(
                f"{type!r} is not a text index; TextIndex takes BM25, Inverted or Exact"
            )
        self.name = name


class NumericIndex(IndexDeclaration):
    """A point/range lookup index over a numeric column (``Int*``, ``UInt*``, ``Float*``).

    Args:
        type: ``Inverted`` (Deep Lake's only numeric kind, the default).

    Raises:
        InvalidTypeError: ``type`` is not ``Inverted``.
    """

    kind: ClassVar[ColumnKind] = "numeric"

    def __init__(self, type: IndexType | NumericIndexEnumType | str = IndexType.Inverted) -> None:
        _check_inverted(type, "NumericIndex", ("numeric",))
        self.name = "numeric"


class JsonIndex(IndexDeclaration):
    """A lookup index over a ``Dict`` column, or over one value of it.

    Args:
        type: ``Inverted`` (Deep Lake's only JSON kind, the default).
        path: A JSON path (``"$.category"``, ``"$.tags[0]"``, ``"$['a b']"``) naming the
            value to index; ``None`` (default) indexes the whole document.

    Raises:
        InvalidTypeError: ``type`` is not ``Inverted``.
        InvalidArgumentError: ``path`` is not a JSON path lakefmt can index.
    """

    kind: ClassVar[ColumnKind] = "json"

    def __init__(
        self,
        type: IndexType | NumericIndexEnumType | str = IndexType.Inverted,
        path: str | None = None,
    ) -> None:
        _check_inverted(type, "JsonIndex", ("json",))
        self.name = "json"
        #: The indexed value's JSON path; ``None`` for the whole document.
        self.path = None if path is None else _check_json_path(path)

    def index_params(self) -> dict[str, Any]:
        """``path`` when set."""
        return {"path": self.path} if self.path is not None else {}


def _check_inverted(type: Any, owner: str, names: tuple[str, ...]) -> None:
    """Refuse anything but ``Inverted`` (or the kind's own canonical name)."""
    if isinstance(type, _KIND_ENUMS) and _kind_value(type) == "inverted":
        return
    if isinstance(type, str) and type.lower() in ("inverted", "inverted_index", *names):
        return
    raise InvalidTypeError(f"{owner} takes only Inverted, got {type!r}")


_OWNER = {"embedding": "an Embedding", "text": "a Text", "numeric": "a numeric", "json": "a Dict"}
_OFFERED = {
    "embedding": "Clustered, ClusteredQuantized, PooledQuantized or an EmbeddingIndex",
    "text": "BM25, Inverted, Exact or a TextIndex",
    "numeric": "Inverted or a NumericIndex",
    "json": "Inverted or a JsonIndex",
}


def _declaration(spec: Any, kind: ColumnKind, column_type: str) -> IndexDeclaration:
    """Turn one user spelling, or one stored canonical form, into a declaration of ``kind``."""
    found: IndexDeclaration
    if isinstance(spec, IndexDeclaration):
        found = spec
    elif isinstance(spec, QuantizationType):
        found = EmbeddingIndex(spec)
    elif isinstance(spec, (*_KIND_ENUMS, str)):
        name = _kind_value(spec) if isinstance(spec, enum.Enum) else spec.lower()
        if name in ("inverted", "inverted_index"):  # Inverted names the column's own lookup
            name = {"text": "inverted", "numeric": "numeric", "json": "json"}.get(kind, name)
        if kind == "embedding" and name in _LEGACY_EMBEDDING:
            return _from_dict(_LEGACY_EMBEDDING[name], kind, column_type)
        if name in _EMBEDDING_NAMES:
            found = EmbeddingIndex(name)
        elif name in _TEXT_NAMES:
            found = TextIndex(name)
        elif name == "numeric":
            found = NumericIndex()
        elif name == "json":
            found = JsonIndex()
        else:
            raise InvalidTypeError(
                f"unknown index_type {spec!r} for {column_type}; use {_OFFERED[kind]}"
            )
    elif isinstance(spec, dict):
        return _from_dict(spec, kind, column_type)
    elif isinstance(spec, type) and issubclass(spec, IndexDeclaration):
        raise InvalidTypeError(
            f"index_type={spec.__name__} is a class; give an index such as "
            f"{spec.__name__}(...) or {_OFFERED[kind].split(',')[0]}"
        )
    else:
        raise InvalidTypeError(
            f"index_type must be an index type ({_OFFERED[kind]}), a string or a list of "
            f"them, got {spec!r}"
        )
    if found.kind != kind:
        raise InvalidTypeError(
            f"{found!r} is {_OWNER[found.kind]} index; {column_type} takes {_OFFERED[kind]}"
        )
    return found


def _from_dict(data: dict[str, Any], kind: ColumnKind, column_type: str) -> IndexDeclaration:
    """A declaration from its canonical dict form ``{"name": ..., **params}``."""
    params = dict(data)
    name = params.pop("name", None)
    if not isinstance(name, str):
        raise InvalidTypeError(f"index_type {data!r} has no 'name'")
    allowed = {"clustered_quantized": {"quantization"}, "json": {"path"}}.get(name.lower(), set())
    unknown = set(params) - allowed
    if unknown:
        raise InvalidTypeError(
            f"index_type {data!r}: {name!r} takes no parameter {sorted(unknown)} "
            "(written by a newer lakefmt?)"
        )
    found: IndexDeclaration
    if name.lower() == "clustered_quantized":
        found = EmbeddingIndex(name, quantization=params.get("quantization"))
    elif name.lower() == "json":
        found = JsonIndex(path=params.get("path"))
    else:
        return _declaration(name, kind, column_type)
    return _declaration(found, kind, column_type)


def _declarations(spec: Any, kind: ColumnKind, column_type: str) -> list[IndexDeclaration]:
    """Every declaration ``spec`` (one spelling or a list/tuple of them) names, checked."""
    specs = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    found = [_declaration(one, kind, column_type) for one in specs]
    for i, one in enumerate(found):
        if one in found[:i]:
            raise InvalidTypeError(f"index_type lists {one!r} twice for {column_type}")
    return found


def canonical_index_type(
    spec: Any, kind: ColumnKind, column_type: str
) -> str | dict[str, Any] | list[str | dict[str, Any]] | None:
    """Check what a column type was given as ``index_type`` and return its stored form.

    Args:
        spec: ``None``, a descriptor, an ``IndexType``/``QuantizationType`` member, a string,
            a canonical dict, or a list of those.
        kind: What the column is indexed as (``"embedding"``, ``"text"``, ``"numeric"``,
            ``"json"``).
        column_type: The column type for messages (``"Embedding(768)"``, ``"Text"``).

    Returns:
        ``None`` for no index, one canonical form, or a list of them for several.

    Raises:
        InvalidTypeError: An unknown index, or one for another kind of column.
        InvalidArgumentError: A descriptor's parameters are invalid.
    """
    if spec is None or (isinstance(spec, (list, tuple)) and not spec):
        return None
    forms = [one.to_json() for one in _declarations(spec, kind, column_type)]
    return forms[0] if len(forms) == 1 else forms


def check_buildable(declaration: IndexDeclaration, column_type: str) -> None:
    """Refuse a new declaration this lakefmt would record but not build (an index that is
    accepted and never used would only mislead). Stored declarations still read: a
    dataset written elsewhere opens, and its unbuildable indexes are ignored.

    Raises:
        InvalidTypeError: A JSON index, or binary quantization.
    """
    if isinstance(declaration, JsonIndex):
        raise InvalidTypeError(
            f"{column_type}: JSON indexes are not built by this version of lakefmt; queries "
            "over Dict columns scan them (index a Text or numeric column extracted from the "
            "JSON instead)"
        )
    if (
        isinstance(declaration, EmbeddingIndex)
        and declaration.quantization is QuantizationType.Binary
    ):
        raise InvalidTypeError(
            f"{column_type}: binary quantization is not built by this version of lakefmt; use "
            "ClusteredQuantized (8-bit codes, re-ranked exactly), Clustered or PooledQuantized"
        )


def declared_index_types(type_params: dict[str, Any]) -> list[IndexDeclaration]:
    """The indexes a stored column type declares: the reader of ``params["index_type"]``.

    Reads the canonical forms (a string, a dict, or a list of them) and the legacy strings
    of older lakefmt versions; the kind follows from the names (``"numeric"`` and ``"json"``
    are their own), so the column type is not needed.

    Args:
        type_params: ``Field.type["params"]`` (or a type's ``params()``); may be empty.

    Returns:
        The declarations in stored order; ``[]`` when the column declares no index.

    Raises:
        InvalidTypeError: ``index_type`` holds something this lakefmt does not know.
    """
    spec = type_params.get("index_type")
    if spec is None:
        return []
    specs = spec if isinstance(spec, list) else [spec]
    found: list[IndexDeclaration] = []
    for one in specs:
        name = one.get("name") if isinstance(one, dict) else one
        if not isinstance(name, str):
            raise InvalidTypeError(f"stored index_type {one!r} is not an index declaration")
        kind = _stored_kind(name.lower())
        found.append(_declaration(one, kind, f"a stored {kind} column"))
    return found


def _stored_kind(name: str) -> ColumnKind:
    """The column kind a stored index name belongs to."""
    if name in _EMBEDDING_NAMES or name in _LEGACY_EMBEDDING:
        return "embedding"
    if name in _TEXT_NAMES:
        return "text"
    if name == "numeric":
        return "numeric"
    if name == "json":
        return "json"
    raise InvalidTypeError(
        f"stored index_type {name!r} is unknown to this lakefmt; a newer lakefmt may be needed"
    )
