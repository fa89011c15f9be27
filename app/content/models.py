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
        sa.Index("ix_post_brand_id_status_review_due_at", "brand_id", "status", "review_due_at"),
        sa.Index("ix_post_brand_id_planned_at", "brand_id", "planned_at"),
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
    # Accountability both ways (content/schedule.py, content/reminders.py): when the
    # brand's answer is due this round, the reminders and escalation sent for it, and
    # when the planned time passed before approval (then a person must choose a new one).
    first_submitted_at: datetime | None = timestamp_field(nullable=True, default=None)
    review_due_at: datetime | None = timestamp_field(nullable=True, default=None)
    reminders_sent: int = Field(default=0, nullable=False)
    last_reminder_at: datetime | None = timestamp_field(nullable=True, default=None)
    escalated_at: datetime | None = timestamp_field(nullable=True, default=None)
    missed_slot_at: datetime | None = timestamp_field(nullable=True, default=None)
    approved_hash: str | None = Field(default=None, max_length=64)
    # Why earlier decisions no longer hold (an edit after approval or during review).
    voided_reason: str | None = Field(default=None, max_length=300)
    voided_at: datetime | None = timestamp_field(nullable=True, default=None)
    # Where the post went out, recorded once published: results imports name posts by these.
    permalink: str | None = Field(default=None, max_length=300)
    platform_post_id: str | None = Field(default=None, max_length=120)
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
    # A guest's decision sits in the seat of the reviewer who sent the link
    # (``decider_id``); ``decider_name`` is then the guest's e-mail (content/guest.py).
    guest_link_id: uuid.UUID | None = Field(
        default=None, foreign_key="guest_review_link.id", ondelete="SET NULL"
    )
    # Made by Brandkeep for an earned relaxation, not by a person (content/relaxation.py).
    automatic: bool = Field(default=False, nullable=False)
    voided_at: datetime | None = timestamp_field(nullable=True, default=None)
    created_at: datetime = created_at_field()


class PostMedia(SQLModel, table=True):
    """An image or video uploaded to a post, its bytes named by their SHA-256.

    The bytes live in the blob store (``app.storage``); this row is what makes them
    the post's, so they are served only through the post (anyone else gets 404). A
    row outlives its removal from the current version: earlier versions, and the
    decisions made on them, still name the hash.
    """

    __tablename__ = "post_media"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "post_id", "sha256"),
        sa.CheckConstraint("size >= 0", name="size"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    post_id: uuid.UUID = post_key()
    sha256: str = Field(max_length=64, nullable=False)
    content_type: str = Field(max_length=64, nullable=False)
    size: int = Field(sa_type=sa.BigInteger(), nullable=False)
    original_name: str = Field(default="", max_length=200, nullable=False)
    uploaded_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()


class GuestReviewLink(SQLModel, table=True):
    """A signed, expiring link that lets one person without an account decide one step.

    The sender's seat at the step (round, step) is delegated to the guest: their
    decision counts as the sender's would, once. Only the SHA-256 of the link's token
    is stored; the link dies when used, at ``expires_at`` or when revoked.
    """

    __tablename__ = "guest_review_link"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("token_hash"),
        sa.Index("ix_guest_review_link_brand_id_post_id", "brand_id", "post_id"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    post_id: uuid.UUID = post_key()
    round: int = Field(nullable=False)
    step: int = Field(nullable=False)
    step_name: str = Field(default="", max_length=80, nullable=False)
    email: str = Field(max_length=120, nullable=False)
    token_hash: str = Field(max_length=64, nullable=False)
    sent_by_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    # Kept on the row: the page of a dead link names whom to ask, with no user readable.
    sent_by_name: str = Field(max_length=120, nullable=False)
    sent_by_email: str = Field(max_length=320, nullable=False)
    created_at: datetime = created_at_field()
    expires_at: datetime = timestamp_field()
    used_at: datetime | None = timestamp_field(nullable=True, default=None)
    revoked_at: datetime | None = timestamp_field(nullable=True, default=None)
    revoked_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )


class CategoryRelaxation(SQLModel, table=True):
    """An engagement's content category that the brand lets Brandkeep approve, earned.

    Switched on only when the agency's last ``threshold`` submissions in the category
    were approved first time, and only in development or maturity; one submission in
    ``spot_check_rate`` (drawn per submission, the draw kept in the audit entry)
    still goes to review. ``active`` false is a revoked (or never enabled) relaxation.
    """

    __tablename__ = "category_relaxation"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "engagement_id", "category"),
        sa.CheckConstraint("threshold >= 1", name="threshold"),
        sa.CheckConstraint("spot_check_rate >= 2", name="spot_check_rate"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    category: str = Field(max_length=80, nullable=False)
    threshold: int = Field(default=5, nullable=False)
    spot_check_rate: int = Field(default=5, nullable=False)
    active: bool = Field(default=False, nullable=False)
    # Submissions while active: numbers the draws, so each audit entry names its own.
    submissions: int = Field(default=0, nullable=False)
    version: int = Field(default=1, nullable=False)
    enabled_at: datetime | None = timestamp_field(nullable=True, default=None)
    enabled_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    revoked_at: datetime | None = timestamp_field(nullable=True, default=None)
    revoked_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
