"""Where attachment bytes live: a content-addressed blob store.

A blob is named by the SHA-256 of its bytes, so the same file uploaded twice is
stored once, and a name can never point at other bytes than the ones a decision
was made on (the approval hash covers the media hashes).

``BlobStore`` is the whole contract the rest of the app relies on. The embedded
default keeps blobs on the local filesystem under the data dir
(``FileSystemBlobStore``); an S3-compatible store (MinIO, Ceph, AWS S3…) can
replace it by implementing the same five methods with ``PutObject`` /
``GetObject`` / ``HeadObject`` / ``DeleteObject`` on the key ``sha256[:2]/sha256``,
so that several app processes share the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from app.config import Settings

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class BlobMismatch(ValueError):
    """The bytes handed to ``put`` do not hash to the name they were given."""


def check_name(sha256: str) -> str:
    # Names become paths (or object keys): only 64 lowercase hex digits get that far.
    if not SHA256.match(sha256):
        raise ValueError("a blob is named by the lowercase hex SHA-256 of its bytes")
    return sha256


class BlobStore(Protocol):
    def put(self, sha256: str, source: BinaryIO) -> None:
        """Store the bytes read from ``source`` under their hash; atomic, idempotent."""

    def open(self, sha256: str) -> BinaryIO:
        """The stored bytes, for reading (``FileNotFoundError`` if absent)."""

    def size(self, sha256: str) -> int:
        """The stored size in bytes (``FileNotFoundError`` if absent)."""

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None:
        """Remove the bytes; deleting an absent blob is not an error."""

    def local_path(self, sha256: str) -> Path | None:
        """A file to serve directly (with range requests), or None for a remote store."""


class FileSystemBlobStore:
    """Blobs as files ``root/ab/abcdef…``, written to a temporary file and renamed.

    The rename is atomic on one filesystem (the temporary files live under
    ``root/tmp``), so a reader never sees half a blob, whatever crashes.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path_of(self, sha256: str) -> Path:
        check_name(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, sha256: str, source: BinaryIO) -> None:
        target = self.path_of(sha256)
        if target.exists():
            return  # same name, same bytes: content addressing makes this a no-op
        self.tmp.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        handle, temporary = tempfile.mkstemp(dir=self.tmp, prefix="put-")
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise BlobMismatch(sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open(self, sha256: str) -> BinaryIO:
        return self.path_of(sha256).open("rb")

    def size(self, sha256: str) -> int:
        return self.path_of(sha256).stat().st_size

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

    def local_path(self, sha256: str) -> Path | None:
        return self.path_of(sha256)


def store_for(settings: Settings) -> BlobStore:
    """The app's blob store: the data dir's ``media`` folder."""
    return FileSystemBlobStore(settings.data_dir / "media")
