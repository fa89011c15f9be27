"""Posts, their immutable versions and the decisions bound to them.

Every row is engagement-scoped and carries ``brand_id``, the tenant key, first in
the indexes that serve tenant queries (DESIGN.md, tenancy rule 1).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field, timestamp_field
from app.engagements.models import brand_key, engagement_key


class PostStatus(enum.StrEnum):
    draft = "draft"
    in_review = "in_review"
    changes_requested = "changes_requested"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class FunnelStage(enum.StrEnum):
    """ACDAA (DOMAIN.md §2)."""

    awareness = "awareness"
    consideration = "consideration"
    decision = "decision"
    adoption = "adoption"
    advocacy = "advocacy"


class DecisionKind(enum.StrEnum):
    approve = "approve"
    request_changes = "request_changes"
    reject = "reject"


def post_key() -> Any:
    return Field(foreign_key="post.id", nullable=False, ondelete="CASCADE")


class Post(SQLModel, table=True):
    """A post and where it stands; its words live in its versions.

    ``version`` is the optimistic-concurrency counter behind ETag / If-Match; every
    transition is a conditional update on it and on the expected status.
    ``current_version`` is the number of the newest ``PostVersion``.
    """

    __tablename__ = "post"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "id"),
        sa.Index("ix_post_brand_id_engagement_id_status", "brand_id", "engagement_id", "status"),
        sa.Index("ix_post_brand_id_status_submitted_at", "brand_id", "status", "submitted_at"),
        sa.CheckConstraint("version >= 1", name="version"),
        sa.CheckConstraint("current_version >= 1", name="current_version"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    title: str = Field(max_length=200, nullable=False)
    status: PostStatus = Field(default=PostStatus.draft, sa_type=sa.String(24), nullable=False)
    current_version: int = Field(default=1, nullable=False)
    version: int = Field(default=1, nullable=False)
    campaign: str = Field(default="", max_length=160, nullable=False)
    content_category: str = Field(default="", max_length=80, nullable=False)
    funnel_stage: FunnelStage | None = Field(default=None, sa_type=sa.String(16))
    channels: list[str] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)
    planned_at: datetime | None = timestamp_field(nullable=True, default=None)
    timezone: str = Field(default="UTC", max_length=64, nullable=False)
    # The review: the policy's steps as they were at submission, the open step, the round.
    review_steps: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=sa.JSON(), nullable=False
    )
    review_step: int | None = Field(default=None)
    rounds: int = Field(default=0, nullable=False)
    submitted_at: datetime | None = timestamp_field(nullable=True, default=None)
    decided_at: datetime | None = timestamp_field(nullable=True, default=None)
    approved_hash: str | None = Field(default=None, max_length=64)
    # Why earlier decisions no longer hold (an edit after approval or during review).
    voided_reason: str | None = Field(default=None, max_length=300)
    voided_at: datetime | None = timestamp_field(nullable=True, default=None)
    created_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class PostVersion(SQLModel, table=True):
    """One save of a post, never changed afterwards.

    ``content_hash`` is SHA-256 over a canonical JSON of everything that would be
    published (see ``content.service.content_hash``): a decision names it, and only
    the approved hash may go out.
    """

    __tablename__ = "post_version"
    __tenant_key__ = "brand_id"
    __table_args__ = (sa.UniqueConstraint("brand_id", "post_id", "number"),)

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    post_id: uuid.UUID = post_key()
    number: int = Field(nullable=False)
    body: str = Field(sa_type=sa.Text(), nullable=False)
    link: str | None = Field(default=None, max_length=2000)
    channels: list[str] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)
    planned_at: datetime | None = timestamp_field(nullable=True, default=None)
    timezone: str = Field(default="UTC", max_length=64, nullable=False)
    media_hashes: list[str] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)
    content_hash: str = Field(max_length=64, nullable=False)
    author_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    author_name: str = Field(max_length=120, nullable=False)
    created_at: datetime = created_at_field()


class Decision(SQLModel, table=True):
    """A reviewer's decision on one version (by its hash), at one step of one round.

    The unique key makes each person count once per step and round, whatever races.
    """

    __tablename__ = "decision"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "post_id", "round", "step", "decider_id"),
        sa.Index("ix_decision_brand_id_decider_id", "brand_id", "decider_id"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    post_id: uuid.UUID = post_key()
    version_number: int = Field(nullable=False)
    version_hash: str = Field(max_length=64, nullable=False)
    round: int = Field(nullable=False)
    step: int = Field(nullable=False)
    decision: DecisionKind = Field(sa_type=sa.String(24), nullable=False)
    comment: str = Field(default="", max_length=4000, nullable=False)
    decider_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    decider_name: str = Field(max_length=120, nullable=False)
    voided_at: datetime | None = timestamp_field(nullable=True, default=None)
    created_at: datetime = created_at_field()
