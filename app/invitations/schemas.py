"""Inputs and outputs of invitations, shared by the pages and the API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, EmailStr, Field


class MemberInvitationCreate(BaseModel):
    email: EmailStr
    role: str = Field(min_length=1, max_length=16)
    allow_domain: bool = Field(
        default=False,
        description="Let anyone with an address at the invited e-mail's domain accept.",
    )


class AgencyProposalIn(BaseModel):
    """The engagement proposed to the invited agency, opened (as proposed) when it accepts."""

    name: str = Field(min_length=1, max_length=160)
    start_date: date
    budget_minor: int = Field(default=0, ge=0, description="Budget in minor units (cents).")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code, e.g. EUR.")


class AgencyInvitationCreate(BaseModel):
    email: EmailStr = Field(description="The agency contact who will own its account.")
    agency_name: str = Field(min_length=1, max_length=120)
    proposal: AgencyProposalIn | None = None


class InvitationOut(BaseModel):
    id: uuid.UUID
    kind: str
    email: str
    role: str
    allow_domain: bool
    agency_name: str | None
    engagement_proposal: dict[str, Any] | None
    expired: bool
    invited_by: str | None
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime
