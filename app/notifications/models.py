"""A person's notifications and their choices of what reaches them, and how.

A notification belongs to one person and is always about one post, so it is an
engagement-scoped row like the post itself: its tenant key is ``brand_id`` (with
``engagement_id``), which is what row-level security can check when the row is
*written* — the reviewer who requests changes writes a notification for the
agency's creator, whose organization the reviewer may not see, but both see the
engagement. *Reading* is narrower: only the recipient (``user_id`` equal to the
transaction's ``brandkeep.user_id``), and only while they still see the
engagement. Keying it by the recipient's organization instead would have made the
write impossible under row-level security for the other side.

Preferences belong to a person across all their organizations (a creator of two
agencies chooses once), like the person themselves: a global table keyed by user.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.content.models import post_key
from app.db import created_at_field, id_field, timestamp_field
from app.engagements.models import brand_key, engagement_key


class NotificationKind(enum.StrEnum):
    submitted = "submitted"  # a post waits for my review
    changes_requested = "changes_requested"
    approved = "approved"
    rejected = "rejected"
    mentioned = "mentioned"
    overdue = "overdue"


class Channel(enum.StrEnum):
    in_app = "in_app"
    email = "email"


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index("ix_notification_brand_id_post_id", "brand_id", "post_id"),
        sa.Index("ix_notification_user_id_read_at_created_at", "user_id", "read_at", "created_at"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    post_id: uuid.UUID = post_key()
    user_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    kind: NotificationKind = Field(sa_type=sa.String(24), nullable=False)
    # Written as the post stood, so the list reads right after a rename.
    post_title: str = Field(max_length=200, nullable=False)
    actor_name: str = Field(default="", max_length=120, nullable=False)
    note: str = Field(default="", max_length=500, nullable=False)
    created_at: datetime = created_at_field()
    read_at: datetime | None = timestamp_field(nullable=True, default=None)


class NotificationPreference(SQLModel, table=True):
    """One person's choice for one kind; no row means the default (both channels on)."""

    __tablename__ = "notification_preference"
    __table_args__ = (sa.UniqueConstraint("user_id", "kind"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    kind: NotificationKind = Field(sa_type=sa.String(24), nullable=False)
    in_app: bool = Field(default=True, nullable=False)
    email: bool = Field(default=True, nullable=False)
    updated_at: datetime = created_at_field()
