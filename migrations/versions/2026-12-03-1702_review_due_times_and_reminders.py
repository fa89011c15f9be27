"""review due times, reminders and missed slots

Columns on ``post`` only (no new table, so no new row-level security policy): the
review's due time this round, the reminders and escalation sent for it, when the
planned time passed before approval, and the first submission (for turnaround).

Posts already in review get their due time from their engagement's policy, counted
from their last submission, so that the first sweep after the upgrade treats them
like any other.

Revision ID: b7c3e1a40003
Revises: b7c3e1a40002
Create Date: 2026-12-03 17:02:00.000000+00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "b7c3e1a40003"
down_revision: str | None = "b7c3e1a40002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than imported: a migration must not change when the code does.
DEFAULT_REVIEW_HOURS = 48


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _review_hours(policy: Any) -> int:
    if isinstance(policy, str):
        policy = json.loads(policy)
    try:
        return int((policy or {}).get("review_hours") or DEFAULT_REVIEW_HOURS)
    except (TypeError, ValueError):
        return DEFAULT_REVIEW_HOURS


def upgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_submitted_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("review_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("reminders_sent", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("last_reminder_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("missed_slot_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_post_brand_id_planned_at", ["brand_id", "planned_at"], unique=False
        )
        batch_op.create_index(
            "ix_post_brand_id_status_review_due_at",
            ["brand_id", "status", "review_due_at"],
            unique=False,
        )
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.alter_column("reminders_sent", server_default=None)

    bind = op.get_bind()
    bind.execute(sa.text("UPDATE post SET first_submitted_at = submitted_at"))
    rows = bind.execute(
        sa.text(
            "SELECT post.id, post.submitted_at, engagement.approval_policy FROM post "
            "JOIN engagement ON engagement.id = post.engagement_id "
            "WHERE post.status = 'in_review' AND post.submitted_at IS NOT NULL"
        )
    ).all()
    sqlite = bind.dialect.name == "sqlite"
    for post_id, submitted_at, policy in rows:
        due = _aware(submitted_at) + timedelta(hours=_review_hours(policy))
        bind.execute(
            sa.text("UPDATE post SET review_due_at = :due WHERE id = :id"),
            {"due": due.replace(tzinfo=None) if sqlite else due, "id": post_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_index("ix_post_brand_id_status_review_due_at")
        batch_op.drop_index("ix_post_brand_id_planned_at")
        batch_op.drop_column("missed_slot_at")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("last_reminder_at")
        batch_op.drop_column("reminders_sent")
        batch_op.drop_column("review_due_at")
        batch_op.drop_column("first_submitted_at")
