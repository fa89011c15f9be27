"""Daily metric rollups and each engagement's scorecard weights.

``MetricRollup`` holds, per engagement × metric × channel × day, what the current
result rows of that day add up to. It is kept up to date on every write and import
by ``scorecards.rollups.refresh_rollups_for`` (an ``INSERT … ON CONFLICT`` upsert of
the touched keys only), so that scorecards and the comparison never scan result rows
on the request path. A row counts on the day its period starts.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field
from app.engagements.models import brand_key, engagement_key


class MetricRollup(SQLModel, table=True):
    __tablename__ = "metric_rollup"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        # The upsert's conflict target, and the comparison's index (brand first).
        sa.UniqueConstraint("brand_id", "engagement_id", "metric", "channel", "day"),
        sa.Index("ix_metric_rollup_brand_id_day", "brand_id", "day"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    metric: str = Field(max_length=48, nullable=False)
    channel: str = Field(default="", max_length=32, nullable=False)
    day: date = Field(nullable=False)
    # Sum of the day's current, undisputed rows (money in minor units of the engagement's currency).
    total: Decimal = Field(default=Decimal(0), sa_type=sa.Numeric(28, 6), nullable=False)
    row_count: int = Field(default=0, nullable=False)
    # Rows backed by a platform export or verified by the brand (measurement honesty).
    backed_rows: int = Field(default=0, nullable=False)
    disputed_rows: int = Field(default=0, nullable=False)
    updated_at: datetime = created_at_field()


class ScorecardWeights(SQLModel, table=True):
    """The weights a brand lead set for one engagement; absent means the stage's defaults."""

    __tablename__ = "scorecard_weights"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "engagement_id"),
        sa.CheckConstraint("results + delivery + quality = 100", name="sum"),
        sa.CheckConstraint("results >= 0 AND delivery >= 0 AND quality >= 0", name="non_negative"),
    )

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    results: int = Field(nullable=False)
    delivery: int = Field(nullable=False)
    quality: int = Field(nullable=False)
    version: int = Field(default=1, nullable=False)
    updated_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    updated_at: datetime = created_at_field()
