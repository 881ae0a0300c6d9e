"""Regenerate the JSON Schemas in this folder from the pydantic models of the format.

Run from the repository root after changing ``lakefmt/format/manifest.py``::

    python spec/schemas/generate.py

``tests/spec/test_schemas.py`` fails while a schema file differs from what this prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def manifest_schema_text() -> str:
    """The manifest's JSON Schema as written to ``manifest.schema.json``."""
    from lakefmt.format.manifest import Manifest

    return json.dumps(Manifest.model_json_schema(), indent=2, sort_keys=True) + "\n"


SCHEMAS = {"manifest.schema.json": manifest_schema_text}


def main() -> int:
    """Write every schema file; print the ones that changed."""
    for name, render in SCHEMAS.items():
        path = HERE / name
        text = render()
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
