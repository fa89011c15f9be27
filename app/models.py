"""Every table, imported in one place so that metadata is complete for Alembic and tests."""

from __future__ import annotations

from sqlmodel import SQLModel

from app.accounts.models import ApiToken, User, UserSession
from app.engagements.models import (
    Attestation,
    Campaign,
    Engagement,
    EngagementEvent,
    Fee,
    HandoverRoute,
    Kpi,
    Objective,
    ScopeChange,
    ScopeLine,
    StageChange,
)
from app.idempotency import IdempotencyRecord
from app.tenancy.models import Membership, Organization

metadata = SQLModel.metadata

__all__ = [
    "ApiToken",
    "Attestation",
    "Campaign",
    "Engagement",
    "EngagementEvent",
    "Fee",
    "HandoverRoute",
    "IdempotencyRecord",
    "Kpi",
    "Membership",
    "Objective",
    "Organization",
    "ScopeChange",
    "ScopeLine",
    "StageChange",
    "User",
    "UserSession",
    "metadata",
]
