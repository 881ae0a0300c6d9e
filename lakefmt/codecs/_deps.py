"""Lazy import of the optional media packages.

Pillow, PyAV and trimesh are slow to import and optional, so the codecs import them only
when a function that needs them is first called.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lakefmt.errors import MissingDependencyError

# import name -> name on PyPI, for the error message
_DISTRIBUTIONS = {"PIL": "pillow", "av": "av", "trimesh": "trimesh"}


def require(module_name: str) -> ModuleType:
    """Import an optional dependency, explaining how to install it if it is missing.

    Args:
        module_name: Importable module name, e.g. ``"PIL.Image"``, ``"av"`` or ``"trimesh"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: The module (or the package providing it) is not installed.
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        top = module_name.split(".", 1)[0]
        dist = _DISTRIBUTIONS.get(top, top)
        raise MissingDependencyError(
            f"lakefmt needs the optional package {dist!r} to handle this media type; "
            f"install it with: pip install 'lakefmt[media]'"
        ) from exc
