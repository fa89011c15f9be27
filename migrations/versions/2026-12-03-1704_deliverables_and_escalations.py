"""deliverables and escalations

Revision ID: b7c3e1a40005
Revises: b7c3e1a40004
Create Date: 2026-12-03 17:04:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "b7c3e1a40005"
down_revision: str | None = "b7c3e1a40004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in with this migration's tables."""


def downgrade() -> None:
    """Filled in with this migration's tables."""
