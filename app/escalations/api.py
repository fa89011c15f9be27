"""JSON API: escalations of an engagement, acknowledging and resolving them, the brand's notes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session

from app import idempotency
from app.deps import ApiActor, IfMatch, SessionDep, SettingsDep, etag_for, required_version
from app.engagements.deps import ApiEngagement
from app.engagements.service import EngagementAccess
from app.escalations import measures, service
from app.escalations.deps import ApiEscalation
from app.escalations.models import Escalation, EscalationStatus
from app.escalations.schemas import (
    AcknowledgeIn,
    EscalationCreate,
    EscalationOut,
    NoteIn,
    NoteOut,
    ResolveIn,
)
from app.idempotency import IdempotencyKey

router = APIRouter(tags=["escalations"])


def escalation_out(db: Session, granted: EngagementAccess, row: Escalation) -> EscalationOut:
    data = row.model_dump(warnings=False)  # enum columns load as plain strings
    data.update(
        kind=str(row.kind),
        status=str(row.status),
        outcome=str(row.outcome) if row.outcome else None,
        sla=measures.sla_state(row).value,
        # The brand's notes: only ever for the brand's side.
        notes=(
            [
                NoteOut.model_validate(note.model_dump(warnings=False))
                for note in service.notes(db, service.EscalationAccess(row, granted))
            ]
            if service.may_read_notes(granted)
            else None
        ),
    )
    return EscalationOut.model_validate(data)


def _answer(
    response: Response, db: Session, granted: EngagementAccess, row: Escalation
) -> EscalationOut:
    response.headers["ETag"] = etag_for(row.version)
    return escalation_out(db, granted, row)


def _optional_version(if_match: str | None) -> int | None:
    return required_version(if_match) if if_match else None


@router.get(
    "/engagements/{engagement_id}/escalations",
    response_model=list[EscalationOut],
    summary="The engagement's escalations, newest first",
)
def list_escalations(
    db: SessionDep,
    granted: ApiEngagement,
    status: Annotated[
        EscalationStatus | None, Query(description="Only escalations in this state.")
    ] = None,
) -> list[EscalationOut]:
    return [
        escalation_out(db, granted, row) for row in service.list_escalations(db, granted, status)
    ]


@router.post(
    "/engagements/{engagement_id}/escalations",
    response_model=EscalationOut,
    status_code=201,
    summary="Hand a conversation to the brand (the agency): its route's contact is e-mailed",
)
def open_escalation(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    actor: ApiActor,
    granted: ApiEngagement,
    body: EscalationCreate,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[int, object, dict[str, str]]:
        row = service.open_escalation(db, settings, granted, body)
        return (
            201,
            escalation_out(db, granted, row).model_dump(mode="json"),
            {"ETag": etag_for(row.version)},
        )

    return idempotency.create_once(
        db,
        user_id=actor.user.id,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        payload=body,
        create=create,
    )


@router.get("/escalations/{escalation_id}", response_model=EscalationOut, summary="One escalation")
def get_escalation(response: Response, db: SessionDep, found: ApiEscalation) -> EscalationOut:
    found.granted.require("engagement.read")
    return _answer(response, db, found.granted, found.escalation)


@router.post(
    "/escalations/{escalation_id}/acknowledge",
    response_model=EscalationOut,
    summary="Take the escalation up (the brand): stops the SLA clock",
)
def acknowledge(
    response: Response,
    db: SessionDep,
    found: ApiEscalation,
    body: AcknowledgeIn | None = None,
    if_match: IfMatch = None,
) -> EscalationOut:
    row = service.acknowledge(
        db, found, body or AcknowledgeIn(), expected_version=_optional_version(if_match)
    )
    return _answer(response, db, found.granted, row)


@router.post(
    "/escalations/{escalation_id}/resolve",
    response_model=EscalationOut,
    summary="Resolve with an outcome (the brand); a won sales lead carries its revenue",
)
def resolve(
    response: Response,
    db: SessionDep,
    found: ApiEscalation,
    body: ResolveIn,
    if_match: IfMatch = None,
) -> EscalationOut:
    row = service.resolve(db, found, body, expected_version=_optional_version(if_match))
    return _answer(response, db, found.granted, row)


@router.get(
    "/escalations/{escalation_id}/notes",
    response_model=list[NoteOut],
    summary="The brand's internal notes (the brand only)",
)
def list_notes(db: SessionDep, found: ApiEscalation) -> list[NoteOut]:
    return [
        NoteOut.model_validate(note.model_dump(warnings=False)) for note in service.notes(db, found)
    ]


@router.post(
    "/escalations/{escalation_id}/notes",
    response_model=list[NoteOut],
    status_code=201,
    summary="Add an internal note (the brand only; never shown to the agency)",
)
def add_note(db: SessionDep, found: ApiEscalation, body: NoteIn) -> list[NoteOut]:
    service.add_note(db, found, body)
    return [
        NoteOut.model_validate(note.model_dump(warnings=False)) for note in service.notes(db, found)
    ]
