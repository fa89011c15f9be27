"""deliverable evidence files

Files an agency hands over with a delivery (a PDF report, a spreadsheet, an image,
a ZIP), one row per file and delivery round, the bytes in the content-addressed
blob store. The table is engagement-scoped: on PostgreSQL it gets the row-level
security policy of the other deliverable tables (the brand sees its rows; an agency
sees the rows of its own engagements only). The table list is written out on
purpose: a migration must not change when the models do.

Revision ID: b7c3e1a40008
Revises: b7c3e1a40007
Create Date: 2026-12-03 20:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c3e1a40008"
down_revision: str | None = "b7c3e1a40007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORG_IDS = "string_to_array(NULLIF(current_setting('brandkeep.org_ids', true), ''), ',')::uuid[]"
SHARED_TABLES = ("deliverable_evidence_file",)


def _shared_rule(table: str) -> str:
    # Table names come from SHARED_TABLES, never from input.
    exists = (
        f"SELECT 1 FROM engagement AS e WHERE e.id = {table}.engagement_id "  # noqa: S608
        f"AND e.brand_id = {table}.brand_id AND e.agency_id = ANY ({ORG_IDS})"
    )
    return f"brand_id = ANY ({ORG_IDS}) OR EXISTS ({exists})"


def upgrade() -> None:
    op.create_table(
        "deliverable_evidence_file",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("engagement_id", sa.Uuid(), nullable=False),
        sa.Column("deliverable_id", sa.Uuid(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("uploaded_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("round >= 1", name=op.f("ck_deliverable_evidence_file_round")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_deliverable_evidence_file_size")),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["organization.id"],
            name=op.f("fk_deliverable_evidence_file_brand_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deliverable_id"],
            ["deliverable.id"],
            name=op.f("fk_deliverable_evidence_file_deliverable_id_deliverable"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["engagement_id"],
            ["engagement.id"],
            name=op.f("fk_deliverable_evidence_file_engagement_id_engagement"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["user.id"],
            name=op.f("fk_deliverable_evidence_file_uploaded_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliverable_evidence_file")),
        sa.UniqueConstraint(
            "deliverable_id",
            "round",
            "sha256",
            name=op.f("uq_deliverable_evidence_file_deliverable_id_round_sha256"),
        ),
    )
    with op.batch_alter_table("deliverable_evidence_file", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliverable_evidence_file_brand_id_engagement_id",
            ["brand_id", "engagement_id"],
            unique=False,
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in SHARED_TABLES:
        rule = _shared_rule(table)
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({rule}) WITH CHECK ({rule})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in SHARED_TABLES:
            op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    with op.batch_alter_table("deliverable_evidence_file", schema=None) as batch_op:
        batch_op.drop_index("ix_deliverable_evidence_file_brand_id_engagement_id")
    op.drop_table("deliverable_evidence_file")
