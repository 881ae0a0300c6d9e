"""Progress bars for long operations: shown on a terminal, silent otherwise."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from typing import Any


class Progress:
    """A counter that draws a tqdm bar when enabled (``progress=None``: only on a terminal)."""

    def __init__(
        self, total: int | None, desc: str, enabled: bool | None = None, unit: str = "rows"
    ) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            columns, lines = _terminal_size()
            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=unit,
                unit_scale=True,
                file=sys.stderr,
                ncols=None if columns else 80,
                nrows=None if lines else 24,
            )

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


def _terminal_size() -> tuple[int, int]:
    """(columns, lines) of the terminal on stderr; 0 when unknown or reported as 0.

    A fresh pseudo-terminal (``docker run -t``, CI runners, ``script``) can report a size of
    0 x 0, and tqdm then hides the bar (no room for it); we fall back to 80 x 24.
    """
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 0, 0
    return size.columns, size.lines


def tracked(items: Any, total: int | None, desc: str, enabled: bool | None) -> Iterator[Any]:
    """Iterate ``items`` with a progress bar counting items."""
    with Progress(total, desc, enabled, unit="items") as bar:
        for item in items:
            yield item
            bar.update(1)
