"""Appendix D of the spec names where each constant lives; every name must still resolve."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[2] / "spec" / "format.md"


def _pointers() -> list[str]:
    text = SPEC.read_text()
    appendix = text[text.index("## Appendix D") :]
    appendix = appendix[: appendix.index("\n- ")]  # the table, before the advice list
    names = []
    for row in appendix.splitlines():
        if row.startswith("|") and not row.startswith("|---"):
            where = row.rstrip("|").rsplit("|", 1)[-1]
            names += re.findall(r"`([A-Za-z_.]+)`", where)
    # a bare constant (``FRAGMENT_MAX_BYTES``) lives in the module named before it in its cell
    return [n for n in names if "." in n]


def _resolve(name: str) -> object:
    parts = name.split(".")
    for prefix in ("lakefmt", "lakefmt.format"):
        for cut in range(len(parts), 0, -1):
            try:
                obj: object = importlib.import_module(".".join([prefix, *parts[:cut]]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            return obj
    raise LookupError(name)


def test_appendix_d_lists_pointers() -> None:
    assert len(_pointers()) >= 8


@pytest.mark.parametrize("name", _pointers())
def test_appendix_d_pointer_resolves(name: str) -> None:
    assert _resolve(name) is not None
