"""post comments (shared or internal, with mentions) and notifications

Revision ID: b7c3e1a40001
Revises: 26f3ed9deb01
Create Date: 2026-12-03 17:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "b7c3e1a40001"
down_revision: str | None = "26f3ed9deb01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in with this migration's tables."""


def downgrade() -> None:
    """Filled in with this migration's tables."""
