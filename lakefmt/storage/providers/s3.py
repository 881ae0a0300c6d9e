"""S3 through s3fs: ``HeadObject``, ``ListObjectsV2``, ``PutObject`` with ``If-None-Match``.

Public API only (checked against s3fs 2026.9.0 / aiobotocore 3.10): ``call_s3`` is s3fs's
documented sync wrapper of its botocore calls (with s3fs's retries and error
translation); ``cat_file``, ``pipe_file``, ``put_file`` and ``rm_file`` are fsspec's sync
faces of s3fs's coroutines, and the keywords passed to them (``max_concurrency``,
``chunksize``, ``mode``) are parameters of those coroutines.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from lakefmt.storage import transfer
from lakefmt.storage.providers.base import Ops, timestamp

#: What this adapter uses of ``s3fs.S3FileSystem``: method -> keywords it passes.
LIBRARY_API: dict[str, tuple[str, ...]] = {
    "call_s3": (),
    "cat_file": ("start", "end", "max_concurrency"),
    "pipe_file": ("mode",),
    "put_file": ("chunksize", "max_concurrency"),
    "rm_file": (),
}


class S3Ops(Ops):
    """S3 through s3fs's botocore client: ``HEAD``, ``ListObjectsV2``, ``DeleteObjects``."""

    def head(self, full: str) -> tuple[int, float]:
        """One ``HeadObject``."""
        bucket, _, key = full.partition("/")
        out = self.fs.call_s3("head_object", Bucket=bucket, Key=key)
        return int(out["ContentLength"]), timestamp(out.get("LastModified"))

    def list(self, prefix: str) -> list[str]:
        """``ListObjectsV2`` pages of 1000 keys."""
        bucket, _, key = prefix.partition("/")
        names: list[str] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self.fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, **extra)
            names.extend(f"{bucket}/{obj['Key']}" for obj in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return names

    def get(self, full: str, start: int | None = None, end: int | None = None) -> bytes:
        """One ``GetObject`` (``max_concurrency=1``: s3fs would otherwise ``HEAD`` first)."""
        return bytes(self.fs.cat_file(full, start=start, end=end, max_concurrency=1))

    def put(self, full: str, data: bytes, *, create: bool) -> None:
        """One ``PutObject``, with ``If-None-Match: *`` when ``create``."""
        try:
            self.fs.pipe_file(full, data, mode="create" if create else "overwrite")
        except OSError as exc:
            cause = getattr(exc, "__cause__", None)
            code = getattr(cause, "response", {}).get("Error", {}).get("Code")
            if create and code in ("PreconditionFailed", "412"):
                raise FileExistsError(errno.EEXIST, "conditional create refused", full) from exc
            raise

    def upload(self, local: str, full: str) -> None:
        """A multipart upload of ``PART_BYTES`` parts, ``MAX_CONCURRENCY`` at a time."""
        self.fs.put_file(
            local,
            full,
            chunksize=max(transfer.PART_BYTES, transfer.S3_MIN_PART_BYTES),
            max_concurrency=transfer.MAX_CONCURRENCY,
        )

    def delete(self, full: str) -> None:
        """One ``DeleteObject``."""
        self.fs.rm_file(full)

    def delete_many(self, fulls: Sequence[str]) -> None:
        """``DeleteObjects`` batches of 1000 keys (all in the root's bucket)."""
        for i in range(0, len(fulls), 1000):
            batch = fulls[i : i + 1000]
            bucket = batch[0].partition("/")[0]
            objects = [{"Key": full.partition("/")[2]} for full in batch]
            self.fs.call_s3(
                "delete_objects", Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
            )
