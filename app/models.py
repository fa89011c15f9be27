"""Every table, imported in one place so that metadata is complete for Alembic and tests."""

from __future__ import annotations

from sqlmodel import SQLModel

from app.accounts.models import (
    ApiToken,
    PasswordReset,
    SecurityEvent,
    ThrottleEvent,
    User,
    UserIdentity,
    UserSession,
)
from app.audit.models import AuditEntry
from app.content.models import Decision, Post, PostVersion
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
from app.jobs.models import DevMail, OutboxJob
from app.tenancy.models import Invitation, Membership, Organization, SsoSettings

metadata = SQLModel.metadata

__all__ = [
    "ApiToken",
    "Attestation",
    "AuditEntry",
    "Campaign",
    "Decision",
    "DevMail",
    "Engagement",
    "EngagementEvent",
    "Fee",
    "HandoverRoute",
    "IdempotencyRecord",
    "Invitation",
    "Kpi",
    "Membership",
    "Objective",
    "Organization",
    "OutboxJob",
    "PasswordReset",
    "Post",
    "PostVersion",
    "ScopeChange",
    "ScopeLine",
    "SecurityEvent",
    "SsoSettings",
    "StageChange",
    "ThrottleEvent",
    "User",
    "UserIdentity",
    "UserSession",
    "metadata",
]
