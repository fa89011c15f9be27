"""Engagements (one brand × one agency) and what the brand sets up in them.

Every row here is engagement-scoped and carries ``brand_id``, the tenant key,
first in the indexes that serve tenant queries (DESIGN.md, tenancy rule 1).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field, timestamp_field


class Stage(enum.StrEnum):
    setup = "setup"
    development = "development"
    maturity = "maturity"


STAGE_ORDER = (Stage.setup, Stage.development, Stage.maturity)


class Status(enum.StrEnum):
    proposed = "proposed"
    active = "active"
    paused = "paused"
    ended = "ended"
    declined = "declined"


class Channel(enum.StrEnum):
    facebook = "facebook"
    instagram = "instagram"
    x = "x"
    linkedin = "linkedin"
    tiktok = "tiktok"
    youtube = "youtube"
    blog = "blog"
    forums = "forums"
    other = "other"


def brand_key() -> Any:
    return Field(foreign_key="organization.id", nullable=False, ondelete="CASCADE")


def engagement_key() -> Any:
    return Field(foreign_key="engagement.id", nullable=False, ondelete="CASCADE")


class Engagement(SQLModel, table=True):
    __tablename__ = "engagement"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "id"),
        sa.Index("ix_engagement_agency_id", "agency_id"),
        sa.CheckConstraint("end_date IS NULL OR end_date >= start_date", name="period"),
        sa.CheckConstraint("budget_minor >= 0", name="budget"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    agency_id: uuid.UUID = Field(foreign_key="organization.id", nullable=False, ondelete="CASCADE")
    name: str = Field(max_length=160, nullable=False)
    start_date: date = Field(nullable=False)
    end_date: date | None = Field(default=None)
    budget_minor: int = Field(default=0, sa_type=sa.BigInteger(), nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    channels: list[str] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)
    status: Status = Field(default=Status.proposed, sa_type=sa.String(16), nullable=False)
    stage: Stage = Field(default=Stage.setup, sa_type=sa.String(16), nullable=False)
    brand_lead_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    agency_manager_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    # Tracking set-up: how results will be attributed to this engagement.
    utm_source: str | None = Field(default=None, max_length=100)
    utm_medium: str | None = Field(default=None, max_length=100)
    utm_campaign: str | None = Field(default=None, max_length=100)
    coupon_codes: list[str] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)
    # Content plan: the editorial calendar and who owns it on each side.
    content_calendar_url: str | None = Field(default=None, max_length=500)
    brand_content_owner_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    agency_content_owner_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    # Social media usage policy: a link to the document the brand keeps.
    usage_policy_url: str | None = Field(default=None, max_length=500)
    # Where customers talk (forums and communities too), as the monitoring map.
    listening_places: list[str] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)
    # The approval policy for posts; the stage sets its default (see engagements.policy).
    approval_policy: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON(), nullable=False)
    version: int = Field(default=1, nullable=False)
    created_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    accepted_at: datetime | None = timestamp_field(nullable=True, default=None)
    ended_at: datetime | None = timestamp_field(nullable=True, default=None)


class ScopeLine(SQLModel, table=True):
    """A planned deliverable: what the agency owes, how many, how often, due when."""

    __tablename__ = "scope_line"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index("ix_scope_line_brand_id_engagement_id", "brand_id", "engagement_id"),
        sa.CheckConstraint("quantity > 0", name="quantity"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    kind: str = Field(max_length=32, nullable=False)
    description: str = Field(default="", max_length=300, nullable=False)
    quantity: int = Field(nullable=False)
    cadence: str = Field(max_length=16, nullable=False)
    # Day of the period on which it is due (1–28), or 0 for the period's last day.
    due_day: int = Field(default=0, nullable=False)
    created_at: datetime = created_at_field()


class Fee(SQLModel, table=True):
    __tablename__ = "fee"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index("ix_fee_brand_id_engagement_id", "brand_id", "engagement_id"),
        sa.CheckConstraint("amount_minor >= 0", name="amount"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    kind: str = Field(max_length=16, nullable=False)  # monthly | one_off
    description: str = Field(default="", max_length=300, nullable=False)
    amount_minor: int = Field(sa_type=sa.BigInteger(), nullable=False)
    due_date: date | None = Field(default=None)
    created_at: datetime = created_at_field()


class ScopeChange(SQLModel, table=True):
    """History of the scope of work: every change, by whom, before and after."""

    __tablename__ = "scope_change"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index("ix_scope_change_brand_id_engagement_id", "brand_id", "engagement_id", "at"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    at: datetime = created_at_field()
    subject: str = Field(max_length=32, nullable=False)  # scope_line | fee | engagement
    action: str = Field(max_length=16, nullable=False)  # added | changed | removed
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON())
    after: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON())


class Objective(SQLModel, table=True):
    __tablename__ = "objective"
    __tenant_key__ = "brand_id"
    __table_args__ = (sa.Index("ix_objective_brand_id_engagement_id", "brand_id", "engagement_id"),)

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    text: str = Field(max_length=500, nullable=False)
    created_at: datetime = created_at_field()


class Kpi(SQLModel, table=True):
    __tablename__ = "kpi"
    __tenant_key__ = "brand_id"
    __table_args__ = (sa.Index("ix_kpi_brand_id_engagement_id", "brand_id", "engagement_id"),)

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    objective_id: uuid.UUID | None = Field(
        default=None, foreign_key="objective.id", ondelete="SET NULL"
    )
    metric: str = Field(max_length=40, nullable=False)
    # In the metric's unit: rates as fractions, money in major units of the engagement's currency.
    target: Decimal | None = Field(default=None, sa_type=sa.Numeric(20, 6))
    baseline: Decimal | None = Field(default=None, sa_type=sa.Numeric(20, 6))
    period: str = Field(default="monthly", max_length=16, nullable=False)
    owner_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    reviewed_at: datetime | None = timestamp_field(nullable=True, default=None)
    version: int = Field(default=1, nullable=False)
    created_at: datetime = created_at_field()


class Campaign(SQLModel, table=True):
    """A campaign of the engagement, tied to the KPI that says whether it worked."""

    __tablename__ = "campaign"
    __tenant_key__ = "brand_id"
    __table_args__ = (sa.Index("ix_campaign_brand_id_engagement_id", "brand_id", "engagement_id"),)

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    name: str = Field(max_length=160, nullable=False)
    kpi_id: uuid.UUID | None = Field(default=None, foreign_key="kpi.id", ondelete="SET NULL")
    starts_on: date | None = Field(default=None)
    created_at: datetime = created_at_field()


class RouteKind(enum.StrEnum):
    escalation = "escalation"  # negative conversations → customer service / call centre
    handoff = "handoff"  # sales opportunities → sales team


class HandoverRoute(SQLModel, table=True):
    """Where the agency hands conversations that belong to the brand, and how fast."""

    __tablename__ = "handover_route"
    __tenant_key__ = "brand_id"
    __table_args__ = (sa.UniqueConstraint("brand_id", "engagement_id", "kind"),)

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    kind: RouteKind = Field(sa_type=sa.String(16), nullable=False)
    team: str = Field(max_length=120, nullable=False)
    trigger: str = Field(default="", max_length=500, nullable=False)
    sla_hours: int = Field(nullable=False)
    contact_name: str = Field(max_length=120, nullable=False)
    contact_email: str = Field(max_length=254, nullable=False)
    updated_at: datetime = created_at_field()


class Attestation(SQLModel, table=True):
    """A named person's word that a checklist item holds, with a date and a note."""

    __tablename__ = "attestation"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index("ix_attestation_brand_id_engagement_id", "brand_id", "engagement_id", "item"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    item: str = Field(max_length=64, nullable=False)
    attested_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    attested_by_name: str = Field(max_length=120, nullable=False)
    attested_at: datetime = created_at_field()
    note: str = Field(max_length=1000, nullable=False)
    withdrawn_at: datetime | None = timestamp_field(nullable=True, default=None)


class StageChange(SQLModel, table=True):
    """The engagement's timeline of stages: who, when, from, to, why, and what held."""

    __tablename__ = "stage_change"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index("ix_stage_change_brand_id_engagement_id", "brand_id", "engagement_id", "at"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    actor_name: str = Field(max_length=120, nullable=False)
    at: datetime = created_at_field()
    from_stage: str | None = Field(default=None, max_length=16)
    to_stage: str = Field(max_length=16, nullable=False)
    overridden: bool = Field(default=False, nullable=False)
    reason: str = Field(default="", max_length=2000, nullable=False)
    checklist: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)


class EngagementEvent(SQLModel, table=True):
    """Other milestones on the timeline: proposed, accepted, paused, ended, policy changed."""

    __tablename__ = "engagement_event"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index("ix_engagement_event_brand_id_engagement_id", "brand_id", "engagement_id", "at"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    actor_name: str = Field(max_length=120, nullable=False)
    at: datetime = created_at_field()
    kind: str = Field(max_length=32, nullable=False)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON(), nullable=False)
