"""Inputs and outputs of posts and decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from app.content.models import DecisionKind, FunnelStage
from app.engagements.models import Channel
from app.errors import N_
from app.schemas import InputRule

SHA256_PATTERN = r"^[0-9a-f]{64}$"


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputRule(N_("Use an IANA time zone, such as Europe/Madrid.")) from None
    return value


class PostFields(BaseModel):
    """What a save may change; in an update only the fields sent are changed."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=20000)
    link: str | None = Field(default=None, max_length=2000)
    channels: list[Channel] | None = Field(default=None, max_length=20)
    planned_at: AwareDatetime | None = None
    timezone: str | None = Field(default=None, max_length=64)
    media_hashes: list[str] | None = Field(default=None, max_length=20)
    campaign: str | None = Field(default=None, max_length=160)
    content_category: str | None = Field(default=None, max_length=80)
    funnel_stage: FunnelStage | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return _check_timezone(value)

    @field_validator("media_hashes")
    @classmethod
    def _media(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(len(item) != 64 for item in value):
            raise InputRule(N_("Media are named by the SHA-256 of their bytes (64 hex digits)."))
        return value


class PostCreate(PostFields):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=20000)


class PostUpdate(PostFields):
    """A save (PATCH): only the fields sent change, and it makes a new version."""


class DecisionIn(BaseModel):
    decision: DecisionKind
    version_hash: str = Field(pattern=SHA256_PATTERN, description="The version decided on.")
    comment: str = Field(default="", max_length=4000)


class DecisionOut(BaseModel):
    id: uuid.UUID
    decision: DecisionKind
    version_number: int
    version_hash: str
    round: int
    step: int
    comment: str
    decider_id: uuid.UUID | None
    decider_name: str
    voided: bool
    created_at: datetime


class ReviewOut(BaseModel):
    step: int
    step_name: str
    steps: int
    quorum: str | int
    needed: int
    approvals: int
    waiting_on: list[str]


class VersionOut(BaseModel):
    number: int
    body: str
    link: str | None
    channels: list[str]
    planned_at: datetime | None
    timezone: str
    media_hashes: list[str]
    content_hash: str
    author_name: str
    created_at: datetime


class PostOut(BaseModel):
    id: uuid.UUID
    engagement_id: uuid.UUID
    title: str
    status: str
    version: int
    campaign: str
    content_category: str
    funnel_stage: str | None
    rounds: int
    submitted_at: datetime | None
    first_submitted_at: datetime | None = None
    review_due_at: datetime | None = None
    missed_slot_at: datetime | None = None
    approved_hash: str | None
    voided_reason: str | None
    voided_at: datetime | None
    created_at: datetime
    current: VersionOut
    review: ReviewOut | None
    decisions: list[DecisionOut]


class QueueItemOut(BaseModel):
    post_id: uuid.UUID
    engagement_id: uuid.UUID
    engagement_name: str
    title: str
    step_name: str
    version_hash: str
    submitted_at: datetime | None
    campaign: str = ""
    channels: list[str] = []
    planned_at: datetime | None = None
    review_due_at: datetime | None = Field(
        default=None, description="When the brand's decision is due (the policy's review hours)."
    )
    overdue: bool = False
    missed_slot: bool = Field(
        default=False,
        description="The planned time has passed: a new time is needed before approval.",
    )


class MediaOut(BaseModel):
    """A file uploaded to a post; ``url`` serves its bytes to whoever may read the post."""

    sha256: str
    content_type: str
    size: int
    original_name: str
    url: str
    created_at: datetime


class TrackingOut(BaseModel):
    """The post's link with the engagement's UTM parameters (``POST`` saves it)."""

    link: str
    tracked_link: str
    parameters: dict[str, str]
