"""row-level security on every tenant table (PostgreSQL)

Defence in depth for tenancy rule 4: even a query that forgets its tenant filter
sees only the rows of the organizations named in the transaction's settings,
which the app sets per transaction (app.db.set_tenant_context):

- ``brandkeep.user_id``: the signed-in person (their own memberships);
- ``brandkeep.org_ids``: comma-separated ids of the organizations they may see;
- ``brandkeep.token_hash``: the hash of a secret the caller presented (an API
  token, an invitation), which makes that one row readable before anyone is known.

A setting never set reads NULL and one set earlier in the session reads '': both
become NULL through NULLIF, and a comparison with NULL is never true, so the
policies fail closed. FORCE makes the table owner subject to them as well; the
owner role that runs migrations and admin commands has BYPASSRLS (README,
"Production"). On SQLite this migration does nothing.

The table lists are written out here on purpose: a migration must not change when
the models do. A later migration that adds a tenant table adds its policy too
(tests/test_row_level_security.py fails for a tenant table without one).

Revision ID: 5c1e9a2b7d40
Revises: 434af497ce69
Create Date: 2026-11-25 12:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "5c1e9a2b7d40"
down_revision: str | None = "434af497ce69"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"

ORG_IDS = "string_to_array(NULLIF(current_setting('brandkeep.org_ids', true), ''), ',')::uuid[]"
USER_ID = "NULLIF(current_setting('brandkeep.user_id', true), '')::uuid"
TOKEN_HASH = "NULLIF(current_setting('brandkeep.token_hash', true), '')"  # noqa: S105 - SQL, not a secret

# Organization-scoped tables (tenant key organization_id), with what else makes a row visible.
ORGANIZATION_TABLES: dict[str, str] = {
    "api_token": f"token_hash = {TOKEN_HASH}",
    "invitation": f"token_hash = {TOKEN_HASH}",
    # A person's own memberships: needed to work out which organizations they may see.
    "membership": f"user_id = {USER_ID}",
    "sso_settings": "",
}

# Engagement-scoped tables (tenant key brand_id, plus engagement_id).
ENGAGEMENT_TABLES: tuple[str, ...] = (
    "attestation",
    "campaign",
    "engagement_event",
    "fee",
    "handover_route",
    "kpi",
    "objective",
    "scope_change",
    "scope_line",
    "stage_change",
)


def _organization_rule(table: str) -> str:
    rule = f"organization_id = ANY ({ORG_IDS})"
    extra = ORGANIZATION_TABLES[table]
    return f"{rule} OR {extra}" if extra else rule


# The engagement: its brand and its agency.
ENGAGEMENT_RULE = f"brand_id = ANY ({ORG_IDS}) OR agency_id = ANY ({ORG_IDS})"


def _engagement_scoped_rule(table: str) -> str:
    # The brand sees its rows; an agency sees the rows of its own engagements only,
    # never another agency's rows of the same brand.
    # Table names come from the lists above, never from input.
    exists = f"SELECT 1 FROM engagement AS e WHERE e.id = {table}.engagement_id AND e.brand_id = {table}.brand_id AND e.agency_id = ANY ({ORG_IDS})"  # noqa: S608
    return f"brand_id = ANY ({ORG_IDS}) OR EXISTS ({exists})"


def _rules() -> dict[str, str]:
    rules = {table: _organization_rule(table) for table in ORGANIZATION_TABLES}
    rules["engagement"] = ENGAGEMENT_RULE
    rules.update({table: _engagement_scoped_rule(table) for table in ENGAGEMENT_TABLES})
    return rules


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, rule in _rules().items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        # USING applies to reads, updates and deletes; WITH CHECK to the rows written.
        op.execute(f"CREATE POLICY {POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _rules():
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
