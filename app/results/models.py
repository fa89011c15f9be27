"""Result rows (what the agency achieved, by metric and period) and the imports behind them.

A row is identified by its *row key*: engagement, post reference (or post), channel,
metric, period and source. Re-sending a row with the same value changes nothing; a
changed value makes a new revision and the old one is kept with ``superseded_at``
set, so nobody can bend a number without leaving the earlier one behind. "Current"
rows are those with ``superseded_at IS NULL``.

``row_key`` stores a digest of the key so that one short column carries the unique
index that bulk writes conflict on (``ON CONFLICT``), whatever the post reference's
length or nullness.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field, timestamp_field
from app.engagements.models import brand_key, engagement_key


class ResultStatus(enum.StrEnum):
    reported = "reported"
    verified = "verified"
    disputed = "disputed"


class ImportState(enum.StrEnum):
    uploaded = "uploaded"  # stored and previewed, waiting for the person to confirm
    queued = "queued"
    validating = "validating"
    writing = "writing"
    done = "done"
    refused = "refused"  # the file had problems: nothing was written
    failed = "failed"  # an unexpected error: nothing was written
    duplicate = "duplicate"  # the same file was already imported: nothing to do


CURRENT_ROWS = sa.text("superseded_at IS NULL")


class ResultImport(SQLModel, table=True):
    """One uploaded export file and how its import went.

    ``sha256`` of the file's bytes is unique per engagement among successful imports,
    which is what makes re-importing the same file a no-op.
    """

    __tablename__ = "result_import"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "id"),
        sa.Index("ix_result_import_brand_id_engagement_id_created_at", "brand_id",
                 "engagement_id", "created_at"),
        sa.Index("ix_result_import_brand_id_engagement_id_sha256", "brand_id",
                 "engagement_id", "sha256"),
        sa.CheckConstraint("rows_done >= 0 AND rows_total >= 0", name="progress"),
    )  # fmt: skip

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    file_name: str = Field(max_length=255, nullable=False)
    sha256: str = Field(max_length=64, nullable=False)
    size_bytes: int = Field(default=0, sa_type=sa.BigInteger(), nullable=False)
    format: str = Field(default="", max_length=24, nullable=False)
    format_label: str = Field(default="", max_length=120, nullable=False)
    state: ImportState = Field(default=ImportState.uploaded, sa_type=sa.String(16), nullable=False)
    rows_total: int = Field(default=0, nullable=False)
    rows_done: int = Field(default=0, nullable=False)
    rows_created: int = Field(default=0, nullable=False)
    rows_revised: int = Field(default=0, nullable=False)
    rows_unchanged: int = Field(default=0, nullable=False)
    problem_count: int = Field(default=0, nullable=False)
    # The first problems by line and column: [{"line", "column", "message", "params"}].
    problems: list[dict[str, object]] = Field(
        default_factory=list, sa_type=sa.JSON(), nullable=False
    )
    # Where the upload waits for the job (removed when the job ends).
    stored_path: str | None = Field(default=None, max_length=500)
    created_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    started_at: datetime | None = timestamp_field(nullable=True, default=None)
    finished_at: datetime | None = timestamp_field(nullable=True, default=None)


class ResultRow(SQLModel, table=True):
    """One number: a metric of an engagement (or one of its posts) over a period."""

    __tablename__ = "result_row"
    __tenant_key__ = "brand_id"
    __table_args__ = (
        sa.UniqueConstraint("brand_id", "id"),
        sa.UniqueConstraint("brand_id", "engagement_id", "row_key", "revision"),
        # At most one current revision per row key, whatever two writers race to do.
        sa.Index("ix_result_row_brand_id_engagement_id_row_key", "brand_id", "engagement_id",
                 "row_key", unique=True, postgresql_where=CURRENT_ROWS, sqlite_where=CURRENT_ROWS),
        sa.Index("ix_result_row_brand_id_engagement_id_metric_period_start", "brand_id",
                 "engagement_id", "metric", "period_start",
                 postgresql_where=CURRENT_ROWS, sqlite_where=CURRENT_ROWS),
        sa.Index("ix_result_row_brand_id_import_id", "brand_id", "import_id"),
        sa.CheckConstraint("period_end >= period_start", name="period"),
        sa.CheckConstraint("revision >= 1", name="revision"),
        sa.CheckConstraint("status IN ('reported', 'verified', 'disputed')", name="status"),
    )  # fmt: skip

    id: uuid.UUID = id_field()
    brand_id: uuid.UUID = brand_key()
    engagement_id: uuid.UUID = engagement_key()
    post_id: uuid.UUID | None = Field(default=None, foreign_key="post.id", ondelete="SET NULL")
    row_key: str = Field(max_length=64, nullable=False)
    channel: str = Field(default="", max_length=32, nullable=False)
    metric: str = Field(max_length=48, nullable=False)
    period_start: date = Field(nullable=False)
    period_end: date = Field(nullable=False)
    value: Decimal = Field(sa_type=sa.Numeric(24, 6), nullable=False)
    currency: str | None = Field(default=None, max_length=3)
    source: str = Field(max_length=40, nullable=False)
    platform_metric: str = Field(default="", max_length=80, nullable=False)
    platform_metric_version: str = Field(default="", max_length=40, nullable=False)
    revision: int = Field(default=1, nullable=False)
    superseded_at: datetime | None = timestamp_field(nullable=True, default=None)
    status: ResultStatus = Field(
        default=ResultStatus.reported, sa_type=sa.String(12), nullable=False
    )
    status_reason: str = Field(default="", max_length=1000, nullable=False)
    status_by_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    status_at: datetime | None = timestamp_field(nullable=True, default=None)
    reported_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    reported_at: datetime = created_at_field()
    import_id: uuid.UUID | None = Field(
        default=None, foreign_key="result_import.id", ondelete="SET NULL"
    )
    import_line: int | None = Field(default=None)
    post_ref: str | None = Field(default=None, max_length=300)
