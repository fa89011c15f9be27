"""JSON API: an organization's members."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app import idempotency
from app.accounts import repository as accounts_repository
from app.accounts.models import User
from app.deps import ApiActor, IfMatch, PageParamsDep, SessionDep, etag_for, required_version
from app.idempotency import IdempotencyKey
from app.schemas import Page
from app.tenancy import service as tenancy
from app.tenancy.deps import ApiMember, ApiOrg
from app.tenancy.models import Membership
from app.tenancy.schemas import MemberCreate, MemberOut, MemberUpdate

router = APIRouter(tags=["organizations"])


def _member_out(db: SessionDep, membership: Membership, user: User | None = None) -> MemberOut:
    user = user or accounts_repository.get_user(db, membership.user_id)
    assert user is not None
    return MemberOut(
        id=membership.id,
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=membership.role,
        version=membership.version,
        created_at=membership.created_at,
    )


@router.get("/orgs/{org_slug}/members", response_model=Page[MemberOut], summary="List members")
def list_members(db: SessionDep, access: ApiOrg, page: PageParamsDep) -> Page[MemberOut]:
    rows, total = tenancy.list_members(db, access, limit=page.limit, offset=page.offset)
    return Page(
        items=[_member_out(db, m, u) for m, u in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/orgs/{org_slug}/members",
    response_model=MemberOut,
    status_code=201,
    summary="Add a person who has an account",
)
def add_member(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    access: ApiOrg,
    body: MemberCreate,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    fingerprint = idempotency.fingerprint("POST", request.url.path, body)
    if idempotency_key is not None:
        replayed = idempotency.replay(
            db, user_id=actor.user.id, key=idempotency_key, request_fingerprint=fingerprint
        )
        if replayed is not None:
            return replayed
    user = accounts_repository.get_user_by_email(db, str(body.email))
    membership = tenancy.add_member(db, access, user=user, email=str(body.email), role=body.role)
    payload = _member_out(db, membership, user).model_dump(mode="json")
    if idempotency_key is not None:
        idempotency.remember(
            db,
            user_id=actor.user.id,
            key=idempotency_key,
            request_fingerprint=fingerprint,
            status_code=201,
            body=payload,
        )
    return JSONResponse(payload, status_code=201, headers={"ETag": etag_for(membership.version)})


@router.get(
    "/orgs/{org_slug}/members/{membership_id}", response_model=MemberOut, summary="One member"
)
def get_member(response: Response, db: SessionDep, member: ApiMember) -> MemberOut:
    response.headers["ETag"] = etag_for(member.version)
    return _member_out(db, member)


@router.patch(
    "/orgs/{org_slug}/members/{membership_id}",
    response_model=MemberOut,
    summary="Change a member's role (If-Match required)",
)
def update_member(
    response: Response,
    db: SessionDep,
    access: ApiOrg,
    member: ApiMember,
    body: MemberUpdate,
    if_match: IfMatch = None,
) -> MemberOut:
    version = required_version(if_match)
    updated = tenancy.change_role(db, access, member.id, role=body.role, expected_version=version)
    response.headers["ETag"] = etag_for(updated.version)
    return _member_out(db, updated)


@router.delete(
    "/orgs/{org_slug}/members/{membership_id}",
    status_code=204,
    summary="Remove a member (If-Match required)",
)
def remove_member(
    db: SessionDep, access: ApiOrg, member: ApiMember, if_match: IfMatch = None
) -> Response:
    version = required_version(if_match)
    tenancy.remove_member(db, access, member.id, expected_version=version)
    return Response(status_code=204)
