"""metric rollups and scorecard settings

Engagement-scoped tables: on PostgreSQL each gets the row-level security policy of
the other engagement-scoped tables (the brand sees its rows; an agency sees the
rows of its own engagements only). The table list is written out on purpose: a
migration must not change when the models do.

Revision ID: b7c3e1a40007
Revises: b7c3e1a40006
Create Date: 2026-12-03 17:06:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c3e1a40007"
down_revision: str | None = "b7c3e1a40006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORG_IDS = "string_to_array(NULLIF(current_setting('brandkeep.org_ids', true), ''), ',')::uuid[]"
TABLES = ("metric_rollup", "scorecard_weights")


def _rule(table: str) -> str:
    # Table names come from TABLES, never from input.
    exists = (
        f"SELECT 1 FROM engagement AS e WHERE e.id = {table}.engagement_id "  # noqa: S608
        f"AND e.brand_id = {table}.brand_id AND e.agency_id = ANY ({ORG_IDS})"
    )
    return f"brand_id = ANY ({ORG_IDS}) OR EXISTS ({exists})"


def upgrade() -> None:
    op.create_table(
        "metric_rollup",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("engagement_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("total", sa.Numeric(precision=28, scale=6), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("backed_rows", sa.Integer(), nullable=False),
        sa.Column("disputed_rows", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["organization.id"],
            name=op.f("fk_metric_rollup_brand_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagement.id"],
            name=op.f("fk_metric_rollup_engagement_id_engagement"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_rollup")),
        sa.UniqueConstraint(
            "brand_id",
            "engagement_id",
            "metric",
            "channel",
            "day",
            name=op.f("uq_metric_rollup_brand_id_engagement_id_metric_channel_day"),
        ),
    )
    with op.batch_alter_table("metric_rollup", schema=None) as batch_op:
        batch_op.create_index("ix_metric_rollup_brand_id_day", ["brand_id", "day"], unique=False)

    op.create_table(
        "scorecard_weights",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("engagement_id", sa.Uuid(), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("delivery", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "results + delivery + quality = 100", name=op.f("ck_scorecard_weights_sum")
        ),
        sa.CheckConstraint(
            "results >= 0 AND delivery >= 0 AND quality >= 0",
            name=op.f("ck_scorecard_weights_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["organization.id"],
            name=op.f("fk_scorecard_weights_brand_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagement.id"],
            name=op.f("fk_scorecard_weights_engagement_id_engagement"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["user.id"],
            name=op.f("fk_scorecard_weights_updated_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scorecard_weights")),
        sa.UniqueConstraint(
            "brand_id", "engagement_id", name=op.f("uq_scorecard_weights_brand_id_engagement_id")
        ),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        rule = _rule(table)
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({rule}) WITH CHECK ({rule})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.drop_table("scorecard_weights")
    with op.batch_alter_table("metric_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_rollup_brand_id_day")
    op.drop_table("metric_rollup")
