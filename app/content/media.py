"""Attachments: images and videos on a post, stored by the SHA-256 of their bytes.

A file is accepted by what it is, not by what it is called: its first bytes are
matched against known signatures (puremagic) and only the types every channel
takes are kept (JPEG, PNG, GIF, WebP; MP4, QuickTime, WebM). The name and the
content type the client sends are never trusted. A file over the size limit is
refused while it arrives (413), one of another type after it arrived (415);
either way nothing reaches the blob store or the database.

Attaching or removing a file saves a new version of the post whose
``media_hashes`` list changes, so the content hash (what a decision approves)
covers the exact bytes of every attachment.

Bytes are stored before the version is saved; if the save then loses a race (the
post changed meanwhile) or the transaction rolls back, the stored bytes are left
unreferenced, never wrong: a blob is only ever served through a ``post_media`` row
of the caller's post. The daily collection (``app/storage/tasks.py``) removes them
once no row names them and nobody has put them for a day.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

import puremagic
from fastapi import Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlmodel import Session
from starlette.datastructures import UploadFile

from app.accounts import repository as accounts_repository
from app.audit import service as audit
from app.config import Settings, get_settings
from app.content import repository, service, utm
from app.content.models import Post, PostMedia
from app.content.schemas import PostUpdate
from app.content.service import PostAccess
from app.engagements import service as engagements
from app.errors import (
    N_,
    BrandkeepError,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from app.storage import CHUNK, BlobStore, store_for
from app.tenancy.service import Actor, actor_for

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
ACCEPTED_TYPES = IMAGE_TYPES + VIDEO_TYPES
# Extensions for the file picker only: the check itself is by content.
ACCEPT_ATTRIBUTE = ".jpg,.jpeg,.png,.gif,.webp,.mp4,.mov,.webm," + ",".join(ACCEPTED_TYPES)
# Each version carries at most this many files (the API's media_hashes limit).
MAX_FILES = 20
# Room for the multipart envelope (boundaries, part headers, the CSRF field).
ENVELOPE_BYTES = 64 * 1024
HEAD_BYTES = 8192
NOT_ATTACHED = N_("No such file on this post.")


class LengthRequired(BrandkeepError):
    status_code = 411
    title = N_("Send the upload with a Content-Length header.")


class PayloadTooLarge(BrandkeepError):
    status_code = 413
    title = N_("This file is too large.")


class UnsupportedMediaType(BrandkeepError):
    status_code = 415
    title = N_("This kind of file cannot be attached.")


def max_bytes(settings: Settings) -> int:
    return settings.max_upload_mb * 1024 * 1024


def too_large(settings: Settings) -> PayloadTooLarge:
    return PayloadTooLarge(
        N_("Files up to %(limit)d MB can be attached; this one is larger."),
        params={"limit": settings.max_upload_mb},
    )


def sniff(head: bytes) -> str | None:
    """The accepted content type these first bytes are, or None.

    Only the signatures puremagic is most confident about count, so a file that is
    first of all something else (a ZIP, a PDF…) is not let in on a weaker match.
    """
    if not head:
        return None
    try:
        matches = puremagic.magic_string(head)
    except puremagic.PureError:
        return None
    if not matches:
        return None
    best = max(match.confidence for match in matches)
    for match in matches:
        if match.confidence == best and match.mime_type in ACCEPTED_TYPES:
            return str(match.mime_type)
    return None


def safe_name(name: str | None) -> str:
    """The uploaded file's name for people to read: no folders, no control characters."""
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        character
        for character in unicodedata.normalize("NFC", base)
        if unicodedata.category(character)[0] != "C"
    )
    return cleaned.strip().lstrip(".")[:200]


async def received_file(request: Request, settings: Settings) -> UploadFile:
    """The request's ``file`` part, refused by its declared length before it is read.

    The body cannot be longer than its Content-Length (the server stops there), so
    checking it first bounds what is spooled; ``measure`` then counts the file itself.
    """
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise LengthRequired()
    if int(declared) > max_bytes(settings) + ENVELOPE_BYTES:
        raise too_large(settings)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput(
            N_("Send the file as multipart/form-data, in a part named file."),
            field_errors=[FieldError("file", N_("Choose a file to attach."))],
        )
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or (not upload.filename and not upload.size):
        raise InvalidInput(field_errors=[FieldError("file", N_("Choose a file to attach."))])
    return upload


@dataclass(frozen=True)
class Measured:
    sha256: str
    size: int
    content_type: str


def measure(file: BinaryIO, settings: Settings) -> Measured:
    """Hash and count the bytes (413 past the limit), then type them by content (415)."""
    limit = max_bytes(settings)
    digest = hashlib.sha256()
    size = 0
    head = b""
    file.seek(0)
    while chunk := file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large(settings)
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        digest.update(chunk)
    content_type = sniff(head)
    if content_type is None:
        raise UnsupportedMediaType(
            N_(
                "Attach an image (JPEG, PNG, GIF, WebP) or a video (MP4, MOV, WebM); "
                "this file is none of them, whatever its name says."
            )
        )
    file.seek(0)
    return Measured(digest.hexdigest(), size, content_type)


def _audit(session: Session, found: PostAccess, kind: str, data: dict[str, object]) -> None:
    user = found.granted.actor.user
    audit.append(
        session,
        organization_id=found.granted.engagement.brand_id,
        engagement_id=found.granted.engagement.id,
        actor_id=user.id,
        actor=f"{user.name} <{user.email}>",
        kind=kind,
        subject_type="post",
        subject_id=found.post.id,
        data=data,
    )


def check_editable(session: Session, found: PostAccess, expected_version: int) -> list[str]:
    """Refuse before any byte is stored: no right to edit, stale ETag, closed post."""
    # The post service's own rule (capability, engagement not ended), checked here
    # before the upload is read rather than after its bytes are stored.
    service._require_drafting(found.granted)
    if found.post.version != expected_version:
        raise PreconditionFailed()
    if found.post.status not in service.EDITABLE:
        raise Conflict(N_("A rejected or withdrawn post is not edited: start a new post."))
    return list(service.current_version(session, found.post).media_hashes)


def attach(
    session: Session,
    found: PostAccess,
    *,
    expected_version: int,
    upload: UploadFile,
    store: BlobStore,
    settings: Settings,
) -> Post:
    """Store the file (once per hash) and save a version that carries it."""
    hashes = check_editable(session, found, expected_version)
    measured = measure(upload.file, settings)
    if measured.sha256 in hashes:
        return found.post  # already on this version: nothing to change
    if len(hashes) >= MAX_FILES:
        raise InvalidInput(
            field_errors=[
                FieldError(
                    "file",
                    N_("A post carries at most %(count)d files: remove one first."),
                    {"count": MAX_FILES},
                )
            ]
        )
    store.put(measured.sha256, upload.file)
    post = found.post
    if repository.get_media(session, post, measured.sha256) is None:
        session.add(
            PostMedia(
                brand_id=post.brand_id,
                engagement_id=post.engagement_id,
                post_id=post.id,
                sha256=measured.sha256,
                content_type=measured.content_type,
                size=measured.size,
                original_name=safe_name(upload.filename),
                uploaded_by_id=found.granted.actor.user.id,
            )
        )
        session.flush()
    _audit(
        session,
        found,
        "media_attached",
        {
            "sha256": measured.sha256,
            "content_type": measured.content_type,
            "size": measured.size,
            "name": safe_name(upload.filename),
        },
    )
    return service.edit_post(
        session,
        found,
        expected_version=expected_version,
        data=PostUpdate(media_hashes=[*hashes, measured.sha256]),
    )


def detach(session: Session, found: PostAccess, *, expected_version: int, sha256: str) -> Post:
    """Save a version without this file; earlier versions still name (and show) it."""
    hashes = check_editable(session, found, expected_version)
    if sha256 not in hashes:
        raise NotFound(NOT_ATTACHED)
    _audit(session, found, "media_removed", {"sha256": sha256})
    return service.edit_post(
        session,
        found,
        expected_version=expected_version,
        data=PostUpdate(media_hashes=[item for item in hashes if item != sha256]),
    )


def media_file(session: Session, found: PostAccess, sha256: str) -> PostMedia:
    """A file uploaded to this post (any version's); 404 for anything else."""
    found.granted.require("engagement.read")
    row = repository.get_media(session, found.post, sha256.lower())
    if row is None:
        raise NotFound(NOT_ATTACHED)
    return row


def media_of(session: Session, post: Post) -> dict[str, PostMedia]:
    """The post's files by hash, for showing any of its versions."""
    return {row.sha256: row for row in repository.media_of(session, post)}


EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}


def content_disposition(row: PostMedia) -> str:
    """``inline`` with a safe name: ASCII fallback plus the RFC 5987 UTF-8 form.

    The extension always follows the checked type, never the uploaded name.
    """
    extension = EXTENSIONS.get(row.content_type, "bin")
    stem = row.original_name.rsplit(".", 1)[0] if row.original_name else ""
    stem = stem or row.sha256[:12]
    ascii_stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_ ") else "_" for c in stem)
    name = f"{stem}.{extension}"
    return f"inline; filename=\"{ascii_stem}.{extension}\"; filename*=UTF-8''{quote(name)}"


def file_response(store: BlobStore, row: PostMedia) -> Response:
    """The bytes with their checked type, never sniffed by the browser, never run as a page."""
    headers = {
        "Content-Disposition": content_disposition(row),
        "X-Content-Type-Options": "nosniff",
        # Opened on its own, the file is a document with nothing allowed to run.
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
        # The bytes under a hash never change; only people who may read the post get them.
        "Cache-Control": "private, max-age=86400, immutable",
        "ETag": f'"{row.sha256}"',
    }
    path = store.local_path(row.sha256)
    if path is not None:
        if not path.is_file():
            raise NotFound(NOT_ATTACHED)
        # FileResponse answers Range requests, which browsers need to play (and seek) video.
        return FileResponse(path, media_type=row.content_type, headers=headers)
    try:
        stream = store.open(row.sha256)
    except FileNotFoundError:
        raise NotFound(NOT_ATTACHED) from None

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type=row.content_type, headers=headers)


# --- demo data ----------------------------------------------------------------------

DEMO_ENGAGEMENT = "Social media 2026"
DEMO_CREATOR = "creator@northwind.example"
DEMO_POST = "Summit GTX teaser"


def demo_image(width: int = 1080, height: int = 1080) -> bytes:
    """A square PNG (the Instagram feed size) in Acme's colours, made without any library.

    Diagonal bands of green and sand, so that the preview shows a real picture.
    """
    colours = ((34, 87, 60), (222, 203, 164), (58, 126, 92))
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")  # filter type 0 for every scanline
        for x in range(width):
            row += bytes(colours[((x + y) // 90) % len(colours)])
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def load_demo(session: Session, lead: Actor) -> None:
    """Northwind's draft teaser gets a picture and a tracked link (``brandkeep demo``).

    Adds nothing when the post already carries a file, so loading twice changes nothing.
    """
    settings = get_settings()
    engagement = next(
        (
            summary.engagement
            for summary in engagements.list_engagements(session, lead, limit=200)[0]
            if summary.engagement.name == DEMO_ENGAGEMENT
        ),
        None,
    )
    creator_user = accounts_repository.get_user_by_email(session, DEMO_CREATOR)
    if engagement is None or creator_user is None:
        return
    creator = actor_for(session, creator_user)
    agency_side = engagements.access(session, creator, engagement.id)
    post = next((p for p in service.list_posts(session, agency_side) if p.title == DEMO_POST), None)
    if post is None or service.current_version(session, post).media_hashes:
        return
    found = service.access(session, creator, post.id)
    service.edit_post(
        session,
        found,
        expected_version=post.version,
        data=PostUpdate(link="https://acme.example/summit-gtx?ref=social"),
    )
    found = service.access(session, creator, post.id)
    utm.add_tracking(session, found, expected_version=found.post.version)
    found = service.access(session, creator, post.id)
    with tempfile.TemporaryFile() as image:
        image.write(demo_image())
        image.seek(0)
        attach(
            session,
            found,
            expected_version=found.post.version,
            upload=UploadFile(image, filename="summit-gtx.png"),
            store=store_for(settings),
            settings=settings,
        )
