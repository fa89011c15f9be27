"""JSON API: who am I."""

from __future__ import annotations

from fastapi import APIRouter

from app.accounts.schemas import MembershipOut, MeOut
from app.deps import ApiActor, SessionDep
from app.tenancy import service as tenancy

router = APIRouter(tags=["accounts"])


@router.get("/me", response_model=MeOut, summary="The token's user and their memberships")
def me(db: SessionDep, actor: ApiActor) -> MeOut:
    memberships = [
        MembershipOut(
            organization_id=org.id,
            organization_slug=org.slug,
            organization_name=org.name,
            organization_kind=org.kind,
            role=membership.role,
        )
        for membership, org in tenancy.organizations_of(db, actor.user)
        if org.id in actor.org_ids
    ]
    token_org = next((m.organization_slug for m in memberships), None) if actor.token else None
    return MeOut(
        id=actor.user.id,
        email=actor.user.email,
        name=actor.user.name,
        language=actor.user.language,
        memberships=memberships,
        token_organization=token_org,
        token_scope=actor.token.scope if actor.token else None,
    )
