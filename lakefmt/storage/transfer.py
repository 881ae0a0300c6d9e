"""How object-store transfers are split and staged: part sizes, concurrency, the spool.

A whole-file read asks for the first :data:`PART_BYTES` and fetches a larger object's
other parts concurrently (on ``lakefmt._pool``'s ``io`` pool). A data file up to
:data:`SPOOL_BYTES` is uploaded from memory in one PUT; a larger one is spooled to a local
temporary file (:class:`Spool`: memory stays bounded) and uploaded in parallel parts.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from typing import Any

#: Part size for parallel ranged downloads and multipart uploads.
PART_BYTES = 8 << 20
#: Concurrent requests of one parallel transfer.
MAX_CONCURRENCY = 8
#: S3 refuses multipart parts below 5 MiB (all but the last).
S3_MIN_PART_BYTES = 5 << 20
#: Data files up to this size are uploaded from memory in one PUT; larger ones are spooled
#: to a temporary file and uploaded in parallel parts.
SPOOL_BYTES = 2 * PART_BYTES


class Spool(io.RawIOBase):
    """A write sink kept in memory up to ``limit`` bytes, then on a temporary file."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit
        self._memory: io.BytesIO | None = io.BytesIO()
        self._file: Any = None
        self.size = 0

    def writable(self) -> bool:
        """Return True."""
        return True

    def write(self, data: Any) -> int:
        """Append ``data``."""
        view = memoryview(data).cast("B")
        if self._memory is not None and self.size + len(view) > self._limit:
            # closed by finish()/discard(), after the upload reads it by name
            self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115
                prefix="lakefmt-upload-", delete=False
            )
            self._file.write(self._memory.getbuffer())
            self._memory = None
        (self._memory if self._memory is not None else self._file).write(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        """Return the number of bytes written."""
        return self.size

    @property
    def spilled(self) -> str | None:
        """The temporary file's name once the data outgrew memory, else None."""
        return None if self._file is None else str(self._file.name)

    def getvalue(self) -> bytes:
        """Return the data kept in memory."""
        assert self._memory is not None
        return self._memory.getvalue()

    def finish(self) -> None:
        """Flush and close the temporary file (if any), keeping it on disk."""
        if self._file is not None:
            self._file.close()

    def discard(self) -> None:
        """Remove the temporary file (if any)."""
        if self._file is not None:
            self._file.close()
            with contextlib.suppress(OSError):
                os.unlink(self._file.name)
