"""Dependencies that load tenant objects through the scoped layer.

They run before the request body is validated, so an object that is not the
caller's answers 404 whatever else is wrong with the request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.deps import ApiActor, PageActor, SessionDep
from app.tenancy import service as tenancy
from app.tenancy.models import Membership
from app.tenancy.service import OrgAccess


def api_org_access(db: SessionDep, actor: ApiActor, org_slug: str) -> OrgAccess:
    return tenancy.org_access(db, actor, org_slug)


def page_org_access(db: SessionDep, actor: PageActor, org_slug: str) -> OrgAccess:
    return tenancy.org_access(db, actor, org_slug)


ApiOrg = Annotated[OrgAccess, Depends(api_org_access)]
PageOrg = Annotated[OrgAccess, Depends(page_org_access)]


def api_member(db: SessionDep, access: ApiOrg, membership_id: uuid.UUID) -> Membership:
    return tenancy.get_member(db, access, membership_id)


def page_member(db: SessionDep, access: PageOrg, membership_id: uuid.UUID) -> Membership:
    return tenancy.get_member(db, access, membership_id)


ApiMember = Annotated[Membership, Depends(api_member)]
PageMember = Annotated[Membership, Depends(page_member)]
