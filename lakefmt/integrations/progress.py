"""Progress bars for long operations: shown on a terminal, silent otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any


class Progress:
    """A counter that draws a tqdm bar when enabled (``progress=None``: only on a terminal)."""

    def __init__(self, total: int | None, desc: str, enabled: bool | None = None, unit: str = "rows") -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr)

    def update(self, n: int) -> None:
        """Advance by ``n``."""
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tracked(items: Any, total: int | None, desc: str, enabled: bool | None) -> Iterator[Any]:
    """Iterate ``items`` with a progress bar counting items."""
    with Progress(total, desc, enabled, unit="items") as bar:
        for item in items:
            yield item
            bar.update(1)
