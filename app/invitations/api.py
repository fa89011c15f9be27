"""JSON API: an organization's invitations (the link itself is only ever in the e-mail)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app import idempotency
from app.accounts import throttle
from app.deps import ApiActor, PageParamsDep, SessionDep, SettingsDep
from app.invitations import service
from app.invitations.schemas import AgencyInvitationCreate, InvitationOut, MemberInvitationCreate
from app.schemas import Page
from app.tenancy.deps import ApiOrg
from app.tenancy.models import Invitation

router = APIRouter(tags=["invitations"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        description="Retries with the same key return the first answer instead of acting twice."
    ),
]


def _out(invitation: Invitation, invited_by: str | None, expired: bool) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        kind=invitation.kind,
        email=invitation.email,
        role=invitation.role,
        allow_domain=invitation.allow_domain,
        agency_name=invitation.agency_name,
        engagement_proposal=invitation.engagement_proposal,
        expired=expired,
        invited_by=invited_by,
        created_at=invitation.created_at,
        sent_at=invitation.sent_at,
        expires_at=invitation.expires_at,
    )


@router.get(
    "/orgs/{org_slug}/invitations",
    response_model=Page[InvitationOut],
    summary="Open invitations (not accepted, not withdrawn; expired ones can be re-sent)",
)
def list_invitations(db: SessionDep, access: ApiOrg, page: PageParamsDep) -> Page[InvitationOut]:
    rows = service.list_open(db, access)
    shown = rows[page.offset : page.offset + page.limit]
    return Page(
        items=[_out(row.invitation, row.invited_by, row.expired) for row in shown],
        total=len(rows),
        limit=page.limit,
        offset=page.offset,
    )


def _created(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    body: BaseModel,
    idempotency_key: str | None,
    create: Callable[[], Invitation],
) -> Response:
    # Sending mail to an address is throttled per address and per client (429 past it).
    keys = throttle.keys_for(request, throttle.INVITATION, account=str(getattr(body, "email", "")))
    throttle.check(db, keys)
    throttle.failed(db, keys)
    fingerprint = idempotency.fingerprint("POST", request.url.path, body)
    if idempotency_key is not None:
        replayed = idempotency.replay(
            db, user_id=actor.user.id, key=idempotency_key, request_fingerprint=fingerprint
        )
        if replayed is not None:
            return replayed
    invitation = create()
    payload = _out(invitation, actor.user.name, expired=False).model_dump(mode="json")
    if idempotency_key is not None:
        idempotency.remember(
            db,
            user_id=actor.user.id,
            key=idempotency_key,
            request_fingerprint=fingerprint,
            status_code=201,
            body=payload,
        )
    return JSONResponse(payload, status_code=201)


@router.post(
    "/orgs/{org_slug}/invitations",
    response_model=InvitationOut,
    status_code=201,
    summary="Invite a person by e-mail to this organization, with a role",
)
def invite_member(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    actor: ApiActor,
    access: ApiOrg,
    body: MemberInvitationCreate,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return _created(
        request,
        db,
        actor,
        body,
        idempotency_key,
        lambda: service.invite_member(
            db,
            settings,
            access,
            actor.user,
            email=str(body.email),
            role=body.role,
            allow_domain=body.allow_domain,
        ),
    )


@router.post(
    "/orgs/{org_slug}/agency-invitations",
    response_model=InvitationOut,
    status_code=201,
    summary="Invite an agency that is not on Brandkeep (a brand's owners and account leads)",
)
def invite_agency(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    actor: ApiActor,
    access: ApiOrg,
    body: AgencyInvitationCreate,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return _created(
        request,
        db,
        actor,
        body,
        idempotency_key,
        lambda: service.invite_agency(
            db,
            settings,
            access,
            actor.user,
            email=str(body.email),
            agency_name=body.agency_name,
            proposal=body.proposal,
        ),
    )


@router.post(
    "/orgs/{org_slug}/invitations/{invitation_id}/resend",
    response_model=InvitationOut,
    summary="Send the invitation again with a new link (the old link stops working)",
)
def resend_invitation(
    db: SessionDep,
    settings: SettingsDep,
    actor: ApiActor,
    access: ApiOrg,
    invitation_id: uuid.UUID,
) -> InvitationOut:
    invitation = service.resend(db, settings, access, actor.user, invitation_id)
    return _out(invitation, actor.user.name, expired=False)


@router.delete(
    "/orgs/{org_slug}/invitations/{invitation_id}",
    status_code=204,
    summary="Withdraw an invitation (its link stops working)",
)
def revoke_invitation(db: SessionDep, access: ApiOrg, invitation_id: uuid.UUID) -> Response:
    service.revoke(db, access, invitation_id)
    return Response(status_code=204)
