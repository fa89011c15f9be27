"""JSON API: an engagement's deliverables, delivering, accepting and returning them."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app import idempotency, storage
from app.deliverables import evidence, service
from app.deliverables.deps import ApiDeliverable
from app.deliverables.models import Deliverable, DeliverableStatus, EvidenceFile
from app.deliverables.schemas import (
    DeliverableCreate,
    DeliverableOut,
    DeliverIn,
    EvidenceFileOut,
    ReturnIn,
    deliver_input,
)
from app.deps import ApiActor, IfMatch, SessionDep, etag_for, required_version
from app.engagements.deps import ApiEngagement
from app.errors import N_, InvalidInput
from app.idempotency import IdempotencyKey
from app.schemas import parse_input
from app.web import settings_of

router = APIRouter(tags=["deliverables"])


def deliverable_out(row: Deliverable) -> DeliverableOut:
    data = row.model_dump(warnings=False)  # enum columns load as plain strings
    data.update(status=str(row.status), late=service.is_late(row))
    return DeliverableOut.model_validate(data)


def _answer(response: Response, row: Deliverable) -> DeliverableOut:
    response.headers["ETag"] = etag_for(row.version)
    return deliverable_out(row)


def _optional_version(if_match: str | None) -> int | None:
    return required_version(if_match) if if_match else None


@router.get(
    "/engagements/{engagement_id}/deliverables",
    response_model=list[DeliverableOut],
    summary="The engagement's deliverables, newest period first",
)
def list_deliverables(
    db: SessionDep,
    granted: ApiEngagement,
    status: Annotated[
        DeliverableStatus | None, Query(description="Only deliverables in this state.")
    ] = None,
    due_from: Annotated[date | None, Query(description="Due on or after this day.")] = None,
    due_to: Annotated[date | None, Query(description="Due on or before this day.")] = None,
) -> list[DeliverableOut]:
    rows = service.list_deliverables(
        db, granted, status=status, period_start=due_from, period_end=due_to
    )
    return [deliverable_out(row) for row in rows]


@router.post(
    "/engagements/{engagement_id}/deliverables",
    response_model=DeliverableOut,
    status_code=201,
    summary="Add an ad-hoc deliverable, outside the scope's plan",
)
def create_deliverable(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    granted: ApiEngagement,
    body: DeliverableCreate,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[int, object, dict[str, str]]:
        row = service.create_deliverable(db, granted, body)
        return 201, deliverable_out(row).model_dump(mode="json"), {"ETag": etag_for(row.version)}

    return idempotency.create_once(
        db,
        user_id=actor.user.id,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        payload=body,
        create=create,
    )


@router.get(
    "/deliverables/{deliverable_id}", response_model=DeliverableOut, summary="One deliverable"
)
def get_deliverable(response: Response, found: ApiDeliverable) -> DeliverableOut:
    found.granted.require("engagement.read")
    return _answer(response, found.deliverable)


DELIVER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "links": {
                            "type": "array",
                            "maxItems": 50,
                            "items": {
                                "type": "object",
                                "required": ["url"],
                                "properties": {
                                    "url": {"type": "string", "format": "uri"},
                                    "label": {"type": "string", "maxLength": 200},
                                },
                            },
                        },
                        "post_ids": {
                            "type": "array",
                            "maxItems": 100,
                            "items": {"type": "string", "format": "uuid"},
                        },
                        "note": {"type": "string", "maxLength": 2000},
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": evidence.MAX_FILES,
                        },
                        "links": {
                            "type": "array",
                            "items": {"type": "string", "format": "uri"},
                            "description": "Web addresses, one per field (or per line).",
                        },
                        "post_ids": {
                            "type": "array",
                            "items": {"type": "string", "format": "uuid"},
                        },
                        "note": {"type": "string", "maxLength": 2000},
                    },
                }
            },
        },
    }
}


async def _delivery(request: Request) -> tuple[DeliverIn, list[UploadFile]]:
    """The delivery as JSON (links and posts) or multipart (files beside them)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        evidence.refuse_oversized(request, settings_of(request))
        # Generous bounds for the parser; the service refuses more than MAX_FILES with a 422.
        form = await request.form(max_files=100, max_fields=200)
        files = evidence.uploads_of(form)
        try:
            return deliver_input(form), files
        except BaseException:
            for upload in files:
                await upload.close()
            raise
    try:
        raw = json.loads(await request.body())
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        raise InvalidInput(
            N_("Send the delivery as a JSON object, or as multipart/form-data with its files.")
        )
    return parse_input(DeliverIn, raw), []


@router.post(
    "/deliverables/{deliverable_id}/deliver",
    response_model=DeliverableOut,
    summary="Deliver with evidence: links, the engagement's posts or files (the agency)",
    description=(
        "JSON (links and post ids), or multipart/form-data that adds evidence files in "
        "`files`: PDF, images (PNG, JPEG, GIF, WebP), CSV or text, XLSX, XLS, DOCX, PPTX "
        "or ZIP, recognised by their bytes, not their names. Too large: 413; another "
        "type: 415; nothing is stored then. Files alone are evidence enough."
    ),
    openapi_extra=DELIVER_BODY,
)
async def deliver(
    request: Request,
    response: Response,
    db: SessionDep,
    found: ApiDeliverable,
    if_match: IfMatch = None,
) -> DeliverableOut:
    expected = _optional_version(if_match)
    settings = settings_of(request)
    # Who may deliver, and whether the ETag holds, is answered before a byte is read.
    await run_in_threadpool(service.check_deliverable, found, expected)
    data, files = await _delivery(request)
    try:
        row = await run_in_threadpool(
            lambda: service.deliver(
                db,
                found,
                data,
                expected_version=expected,
                files=files,
                store=storage.store_for(settings),
                settings=settings,
            )
        )
    finally:
        for upload in files:
            await upload.close()  # the spooled upload goes now, stored or not
    return _answer(response, row)


def evidence_file_out(request: Request, row: EvidenceFile) -> EvidenceFileOut:
    data = row.model_dump(warnings=False)
    data["url"] = str(
        request.url_for(
            "api_deliverable_evidence_file", deliverable_id=row.deliverable_id, file_id=row.id
        )
    )
    return EvidenceFileOut.model_validate(data)


@router.get(
    "/deliverables/{deliverable_id}/evidence",
    response_model=list[EvidenceFileOut],
    summary="Every delivery round's evidence files, oldest round first",
)
def list_evidence_files(
    request: Request, db: SessionDep, found: ApiDeliverable
) -> list[EvidenceFileOut]:
    return [evidence_file_out(request, row) for row in service.evidence_files_of(db, found)]


@router.get(
    "/deliverables/{deliverable_id}/evidence/{file_id}",
    name="api_deliverable_evidence_file",
    summary="The bytes of an evidence file, as an attachment",
    response_class=Response,
)
def get_evidence_file(
    request: Request, db: SessionDep, found: ApiDeliverable, file_id: uuid.UUID
) -> Response:
    row = service.evidence_file(db, found, file_id)
    return evidence.file_response(storage.store_for(settings_of(request)), row)


@router.post(
    "/deliverables/{deliverable_id}/accept",
    response_model=DeliverableOut,
    summary="Accept the delivery (the brand)",
)
def accept(
    response: Response, db: SessionDep, found: ApiDeliverable, if_match: IfMatch = None
) -> DeliverableOut:
    row = service.accept(db, found, expected_version=_optional_version(if_match))
    return _answer(response, row)


@router.post(
    "/deliverables/{deliverable_id}/return",
    response_model=DeliverableOut,
    summary="Return the delivery with the reason (the brand)",
)
def return_deliverable(
    response: Response,
    db: SessionDep,
    found: ApiDeliverable,
    body: ReturnIn,
    if_match: IfMatch = None,
) -> DeliverableOut:
    row = service.return_(db, found, body, expected_version=_optional_version(if_match))
    return _answer(response, row)
