"""Index settings of a dataset handle: how hard searches try (:class:`SearchConfig`, Deep
Lake 4's ``ds.query_config``) and when indexes are built (:class:`IndexingMode`)."""

from __future__ import annotations

import dataclasses
import enum

from lakefmt.errors import InvalidArgumentError


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Settings of index searches made by queries (Deep Lake 4's ``SearchConfig``).

    Attributes:
        accuracy_factor: Deep Lake's re-rank multiplier: the index proposes ``LIMIT x
            accuracy_factor`` rows, which are scored exactly (``refine`` is the same value).
        cluster_search_accuracy_factor: Scales how much of the index a search visits (HNSW's
            candidate list, IVF's lists), 0.5 to 2.0 in Deep Lake's presets.
        ef_search: Candidates an HNSW search (``clustered``) keeps, overriding the scaled
            default (256, and at least ``LIMIT x accuracy_factor``).
        nprobe: IVF lists a search of an IVF index (``clustered_quantized``,
            ``pooled_quantized``) visits, overriding the scaled default (2% of the lists,
            at least 8); a selective WHERE widens it (by the inverse of its share).
        exact: Never use an index: every query scores every row (the reference answer).
        exact_below: A WHERE matching fewer than this share of the covered rows is answered
            by scoring the matching rows exactly (a graph search with a selective filter
            loses recall: 0.49 at 0.5% of 500k rows, 0.95 at 5%; exact scoring of few rows is
            cheap).
    """

    accuracy_factor: int = 4
    cluster_search_accuracy_factor: float = 1.0
    ef_search: int | None = None
    nprobe: int | None = None
    exact: bool = False
    exact_below: float = 0.05

    def __post_init__(self) -> None:
        for name in ("ef_search", "nprobe"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidArgumentError(f"SearchConfig {name} must be a positive int or None")
        factor = self.accuracy_factor
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise InvalidArgumentError("SearchConfig accuracy_factor must be a positive int")
        scale = self.cluster_search_accuracy_factor
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise InvalidArgumentError(
                "SearchConfig cluster_search_accuracy_factor must be a positive number"
            )
        if not isinstance(self.exact, bool):
            raise InvalidArgumentError("SearchConfig exact must be True or False")
        below = self.exact_below
        if isinstance(below, bool) or not isinstance(below, (int, float)) or not 0 <= below <= 1:
            raise InvalidArgumentError("SearchConfig exact_below must be between 0 and 1")

    @property
    def refine(self) -> int:
        """Rows proposed per row asked for (``accuracy_factor``)."""
        return self.accuracy_factor

    @classmethod
    def default_config(cls) -> SearchConfig:
        """The default settings."""
        return cls()

    @classmethod
    def balanced(cls) -> SearchConfig:
        """The default settings (Deep Lake's name)."""
        return cls()

    @classmethod
    def high_accuracy(cls) -> SearchConfig:
        """Twice the candidates and twice the search effort: higher recall, slower."""
        return cls(accuracy_factor=8, cluster_search_accuracy_factor=2.0)

    @classmethod
    def fast(cls) -> SearchConfig:
        """Half the search effort: lower recall, faster."""
        return cls(accuracy_factor=2, cluster_search_accuracy_factor=0.5)


@dataclasses.dataclass(frozen=True)
class IndexBuildConfig:
    """How much effort index builds spend (Deep Lake 4's ``IndexBuildConfig``).

    Attributes:
        build_multiplier: Scales the build effort of vector indexes: HNSW's candidate list
            while inserting (``ef_construction`` = 10 x this), IVF's k-means iterations
            (``niter`` = 2.5 x this, at least 1). 2 (fast) to 10 (best graphs); 4 is the
            default.
    """

    build_multiplier: int = 4

    def __post_init__(self) -> None:
        m = self.build_multiplier
        if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 64:
            raise InvalidArgumentError("IndexBuildConfig build_multiplier must be an int in 1..64")

    @property
    def ef_construction(self) -> int:
        """HNSW's candidate list while building."""
        return 10 * self.build_multiplier

    @property
    def niter(self) -> int:
        """k-means iterations training IVF lists."""
        return max(1, 5 * self.build_multiplier // 2)

    @classmethod
    def default_config(cls) -> IndexBuildConfig:
        """The default effort."""
        return cls()

    @classmethod
    def high_quality(cls) -> IndexBuildConfig:
        """Twice the effort: better graphs, slower builds."""
        return cls(build_multiplier=8)

    @classmethod
    def fast(cls) -> IndexBuildConfig:
        """Half the effort: faster builds, somewhat lower recall."""
        return cls(build_multiplier=2)


class IndexingMode(enum.Enum):
    """When a writable dataset builds the indexes its columns declare.

    * ``Automatic`` (default): ``commit`` adds a segment over new rows once
      :data:`~lakefmt.indexes.maintain.DELTA_ROWS` of them are not indexed (fewer are
      searched exactly, at little cost), and ``optimize`` rebuilds each index as one segment.
    * ``Always``: every ``commit`` indexes every row not indexed yet.
    * ``Off``: only ``build_indexes()`` and ``create_index`` build; queries stay exact for
      rows appended since.
    """

    Automatic = "automatic"
    Always = "always"
    Off = "off"
