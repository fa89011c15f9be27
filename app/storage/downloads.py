"""Handing stored bytes back over HTTP, whichever store holds them.

The domain decides who may have a blob and under which headers; this module only
knows the ``BlobStore`` contract: a local file is served as a file (range requests
included), a remote blob is streamed in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal
from urllib.parse import quote

from fastapi.responses import FileResponse, Response, StreamingResponse

from app.storage import CHUNK, BlobStore


def disposition(kind: Literal["inline", "attachment"], filename: str) -> str:
    """A Content-Disposition with an ASCII fallback name and the RFC 5987 UTF-8 one."""
    stem, dot, extension = filename.rpartition(".")
    if not dot:
        stem, extension = filename, ""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "-_ ") else "_" for c in stem)
    extension = "".join(c for c in extension if c.isascii() and c.isalnum())
    ascii_name = f"{fallback}.{extension}" if extension else fallback
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def blob_response(
    store: BlobStore, sha256: str, *, media_type: str, headers: Mapping[str, str]
) -> Response:
    """The blob's bytes with these headers; ``FileNotFoundError`` if the store lacks it."""
    path = store.local_path(sha256)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(sha256)
        return FileResponse(path, media_type=media_type, headers=dict(headers))
    stream = store.open(sha256)

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type=media_type, headers=dict(headers))
