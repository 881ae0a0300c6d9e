"""Index settings of a dataset handle: how hard searches try (:class:`SearchConfig`, Deep
Lake 4's ``ds.query_config``) and when indexes are built (:class:`IndexingMode`)."""

from __future__ import annotations

import dataclasses
import enum

from lakefmt.errors import InvalidArgumentError


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Settings of index searches made by queries.

    Attributes:
        ef_search: Candidates an HNSW search keeps (higher: better recall, slower); None
            picks one from ``LIMIT`` (at least 64).
        nprobe: IVF lists a ``pooled_quantized`` search visits; None: 16.
        refine: The index proposes ``LIMIT x refine`` rows, which are scored exactly.
        exact: Never use an index: every query scores every row (the reference answer).
        exact_below: A WHERE matching fewer than this share of the covered rows is answered
            by scoring the matching rows exactly (a graph search with a selective filter
            loses recall; exact scoring of few rows is cheap).
    """

    ef_search: int | None = None
    nprobe: int | None = None
    refine: int = 4
    exact: bool = False
    exact_below: float = 0.1

    def __post_init__(self) -> None:
        for name in ("ef_search", "nprobe"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidArgumentError(f"SearchConfig {name} must be a positive int or None")
        if isinstance(self.refine, bool) or not isinstance(self.refine, int) or self.refine < 1:
            raise InvalidArgumentError("SearchConfig refine must be a positive int")
        if not isinstance(self.exact, bool):
            raise InvalidArgumentError("SearchConfig exact must be True or False")
        if not isinstance(self.exact_below, (int, float)) or not 0 <= self.exact_below <= 1:
            raise InvalidArgumentError("SearchConfig exact_below must be between 0 and 1")


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
