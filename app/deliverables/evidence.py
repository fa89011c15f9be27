"""Evidence files: what the agency hands over with a delivery, stored by SHA-256.

A file is accepted by what its bytes are (``app.storage.uploads.recognise``), never
by its name or declared type: PDF, images, CSV or plain text, Excel (XLSX, XLS),
Word (DOCX), PowerPoint (PPTX) and ZIP archives. A file over
``BRANDKEEP_MAX_UPLOAD_MB`` is refused (413), one of another type too (415); every
file of a delivery is checked before any is stored, so a refused delivery leaves
nothing behind in the blob store or the database.

Each file belongs to the delivery round it came with (``EvidenceFile.round``): a
deliverable returned and delivered again keeps each round's files apart. The bytes
are served only through their deliverable, to its engagement's two sides; anyone
else gets 404. The bytes are stored after the delivery's conditional update wins, so
losing a race stores nothing; a failure after that rolls the rows back and leaves
at most unreferenced bytes, never a row pointing at missing ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile

from app.config import Settings
from app.content import media
from app.deliverables import repository
from app.deliverables.models import Deliverable, EvidenceFile
from app.engagements.models import Engagement
from app.errors import N_, FieldError, InvalidInput, NotFound
from app.storage import BlobStore, downloads, uploads

ACCEPTED_TYPES = (
    uploads.PDF,
    uploads.PNG,
    uploads.JPEG,
    uploads.GIF,
    uploads.WEBP,
    uploads.CSV,
    uploads.TEXT,
    uploads.XLSX,
    uploads.XLS,
    uploads.DOCX,
    uploads.PPTX,
    uploads.ZIP,
)
# Extensions for the file picker only: the check itself is by content.
ACCEPT_ATTRIBUTE = ".pdf,.png,.jpg,.jpeg,.gif,.webp,.csv,.txt,.xlsx,.xls,.docx,.pptx,.zip"
# Files per delivery; a report and its annexes fit, a dumped folder goes in a ZIP.
MAX_FILES = 10
FIELD = "files"
NOT_HERE = N_("No such file on this deliverable.")


@dataclass(frozen=True)
class CheckedFile:
    """An upload whose size and type were checked, with the id its row will have."""

    id: uuid.UUID
    upload: UploadFile
    name: str
    sha256: str
    size: int
    content_type: str

    def evidence_item(self) -> dict[str, Any]:
        return {
            "type": "file",
            "file_id": str(self.id),
            "label": self.name,
            "sha256": self.sha256,
            "size": self.size,
            "content_type": self.content_type,
        }


def max_request_bytes(settings: Settings) -> int:
    return MAX_FILES * media.max_bytes(settings) + media.ENVELOPE_BYTES


def refuse_oversized(request: Request, settings: Settings) -> None:
    """Before the body is read: a multipart body needs a length, and a bounded one.

    The body cannot be longer than its Content-Length (the server stops there), so
    this bounds what is spooled; each file is then measured against the limit.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise media.LengthRequired()
    if int(declared) > max_request_bytes(settings):
        raise media.too_large(settings)


def uploads_of(form: FormData) -> list[UploadFile]:
    """The form's files; an empty file input (no name, no bytes) is no file."""
    return [
        value
        for value in form.getlist(FIELD)
        if isinstance(value, UploadFile) and (value.filename or value.size)
    ]


def check(files: Sequence[UploadFile], settings: Settings) -> list[CheckedFile]:
    """Measure (413) and type (415) every file before any is kept; the same bytes once."""
    if len(files) > MAX_FILES:
        raise InvalidInput(
            field_errors=[
                FieldError(
                    FIELD,
                    N_("A delivery carries at most %(count)d files: put the rest in a ZIP."),
                    {"count": MAX_FILES},
                )
            ]
        )
    checked: dict[str, CheckedFile] = {}
    for upload in files:
        try:
            measured = uploads.measure(upload.file, limit=media.max_bytes(settings))
        except uploads.TooLarge:
            raise media.too_large(settings) from None
        content_type = uploads.recognise(upload.file)
        if content_type not in ACCEPTED_TYPES:
            raise media.UnsupportedMediaType(
                N_(
                    "%(name)s cannot be evidence: attach a PDF, an image (PNG, JPEG, GIF, "
                    "WebP), a CSV or text file, a spreadsheet (XLSX, XLS), a document "
                    "(DOCX), a presentation (PPTX) or a ZIP archive; this file is none of "
                    "them, whatever its name says."
                ),
                params={"name": media.safe_name(upload.filename) or measured.sha256[:12]},
            )
        checked.setdefault(
            measured.sha256,
            CheckedFile(
                id=uuid.uuid4(),
                upload=upload,
                name=media.safe_name(upload.filename),
                sha256=measured.sha256,
                size=measured.size,
                content_type=content_type,
            ),
        )
    return list(checked.values())


def keep(
    session: Session,
    deliverable: Deliverable,
    files: Sequence[CheckedFile],
    *,
    round_: int,
    uploaded_by_id: uuid.UUID,
    store: BlobStore,
) -> None:
    """Store the bytes (once per hash) and record them as this round's evidence."""
    for file in files:
        store.put(file.sha256, file.upload.file)
        session.add(
            EvidenceFile(
                id=file.id,
                brand_id=deliverable.brand_id,
                engagement_id=deliverable.engagement_id,
                deliverable_id=deliverable.id,
                round=round_,
                sha256=file.sha256,
                content_type=file.content_type,
                size=file.size,
                original_name=file.name,
                uploaded_by_id=uploaded_by_id,
            )
        )
    session.flush()


def files_of(session: Session, engagement: Engagement) -> dict[uuid.UUID, list[EvidenceFile]]:
    """Every round's files of the engagement's deliverables, by deliverable, oldest first."""
    grouped: dict[uuid.UUID, list[EvidenceFile]] = {}
    for row in repository.evidence_files_of(session, engagement):
        grouped.setdefault(row.deliverable_id, []).append(row)
    return grouped


def file_of(session: Session, deliverable: Deliverable, file_id: uuid.UUID) -> EvidenceFile:
    """A file handed over with this deliverable (any round's); 404 for anything else."""
    row = repository.evidence_file(session, deliverable, file_id)
    if row is None:
        raise NotFound(NOT_HERE)
    return row


def download_name(row: EvidenceFile) -> str:
    """The uploaded name, with the extension of the type its bytes are."""
    extension = uploads.EXTENSIONS.get(row.content_type, "bin")
    stem = row.original_name.rsplit(".", 1)[0] if "." in row.original_name else row.original_name
    return f"{stem or row.sha256[:12]}.{extension}"


def file_response(store: BlobStore, row: EvidenceFile) -> Response:
    """The bytes to save, with their checked type: never shown in place, never sniffed."""
    headers = {
        "Content-Disposition": downloads.disposition("attachment", download_name(row)),
        "X-Content-Type-Options": "nosniff",
        # Opened anyway, the file is a document in which nothing may run.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        # The bytes under a hash never change; only the engagement's two sides get them.
        "Cache-Control": "private, max-age=86400, immutable",
        "ETag": f'"{row.sha256}"',
    }
    try:
        return downloads.blob_response(
            store, row.sha256, media_type=row.content_type, headers=headers
        )
    except FileNotFoundError:
        raise NotFound(NOT_HERE) from None
