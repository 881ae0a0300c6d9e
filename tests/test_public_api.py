"""The public surface: what __all__ exports, and that every public callable is documented."""

from __future__ import annotations

import inspect

import pytest

import lakefmt
import lakefmt.errors
import lakefmt.types


def _public_callables() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for module, names in (
        (lakefmt, lakefmt.__all__),
        (lakefmt.types, lakefmt.types.__all__),
        (lakefmt.errors, lakefmt.errors.__all__),
    ):
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            found.append((f"{module.__name__}.{name}", obj))
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, property):
                        found.append((f"{module.__name__}.{name}.{attr}", member.fget))
                    elif inspect.isfunction(member):
                        found.append((f"{module.__name__}.{name}.{attr}", member))
    return found


def test_all_names_exist() -> None:
    for module in (lakefmt, lakefmt.types, lakefmt.errors):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


@pytest.mark.parametrize(
    "qualname,obj", _public_callables(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_callables_have_docstrings_and_hints(qualname: str, obj: object) -> None:
    assert inspect.getdoc(obj), f"{qualname} has no docstring"
    if inspect.isclass(obj) or not inspect.isfunction(obj):
        return
    sig = inspect.signature(obj)
    for pname, param in sig.parameters.items():
        if pname in ("self", "cls") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        assert param.annotation is not inspect.Parameter.empty, (
            f"{qualname}({pname}) has no type hint"
        )
    if obj.__name__ not in ("__init__",):
        assert sig.return_annotation is not inspect.Signature.empty, (
            f"{qualname} has no return type"
        )


def test_errors_share_one_base() -> None:
    for name in lakefmt.errors.__all__:
        assert issubclass(getattr(lakefmt.errors, name), lakefmt.errors.LakefmtError)


def test_import_is_light() -> None:
    import subprocess
    import sys

    heavy = "('PIL', 'av', 'trimesh', 'torch', 'pandas', 'polars', 'sqlglot', 'duckdb')"
    code = f"import lakefmt, sys; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
