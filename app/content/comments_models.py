"""Comments on a post: a thread per post, each comment bound to the version it was written on.

A comment is ``shared`` (both sides read it) or ``internal`` to its author's side:
``author_org_id`` is the side it belongs to (the engagement's brand or agency), and
an internal comment is shown only to members of that organization. Row-level
security enforces the same wall (see the migration), so a query that forgets it
still shows nothing across it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.content.models import post_key
from app.db import created_at_field, id_field
from app.engagements.models import brand_key, engagement_key

BODY_LENGTH = 4000


class Visibility(enum.StrEnum):
    shared = "shared"
    internal = "internal"


class PostComment(SQLModel, table=True):
    """Never edited nor deleted: the thread is part of the record of how a post was agreed."""

    __tablename__ = "post_comment"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.Index(
            "ix_post_comment_brand_id_post_id_created_at", "brand_id", "post_id", "created_at"
        ),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    post_id: uuid.UUID = post_key()
    version_number: int = Field(nullable=False)
    visibility: Visibility = Field(sa_type=sa.String(16), nullable=False)
    # The side the author spoke for: the engagement's brand or its agency.
    author_org_id: uuid.UUID = Field(
        foreign_key="organization.id", nullable=False, ondelete="CASCADE"
    )
    author_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    author_name: str = Field(max_length=120, nullable=False)
    body: str = Field(sa_type=sa.Text(), nullable=False)
    # The people mentioned (user ids), each checked to be allowed to read the comment.
    mentions: list[str] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)
    created_at: datetime = created_at_field()
