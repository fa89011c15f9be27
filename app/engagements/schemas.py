"""Inputs and outputs of engagements, shared by the pages and the API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, EmailStr, Field

from app.engagements.models import Channel, Stage

Cadence = Literal["monthly", "weekly", "quarterly", "once"]
ScopeKind = Literal[
    "posts", "monthly_report", "campaign", "community_hours", "monitoring_report", "custom"
]
KpiPeriod = Literal["monthly", "quarterly", "engagement"]


class EngagementCreate(BaseModel):
    name: str = Field(min_length=1, max_length=160)
    agency: str = Field(min_length=1, max_length=64, description="The agency's short name (slug).")
    start_date: date
    end_date: date | None = None
    budget_minor: int = Field(default=0, ge=0, description="Budget in minor units (cents).")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code, e.g. EUR.")
    channels: list[Channel] = Field(default_factory=list, max_length=20)


class EngagementUpdate(BaseModel):
    """Only the fields sent are changed."""

    name: str | None = Field(default=None, min_length=1, max_length=160)
    start_date: date | None = None
    end_date: date | None = None
    budget_minor: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    channels: list[Channel] | None = Field(default=None, max_length=20)
    brand_lead_id: uuid.UUID | None = None
    agency_manager_id: uuid.UUID | None = None
    utm_source: str | None = Field(default=None, max_length=100)
    utm_medium: str | None = Field(default=None, max_length=100)
    utm_campaign: str | None = Field(default=None, max_length=100)
    coupon_codes: list[str] | None = Field(default=None, max_length=200)
    content_calendar_url: str | None = Field(default=None, max_length=500)
    brand_content_owner_id: uuid.UUID | None = None
    agency_content_owner_id: uuid.UUID | None = None
    usage_policy_url: str | None = Field(default=None, max_length=500)
    listening_places: list[str] | None = Field(default=None, max_length=100)


class EngagementOut(BaseModel):
    id: uuid.UUID
    name: str
    brand: str
    agency: str
    status: str
    stage: Stage
    start_date: date
    end_date: date | None
    budget_minor: int
    currency: str
    channels: list[str]
    brand_lead_id: uuid.UUID | None
    agency_manager_id: uuid.UUID | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    coupon_codes: list[str]
    content_calendar_url: str | None
    usage_policy_url: str | None
    listening_places: list[str]
    approval_policy: dict[str, Any]
    version: int
    created_at: datetime
    accepted_at: datetime | None
    ended_at: datetime | None


class StageChangeIn(BaseModel):
    to: Stage
    reason: str = Field(default="", max_length=2000)


class ChecklistItemOut(BaseModel):
    key: str
    label: str
    kind: str
    status: Literal["holds", "missing", "not_measurable"]
    detail: str
    fix: str
    attested_by: str | None = None
    attested_at: datetime | None = None
    note: str | None = None


class ChecklistOut(BaseModel):
    stage: Stage
    transition: str
    next_stage: Stage | None
    holds: bool
    items: list[ChecklistItemOut]


class StageChangeOut(BaseModel):
    id: uuid.UUID
    from_stage: str | None
    to_stage: str
    overridden: bool
    reason: str
    actor: str
    at: datetime


class KpiIn(BaseModel):
    metric: str = Field(min_length=1, max_length=40)
    target: Decimal | None = None
    baseline: Decimal | None = None
    period: KpiPeriod = "monthly"
    owner_id: uuid.UUID | None = None
    objective_id: uuid.UUID | None = None


class KpiUpdate(BaseModel):
    metric: str | None = Field(default=None, min_length=1, max_length=40)
    target: Decimal | None = None
    baseline: Decimal | None = None
    period: KpiPeriod | None = None
    owner_id: uuid.UUID | None = None
    objective_id: uuid.UUID | None = None
    reviewed: bool | None = Field(default=None, description="Mark the KPI as reviewed now.")


class KpiOut(BaseModel):
    id: uuid.UUID
    engagement_id: uuid.UUID
    metric: str
    metric_name: str
    business_measure: bool
    unit: str
    target: Decimal | None
    baseline: Decimal | None
    period: str
    owner_id: uuid.UUID | None
    objective_id: uuid.UUID | None
    reviewed_at: datetime | None
    version: int


class ScopeLineIn(BaseModel):
    kind: ScopeKind
    description: str = Field(default="", max_length=300)
    quantity: int = Field(ge=1, le=100000)
    cadence: Cadence = "monthly"
    due_day: int = Field(default=0, ge=0, le=28)


class FeeIn(BaseModel):
    kind: Literal["monthly", "one_off"]
    description: str = Field(default="", max_length=300)
    amount_minor: int = Field(ge=0)
    due_date: date | None = None


class RouteIn(BaseModel):
    team: str = Field(min_length=1, max_length=120)
    trigger: str = Field(default="", max_length=500)
    sla_hours: int = Field(ge=1, le=24 * 30)
    contact_name: str = Field(min_length=1, max_length=120)
    contact_email: EmailStr


class ObjectiveIn(BaseModel):
    text: str = Field(min_length=1, max_length=500)


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=160)
    kpi_id: uuid.UUID | None = None
    starts_on: date | None = None


class AttestationIn(BaseModel):
    item: str = Field(min_length=1, max_length=64)
    note: str = Field(min_length=1, max_length=1000)


class PolicyStepIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    roles: list[str] = Field(default_factory=list, max_length=4)
    people: list[str] = Field(default_factory=list, max_length=50)
    quorum: str | int = "any"


class PolicyIn(BaseModel):
    steps: list[PolicyStepIn] = Field(min_length=1, max_length=10)
    review_hours: int = Field(default=48, ge=1, le=24 * 14)
    enforce_channel_limits: bool = False
