"""Inputs and outputs of escalations, shared by the pages and the API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from app.deliverables.schemas import check_web_link
from app.engagements.models import Channel
from app.escalations.models import EscalationKind, Outcome


class EscalationCreate(BaseModel):
    kind: EscalationKind
    conversation_url: str = Field(
        min_length=1, max_length=2000, description="The link to the conversation."
    )
    summary: str = Field(min_length=1, max_length=4000)
    channel: Channel | None = None
    customer: str = Field(
        default="", max_length=200, description="Who the customer is, as shown there."
    )

    @field_validator("conversation_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_web_link(value)


class AcknowledgeIn(BaseModel):
    note: str = Field(
        default="", max_length=4000, description="Internal: never shown to the agency."
    )


class ResolveIn(BaseModel):
    outcome: Outcome
    revenue_minor: int | None = Field(
        default=None,
        ge=0,
        le=10**15,
        description="A won sales lead's revenue, in minor units of the engagement's currency.",
    )
    note: str = Field(
        default="", max_length=4000, description="Internal: never shown to the agency."
    )


class NoteIn(BaseModel):
    body: str = Field(min_length=1, max_length=4000)


class NoteOut(BaseModel):
    id: uuid.UUID
    author_name: str
    body: str
    created_at: datetime


class EscalationOut(BaseModel):
    """An escalation as both sides see it; ``notes`` only for the brand, else absent."""

    id: uuid.UUID
    engagement_id: uuid.UUID
    kind: str
    status: str
    conversation_url: str
    channel: str
    customer: str
    summary: str
    route_team: str
    route_contact_name: str
    route_contact_email: str
    sla_hours: int
    opened_at: datetime
    sla_due_at: datetime
    opened_by_name: str
    acknowledged_at: datetime | None
    acknowledged_by_name: str
    resolved_at: datetime | None
    resolved_by_name: str
    outcome: str | None
    revenue_minor: int | None
    currency: str | None
    sla: str = Field(description="Computed: pending, met or breached.")
    version: int
    notes: list[NoteOut] | None = None
