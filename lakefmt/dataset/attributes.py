"""Dataset handles refuse attributes they do not have.

A typo or an option of another library (``ds.auto_commit_enabled = True``) would otherwise
be stored and silently do nothing; the error names the settable attributes instead.
"""

from __future__ import annotations

import difflib

from lakefmt.errors import UnknownAttributeError

_MISSING = object()


def check_public_attribute(obj: object, name: str) -> None:
    """Raise unless the public attribute ``name`` may be set on ``obj``: its class must
    define it, and not as a read-only property.

    Raises:
        UnknownAttributeError: No such attribute (with the closest name), or a read-only one.
    """
    known = getattr(type(obj), name, _MISSING)
    if known is _MISSING or (isinstance(known, property) and known.fset is None):
        raise _unknown_attribute(obj, name, known is not _MISSING)


def _unknown_attribute(obj: object, name: str, read_only: bool) -> UnknownAttributeError:
    cls = type(obj)
    kind = cls.__name__
    if read_only:
        return UnknownAttributeError(f"{kind}.{name} is read-only; nothing was set")
    settable = sorted(
        n
        for n in dir(cls)
        if not n.startswith("_")
        and not callable(getattr(cls, n))
        and (not isinstance(getattr(cls, n), property) or getattr(cls, n).fset is not None)
    )
    close = difflib.get_close_matches(name, [n for n in dir(cls) if not n.startswith("_")])
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnknownAttributeError(
        f"{kind} has no attribute {name!r}{hint}; nothing was set. Settable attributes: "
        f"{', '.join(settable) or 'none'}"
    )
