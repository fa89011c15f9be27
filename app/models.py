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
from app.content.comments_models import PostComment
from app.content.models import (
    CategoryRelaxation,
    Decision,
    GuestReviewLink,
    Post,
    PostMedia,
    PostVersion,
)
from app.deliverables.models import Deliverable
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
from app.escalations.models import Escalation, EscalationNote
from app.idempotency import IdempotencyRecord
from app.jobs.models import DevMail, OutboxJob
from app.notifications.models import Notification, NotificationPreference
from app.results.models import ResultImport, ResultRow
from app.scorecards.models import MetricRollup, ScorecardWeights
from app.tenancy.models import Invitation, Membership, Organization, SsoSettings

metadata = SQLModel.metadata

__all__ = [
    "ApiToken",
    "Attestation",
    "AuditEntry",
    "Campaign",
    "CategoryRelaxation",
    "Decision",
    "Deliverable",
    "DevMail",
    "Engagement",
    "EngagementEvent",
    "Escalation",
    "EscalationNote",
    "Fee",
    "GuestReviewLink",
    "HandoverRoute",
    "IdempotencyRecord",
    "Invitation",
    "Kpi",
    "Membership",
    "MetricRollup",
    "Notification",
    "NotificationPreference",
    "Objective",
    "Organization",
    "OutboxJob",
    "PasswordReset",
    "Post",
    "PostComment",
    "PostMedia",
    "PostVersion",
    "ResultImport",
    "ResultRow",
    "ScopeChange",
    "ScopeLine",
    "ScorecardWeights",
    "SecurityEvent",
    "SsoSettings",
    "StageChange",
    "ThrottleEvent",
    "User",
    "UserIdentity",
    "UserSession",
    "metadata",
]
