"""Where attachment bytes live: a content-addressed blob store.

A blob is named by the SHA-256 of its bytes, so the same file uploaded twice is
stored once, and a name can never point at other bytes than the ones a decision
was made on (the approval hash covers the media hashes).

``BlobStore`` is the whole contract the rest of the app relies on. The embedded
default keeps blobs on the local filesystem under the data dir
(``FileSystemBlobStore``); an S3-compatible store (MinIO, Ceph, AWS S3…) can
replace it by implementing the same methods with ``PutObject`` /
``GetObject`` / ``HeadObject`` / ``DeleteObject`` / ``ListObjectsV2`` on the key
``sha256[:2]/sha256``, so that several app processes share the same bytes.

Bytes are written before the row that names them is committed, so a request that
then fails (a lost race, a rollback) leaves bytes nobody names. They are collected
later, not at the rollback: with content addressing another request may be about
to name the same bytes. ``app/storage/tasks.py`` removes blobs that no row names
and that nobody has put for a grace period; ``put`` of bytes already stored marks
them as just put again, which keeps them through the next collection.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
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

    def blobs(self) -> Iterator[tuple[str, datetime]]:
        """Every stored blob's name with when it was last put (for the collection)."""

    def delete_unless_put_since(self, sha256: str, cutoff: datetime) -> bool:
        """Remove the bytes only if nobody put them since ``cutoff``; True if removed."""

    def delete_stale_temporaries(self, cutoff: datetime) -> int:
        """Remove what interrupted ``put`` calls left before ``cutoff``; how many."""


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
        # Not stored yet: go on and write the bytes.
        with contextlib.suppress(FileNotFoundError):
            # Same name, same bytes: nothing to write. The new time tells the collection
            # that a request is about to name these bytes (see delete_unless_put_since).
            os.utime(target)
            return
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

    def blobs(self) -> Iterator[tuple[str, datetime]]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if not (folder.is_dir() and len(folder.name) == 2):
                continue  # ``tmp`` and anything else that is not a blob's folder
            for path in sorted(folder.iterdir()):
                if SHA256.match(path.name) and path.name.startswith(folder.name):
                    try:
                        yield path.name, _modified(path)
                    except FileNotFoundError:
                        continue  # removed meanwhile

    def delete_unless_put_since(self, sha256: str, cutoff: datetime) -> bool:
        """Move the blob aside first, then look at its time, then remove or restore it.

        A ``put`` that touched the file before the move leaves a recent time on it: it
        is put back. A ``put`` after the move finds no file and writes the bytes anew.
        Either way the request that is about to name the bytes finds them stored.
        """
        target = self.path_of(sha256)
        self.tmp.mkdir(parents=True, exist_ok=True)
        aside = self.tmp / f"collect-{sha256}-{secrets.token_hex(4)}"
        try:
            os.replace(target, aside)
        except FileNotFoundError:
            return False
        if _modified(aside) >= cutoff:
            os.replace(aside, target)  # same bytes even if a put wrote them again meanwhile
            return False
        aside.unlink(missing_ok=True)  # a second collection running at once took it
        return True

    def delete_stale_temporaries(self, cutoff: datetime) -> int:
        """Remove temporary files a crashed ``put`` left behind before ``cutoff``."""
        if not self.tmp.is_dir():
            return 0
        removed = 0
        for path in self.tmp.iterdir():
            try:
                if path.is_file() and _modified(path) < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _modified(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def store_for(settings: Settings) -> BlobStore:
    """The app's blob store: the data dir's ``media`` folder."""
    return FileSystemBlobStore(settings.data_dir / "media")
