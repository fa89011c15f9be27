"""Deliverables: one row per thing the agency owes, with its delivery and the brand's answer.

Rows planned from the scope of work carry ``scope_line_id`` and the period they
belong to; the unique key (brand, scope line, period start) makes
planning idempotent whoever runs it, however often. Ad-hoc deliverables have no
scope line. Lateness is never stored: it is computed from ``first_delivered_at``
against ``due_at`` (see ``deliverables.planning.is_late``).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field, timestamp_field
from app.engagements.models import brand_key, engagement_key


class DeliverableStatus(enum.StrEnum):
    planned = "planned"
    delivered = "delivered"
    accepted = "accepted"
    returned = "returned"


class Deliverable(SQLModel, table=True):
    """What the agency owes for one period (or ad hoc), and where it stands.

    ``rounds`` counts deliveries: accepted with ``rounds == 1`` is "accepted on
    first delivery". ``version`` is the optimistic-concurrency counter behind
    ETag / If-Match; every transition is a conditional update on it and on the
    expected status.
    """

    __tablename__ = "deliverable"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "scope_line_id", "period_start"),
        sa.Index(
            "ix_deliverable_brand_id_engagement_id_period_start",
            "brand_id",
            "engagement_id",
            "period_start",
        ),
        sa.Index("ix_deliverable_brand_id_status_due_at", "brand_id", "status", "due_at"),
        sa.CheckConstraint("quantity > 0", name="quantity"),
        sa.CheckConstraint("period_end >= period_start", name="period"),
        sa.CheckConstraint("version >= 1", name="version"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    scope_line_id: uuid.UUID | None = Field(
        default=None, foreign_key="scope_line.id", ondelete="SET NULL"
    )
    # Added by hand rather than planned from the scope (whose line may be removed later).
    ad_hoc: bool = Field(default=False, nullable=False)
    kind: str = Field(max_length=32, nullable=False)
    title: str = Field(max_length=200, nullable=False)
    description: str = Field(default="", max_length=1000, nullable=False)
    quantity: int = Field(default=1, nullable=False)
    period_start: date = Field(nullable=False)
    period_end: date = Field(nullable=False)
    due_on: date = Field(nullable=False)
    # The end of the due day in the brand's time zone, as an instant: lateness compares to it.
    due_at: datetime = timestamp_field()
    status: DeliverableStatus = Field(
        default=DeliverableStatus.planned, sa_type=sa.String(16), nullable=False
    )
    rounds: int = Field(default=0, nullable=False)
    # The latest delivery's evidence: links ({"type": "link", "url", "label"}),
    # posts of the engagement ({"type": "post", "post_id", "label"}) and files
    # ({"type": "file", "file_id", "label", "sha256", "size", "content_type"}; the
    # ``deliverable_evidence_file`` row is what lets people download them).
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON(), nullable=False)
    delivery_note: str = Field(default="", max_length=2000, nullable=False)
    first_delivered_at: datetime | None = timestamp_field(nullable=True, default=None)
    delivered_at: datetime | None = timestamp_field(nullable=True, default=None)
    delivered_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    delivered_by_name: str = Field(default="", max_length=120, nullable=False)
    # The brand's latest answer: accepted, or returned with a reason.
    decided_at: datetime | None = timestamp_field(nullable=True, default=None)
    decided_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    decided_by_name: str = Field(default="", max_length=120, nullable=False)
    return_reason: str = Field(default="", max_length=2000, nullable=False)
    version: int = Field(default=1, nullable=False)
    created_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class EvidenceFile(SQLModel, table=True):
    """A file handed over with one delivery of a deliverable, its bytes named by SHA-256.

    The bytes live in the blob store (``app.storage``); this row is what makes them
    this deliverable's, so they are served only through it, to its engagement's two
    sides (anyone else gets 404). ``round`` is the delivery the file came with: a
    returned deliverable delivered again keeps each round's files apart.
    """

    __tablename__ = "deliverable_evidence_file"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        # The same bytes once per delivery round (a deliverable has one brand).
        sa.UniqueConstraint("deliverable_id", "round", "sha256"),
        sa.Index(
            "ix_deliverable_evidence_file_brand_id_engagement_id",
            "brand_id",
            "engagement_id",
        ),
        sa.CheckConstraint("size >= 0", name="size"),
        sa.CheckConstraint("round >= 1", name="round"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    deliverable_id: uuid.UUID = Field(
        foreign_key="deliverable.id", nullable=False, ondelete="CASCADE"
    )
    round: int = Field(nullable=False)
    sha256: str = Field(max_length=64, nullable=False)
    content_type: str = Field(max_length=128, nullable=False)
    size: int = Field(sa_type=sa.BigInteger(), nullable=False)
    original_name: str = Field(default="", max_length=200, nullable=False)
    uploaded_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
