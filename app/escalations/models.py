"""Escalations: a conversation the agency hands to the brand, and the brand's private notes.

The route (team, contact, SLA) is copied onto the escalation when it is opened,
so a later change of the engagement's routes never rewrites whom a past
escalation went to or how fast it was due. SLA breaches are never stored: they
are computed from ``sla_due_at`` against the first of ``acknowledged_at`` /
``resolved_at`` (see ``escalations.measures``).

``EscalationNote`` rows belong to the brand alone: the agency that opened the
escalation never reads them, through the service (a brand-only query) and, on
PostgreSQL, through a row-level security policy that has no agency clause.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field, timestamp_field
from app.engagements.models import brand_key, engagement_key


class EscalationKind(enum.StrEnum):
    complaint = "complaint"  # → the brand's customer service (the escalation route)
    crisis = "crisis"  # → the brand's lead on the engagement
    sales_lead = "sales_lead"  # → the brand's sales team (the hand-off route)


class EscalationStatus(enum.StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Outcome(enum.StrEnum):
    resolved = "resolved"  # a complaint or crisis settled
    unresolved = "unresolved"  # closed without settling it (the customer went quiet…)
    won = "won"  # a sales lead that became a sale: its revenue is attributed
    lost = "lost"


class Escalation(SQLModel, table=True):
    __tablename__ = "escalation"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "id"),
        sa.Index(
            "ix_escalation_brand_id_engagement_id_opened_at",
            "brand_id",
            "engagement_id",
            "opened_at",
        ),
        sa.Index("ix_escalation_brand_id_status_sla_due_at", "brand_id", "status", "sla_due_at"),
        sa.CheckConstraint("sla_hours > 0", name="sla_hours"),
        sa.CheckConstraint("revenue_minor IS NULL OR revenue_minor >= 0", name="revenue"),
        sa.CheckConstraint("version >= 1", name="version"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    kind: EscalationKind = Field(sa_type=sa.String(16), nullable=False)
    status: EscalationStatus = Field(
        default=EscalationStatus.open, sa_type=sa.String(16), nullable=False
    )
    conversation_url: str = Field(max_length=2000, nullable=False)
    channel: str = Field(default="", max_length=16, nullable=False)
    customer: str = Field(default="", max_length=200, nullable=False)
    summary: str = Field(max_length=4000, nullable=False)
    # The route as it was when the escalation was opened.
    route_team: str = Field(max_length=120, nullable=False)
    route_contact_name: str = Field(max_length=120, nullable=False)
    route_contact_email: str = Field(max_length=254, nullable=False)
    sla_hours: int = Field(nullable=False)
    opened_at: datetime = created_at_field()
    sla_due_at: datetime = timestamp_field()
    opened_by_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    opened_by_name: str = Field(max_length=120, nullable=False)
    acknowledged_at: datetime | None = timestamp_field(nullable=True, default=None)
    acknowledged_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    acknowledged_by_name: str = Field(default="", max_length=120, nullable=False)
    resolved_at: datetime | None = timestamp_field(nullable=True, default=None)
    resolved_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    resolved_by_name: str = Field(default="", max_length=120, nullable=False)
    outcome: Outcome | None = Field(default=None, sa_type=sa.String(16))
    # Won sales leads: the sale's value, in minor units of the engagement's currency.
    revenue_minor: int | None = Field(default=None, sa_type=sa.BigInteger())
    currency: str | None = Field(default=None, max_length=3)
    version: int = Field(default=1, nullable=False)
    updated_at: datetime = created_at_field()


class EscalationNote(SQLModel, table=True):
    """A note the brand keeps on an escalation, never shown to the agency."""

    __tablename__ = "escalation_note"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index(
            "ix_escalation_note_brand_id_escalation_id_created_at",
            "brand_id",
            "escalation_id",
            "created_at",
        ),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    escalation_id: uuid.UUID = Field(
        foreign_key="escalation.id", nullable=False, ondelete="CASCADE"
    )
    author_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    author_name: str = Field(max_length=120, nullable=False)
    body: str = Field(max_length=4000, nullable=False)
    created_at: datetime = created_at_field()
