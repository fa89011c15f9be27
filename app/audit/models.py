"""The audit record: append-only, hash-chained per engagement (or per organization)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field

# The tables this one's foreign keys name must be known wherever an entry is written
# (the security log writes entries from code that never touches an engagement).
from app.engagements import models as _engagement_tables  # noqa: F401
from app.tenancy import models as _tenancy_tables  # noqa: F401


class AuditEntry(SQLModel, table=True):
    """One entry of a chain. ``hash`` covers every other field, ``prev_hash`` included.

    A chain is an engagement's (``chain_id`` = the engagement's id, rows keyed by
    its brand) or an organization's (``chain_id`` = the organization's id). Changing,
    removing or reordering any entry breaks every hash after it; removing the newest
    entries is caught against a signed checkpoint.
    """

    __tablename__ = "audit_entry"
    __tenant_key__ = "organization_id"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "chain_id", "seq"),
        sa.Index("ix_audit_entry_chain_id_seq", "chain_id", "seq"),
    )

    id: uuid.UUID = id_field()
    # The brand for an engagement's chain, else the organization itself.
    organization_id: uuid.UUID = Field(
        foreign_key="organization.id", nullable=False, ondelete="CASCADE"
    )
    engagement_id: uuid.UUID | None = Field(
        default=None, foreign_key="engagement.id", ondelete="CASCADE"
    )
    chain_id: uuid.UUID = Field(nullable=False)
    seq: int = Field(nullable=False)
    at: datetime = created_at_field()
    actor_id: uuid.UUID | None = Field(default=None)
    actor: str = Field(max_length=300, nullable=False)
    kind: str = Field(max_length=64, nullable=False)
    subject_type: str = Field(max_length=40, nullable=False)
    subject_id: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON(), nullable=False)
    prev_hash: str = Field(max_length=64, nullable=False)
    hash: str = Field(max_length=64, nullable=False)
