"""The Python functions lakefmt adds to its DuckDB databases, and the names SQL calls them by.

The function library (:mod:`lakefmt.tql.functions`) writes calls to these names; the engine
(:mod:`lakefmt.tql.engine`) registers them on every database it creates.
"""

from __future__ import annotations

import duckdb
import duckdb.func
import pyarrow as pa

from lakefmt.codecs.image import image_shape
from lakefmt.errors import LakefmtError

#: Name of the UDF giving an encoded image's (height, width, channels) from its header.
IMAGE_SHAPE_UDF = "__lf_image_shape"


def image_shape_udf(column: pa.Array) -> pa.Array:
    """Arrow UDF: ``[h, w, c]`` of each encoded image, read from the header only."""
    out: list[list[int] | None] = []
    for value in column.to_pylist():
        if value is None:
            out.append(None)
            continue
        try:
            out.append(list(image_shape(value)))
        except (LakefmtError, ValueError, ImportError):
            out.append(None)
    return pa.array(out, type=pa.list_(pa.int64()))


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register every UDF on a DuckDB connection."""
    con.create_function(
        IMAGE_SHAPE_UDF,
        image_shape_udf,
        [duckdb.sqltype("BLOB")],
        duckdb.sqltype("BIGINT[]"),
        type=duckdb.func.ARROW,
    )
