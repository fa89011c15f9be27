"""Organizations (the tenants) and who belongs to them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field


class OrgKind(enum.StrEnum):
    brand = "brand"
    agency = "agency"


class Role(enum.StrEnum):
    owner = "owner"
    lead = "lead"
    reviewer = "reviewer"
    viewer = "viewer"
    manager = "manager"
    creator = "creator"


# Which roles exist in which kind of organization (DESIGN.md, "Users, tenants, roles").
ROLES_BY_KIND: dict[OrgKind, tuple[Role, ...]] = {
    OrgKind.brand: (Role.owner, Role.lead, Role.reviewer, Role.viewer),
    OrgKind.agency: (Role.owner, Role.manager, Role.creator),
}


class Organization(SQLModel, table=True):
    """A tenant. Rows scoped to one organization carry ``organization_id``."""

    __tablename__ = "organization"

    id: uuid.UUID = id_field()
    kind: OrgKind = Field(sa_type=sa.String(16), nullable=False)
    name: str = Field(max_length=120, nullable=False)
    slug: str = Field(max_length=64, nullable=False, unique=True)
    language: str = Field(default="en", max_length=8, nullable=False)
    timezone: str = Field(default="UTC", max_length=64, nullable=False)
    created_at: datetime = created_at_field()


class Membership(SQLModel, table=True):
    """One user's role in one organization."""

    __tablename__ = "membership"
    __tenant_key__ = "organization_id"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "user_id"),
        sa.Index("ix_membership_user_id", "user_id"),
    )

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(
        foreign_key="organization.id", nullable=False, ondelete="CASCADE"
    )
    user_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    role: Role = Field(sa_type=sa.String(16), nullable=False)
    # Optimistic concurrency: changes are conditional on the version the editor saw.
    version: int = Field(default=1, nullable=False)
    created_at: datetime = created_at_field()
