"""Organizations (the tenants) and who belongs to them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field, timestamp_field


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


class InvitationKind(enum.StrEnum):
    member = "member"  # join this organization with a role
    agency = "agency"  # create a new agency organization and become its owner


class Invitation(SQLModel, table=True):
    """An invitation by e-mail: single-use, expiring, revocable; only the token's hash is kept."""

    __tablename__ = "invitation"
    __tenant_key__ = "organization_id"
    __table_args__ = (
        sa.Index("ix_invitation_organization_id_created_at", "organization_id", "created_at"),
    )

    id: uuid.UUID = id_field()
    # The organization that invites (for an agency invitation: the brand).
    organization_id: uuid.UUID = Field(
        foreign_key="organization.id", nullable=False, ondelete="CASCADE"
    )
    kind: InvitationKind = Field(sa_type=sa.String(16), nullable=False)
    email: str = Field(max_length=254, nullable=False)
    role: Role = Field(sa_type=sa.String(16), nullable=False)
    # Accept any address at the invited e-mail's domain (the inviter chose to).
    allow_domain: bool = Field(default=False, nullable=False)
    agency_name: str | None = Field(default=None, max_length=120)
    # For an agency invitation: the engagement proposed to it, opened on acceptance.
    engagement_proposal: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON())
    token_hash: str = Field(max_length=64, nullable=False, unique=True)
    invited_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    expires_at: datetime = timestamp_field()
    sent_at: datetime | None = timestamp_field(nullable=True, default=None)
    accepted_at: datetime | None = timestamp_field(nullable=True, default=None)
    accepted_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    revoked_at: datetime | None = timestamp_field(nullable=True, default=None)
    version: int = Field(default=1, nullable=False)


class SsoSettings(SQLModel, table=True):
    """An organization's own identity provider (OpenID Connect), set by its owner."""

    __tablename__ = "sso_settings"
    __tenant_key__ = "organization_id"
    __table_args__ = (sa.UniqueConstraint("organization_id"),)

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(
        foreign_key="organization.id", nullable=False, ondelete="CASCADE"
    )
    issuer: str = Field(max_length=500, nullable=False)
    client_id: str = Field(max_length=255, nullable=False)
    client_secret: str = Field(max_length=500, nullable=False)
    # When set, members sign in only through this provider; passwords are refused.
    require_sso: bool = Field(default=False, nullable=False)
    updated_at: datetime = created_at_field()
    version: int = Field(default=1, nullable=False)
