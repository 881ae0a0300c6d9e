"""The house rules the import-linter contracts do not cover: no import cycle between any two
modules, no lakefmt import hidden in a function to dodge one, and modules of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lakefmt"

#: Modules over this many lines must say why in their docstring.
MAX_LINES = 800
#: Function-level imports of lakefmt modules that are there for import time, not for a cycle:
#: each pulls in a heavy dependency that ``import lakefmt`` must not pay for.
LAZY_IMPORTS = {
    ("lakefmt/cli.py", "lakefmt.integrations"),  # importers/exporters: pandas, PIL, tqdm
    ("lakefmt/format/verify.py", "lakefmt.codecs.image"),  # only a full verify decodes media
    ("lakefmt/format/verify.py", "lakefmt.codecs.video"),
    ("lakefmt/format/verify.py", "lakefmt.codecs.mesh"),
    ("lakefmt/storage/registry.py", "lakefmt.storage.object_store"),  # fsspec providers
    ("lakefmt/dataset/query_view.py", "lakefmt.tql"),  # sqlglot and DuckDB
    ("lakefmt/dataset/interop.py", "lakefmt.tql"),
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_import_cycle_between_modules() -> None:
    # imports under TYPE_CHECKING only name types for the checker; they never run
    graph = grimp.build_graph("lakefmt", exclude_type_checking_imports=True)
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert not cycles, f"modules importing each other (directly or through others): {cycles}"


def _function_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("lakefmt"):
                    found.append(inner.module or "")
                elif isinstance(inner, ast.Import):
                    found += [a.name for a in inner.names if a.name.startswith("lakefmt")]
    return found


def test_lakefmt_imports_sit_at_module_level() -> None:
    hidden = []
    for path in _modules():
        rel = path.relative_to(PACKAGE.parent).as_posix()
        for module in _function_level_imports(path):
            if not any(rel == f and module.startswith(m) for f, m in LAZY_IMPORTS):
                hidden.append(f"{rel}: {module}")
    assert not hidden, f"lakefmt imports inside functions (move them to the top): {hidden}"


def test_lazy_import_list_is_current() -> None:
    used = {
        (path.relative_to(PACKAGE.parent).as_posix(), module)
        for path in _modules()
        for module in _function_level_imports(path)
    }
    stale = {
        (f, m) for f, m in LAZY_IMPORTS if not any(uf == f and um.startswith(m) for uf, um in used)
    }
    assert not stale, f"LAZY_IMPORTS lists imports that no longer exist: {stale}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_long_modules_say_why(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert f"{MAX_LINES} lines" in doc, (
        f"{path.name} has {lines} lines: split it by concern, or say in its docstring why it "
        f"is over {MAX_LINES} lines"
    )
