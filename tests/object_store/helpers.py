"""Fault injection for the object-store tests: wrappers around a storage's request layer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Flaky:
    """Wraps an ``ObjectStoreStorage._ops``: its first ``failures`` calls raise ``error()``.

    Only calls whose name is in ``methods`` (all public ones by default) and whose first
    argument (the object's full name) passes ``match`` count and fail.
    """

    def __init__(
        self,
        ops: Any,
        failures: int,
        error: Callable[[], BaseException],
        *,
        methods: tuple[str, ...] = (),
        match: Callable[[str], bool] = lambda name: True,
        after: bool = False,
    ) -> None:
        self._ops = ops
        self.remaining = failures
        self.error = error
        self.methods = methods
        self.match = match
        self.after = after  # run the real call first, then fail (a lost response)
        self.failed = 0
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ops, name)
        wanted = not self.methods or name in self.methods
        if name.startswith("_") or not callable(attr) or not wanted:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            target = str(args[0]) if args else ""
            with self._lock:
                self.calls.append((name, target))
                fail = self.remaining > 0 and self.match(target)
                if fail:
                    self.remaining -= 1
                    self.failed += 1
            if fail and self.after:
                attr(*args, **kwargs)
            if fail:
                raise self.error()
            return attr(*args, **kwargs)

        return call
