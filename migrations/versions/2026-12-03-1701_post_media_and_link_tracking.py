"""post media stored by content hash and link tracking

``post_media`` is engagement-scoped: on PostgreSQL it gets the row-level security
policy of the other engagement-scoped tables (the brand sees its rows; an agency
sees the rows of its own engagements only). Link tracking needs no new column:
it is built from the engagement's tracking set-up (utm_source, utm_medium,
utm_campaign), which exists already.

Revision ID: b7c3e1a40002
Revises: b7c3e1a40001
Create Date: 2026-12-03 17:01:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c3e1a40002"
down_revision: str | None = "b7c3e1a40001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORG_IDS = "string_to_array(NULLIF(current_setting('brandkeep.org_ids', true), ''), ',')::uuid[]"
TABLES = ("post_media",)


def _rule(table: str) -> str:
    # Table names come from TABLES, never from input.
    exists = (
        f"SELECT 1 FROM engagement AS e WHERE e.id = {table}.engagement_id "  # noqa: S608
        f"AND e.brand_id = {table}.brand_id AND e.agency_id = ANY ({ORG_IDS})"
    )
    return f"brand_id = ANY ({ORG_IDS}) OR EXISTS ({exists})"


def upgrade() -> None:
    op.create_table(
        "post_media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("engagement_id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("uploaded_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("size >= 0", name=op.f("ck_post_media_size")),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["organization.id"],
            name=op.f("fk_post_media_brand_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagement.id"],
            name=op.f("fk_post_media_engagement_id_engagement"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["post.id"], name=op.f("fk_post_media_post_id_post"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["user.id"],
            name=op.f("fk_post_media_uploaded_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_media")),
        sa.UniqueConstraint(
            "brand_id", "post_id", "sha256", name=op.f("uq_post_media_brand_id_post_id_sha256")
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
    op.drop_table("post_media")
