"""JSON API: an engagement's deliverables, delivering, accepting and returning them."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app import idempotency
from app.deliverables import service
from app.deliverables.deps import ApiDeliverable
from app.deliverables.models import Deliverable, DeliverableStatus
from app.deliverables.schemas import DeliverableCreate, DeliverableOut, DeliverIn, ReturnIn
from app.deps import ApiActor, IfMatch, SessionDep, etag_for, required_version
from app.engagements.deps import ApiEngagement
from app.idempotency import IdempotencyKey

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


@router.post(
    "/deliverables/{deliverable_id}/deliver",
    response_model=DeliverableOut,
    summary="Deliver with evidence: links or the engagement's posts (the agency)",
)
def deliver(
    response: Response,
    db: SessionDep,
    found: ApiDeliverable,
    body: DeliverIn,
    if_match: IfMatch = None,
) -> DeliverableOut:
    row = service.deliver(db, found, body, expected_version=_optional_version(if_match))
    return _answer(response, row)


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
