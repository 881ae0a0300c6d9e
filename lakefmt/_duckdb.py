"""Settings every private DuckDB connection of lakefmt opens with.

No DuckDB import here: ``import lakefmt`` stays light, and each user opens its connection
when it first needs one (the query engine, the text index builder).
"""

from __future__ import annotations

from typing import Any

#: ``duckdb.connect(":memory:", config=SANDBOX_CONFIG)``: no replacement scans of Python
#: variables, no extension downloads or autoloads.
SANDBOX_CONFIG: dict[str, Any] = {
    "python_enable_replacements": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
