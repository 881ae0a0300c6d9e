"""The public surface: what __all__ exports, and that every public callable is documented."""

from __future__ import annotations

import inspect
import pkgutil
import types

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


# Public names a module may hold besides its __all__: its submodules (each an import path of
# its own; some appear only once imported, e.g. ``lakefmt.tql`` by the first query), the
# ``annotations`` feature ``from __future__ import annotations`` binds, and the typing names
# errors.py's signatures use.
SUBMODULES = {
    "lakefmt": {
        "cli",
        "codecs",
        "dask",
        "dataset",
        "format",
        "indexes",
        "integrations",
        "storage",
        "tql",
    },
    "lakefmt.types": {
        "array",
        "base",
        "containers",
        "convert",
        "extension",
        "geometry",
        "indexes",
        "labels",
        "link",
        "masks",
        "media",
        "registry",
        "scalars",
    },
    "lakefmt.errors": set(),
}
OTHER_NAMES = {
    "lakefmt": {"annotations"},
    "lakefmt.types": {"annotations"},
    "lakefmt.errors": {"annotations", "Any", "Sequence"},
}
PUBLIC_MODULES = (lakefmt, lakefmt.types, lakefmt.errors)


def _public_names(module: types.ModuleType) -> set[str]:
    return {name for name in vars(module) if not name.startswith("_")}


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_names_exist(module: types.ModuleType) -> None:
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"
    assert len(set(module.__all__)) == len(module.__all__), f"{module.__name__}.__all__ repeats"


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_public_names_are_exactly_all(module: types.ModuleType) -> None:
    allowed = SUBMODULES[module.__name__] | OTHER_NAMES[module.__name__]
    unlisted = _public_names(module) - set(module.__all__) - allowed
    assert not unlisted, f"{module.__name__} has public names missing from __all__: {unlisted}"
    stale = OTHER_NAMES[module.__name__] - _public_names(module)
    assert not stale, f"OTHER_NAMES lists names {module.__name__} no longer has: {stale}"
    for name in _public_names(module) & SUBMODULES[module.__name__]:
        assert inspect.ismodule(getattr(module, name)), f"{module.__name__}.{name}"


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_submodules_are_listed_explicitly(module: types.ModuleType) -> None:
    found = {
        info.name
        for info in pkgutil.iter_modules(getattr(module, "__path__", []))
        if not info.name.startswith("_")
    }
    listed = SUBMODULES[module.__name__] | (found & set(module.__all__))
    assert found == listed, f"{module.__name__}: submodules {found ^ listed} are not listed"


def _exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for obj in vars(lakefmt.errors).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == lakefmt.errors.__name__
    ]


@pytest.mark.parametrize("exc", _exception_classes(), ids=lambda c: c.__name__)
def test_every_error_is_documented_and_exported(exc: type[BaseException]) -> None:
    name = exc.__name__
    assert exc.__doc__ and exc.__doc__.strip(), f"lakefmt.errors.{name} has no docstring"
    assert name in (lakefmt.errors.__doc__ or ""), f"the lakefmt.errors tree omits {name}"
    assert name in lakefmt.errors.__all__, f"lakefmt.errors.__all__ omits {name}"
    assert name in lakefmt.__all__, f"lakefmt.__all__ omits {name}"
    assert getattr(lakefmt, name) is exc


def test_the_top_level_exports_exactly_the_errors_module() -> None:
    top_errors = {
        name
        for name in lakefmt.__all__
        if inspect.isclass(getattr(lakefmt, name))
        and issubclass(getattr(lakefmt, name), BaseException)
    }
    assert top_errors == set(lakefmt.errors.__all__)


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


def test_package_docstring_example_runs() -> None:
    import doctest

    import lakefmt

    result = doctest.testmod(lakefmt, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0
