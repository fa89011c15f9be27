"""What the API says about people and tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class MembershipOut(BaseModel):
    organization_id: uuid.UUID
    organization_slug: str
    organization_name: str
    organization_kind: str
    role: str


class MeOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    language: str | None
    memberships: list[MembershipOut]
    token_organization: str | None
    token_scope: str | None


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
