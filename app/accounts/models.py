"""People, their sign-in sessions and their API tokens."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field, timestamp_field


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: uuid.UUID = id_field()
    # Stored lower-cased by the service, so uniqueness ignores case.
    email: str = Field(max_length=254, nullable=False, unique=True)
    name: str = Field(max_length=120, nullable=False)
    password_hash: str | None = Field(default=None, max_length=255)
    is_active: bool = Field(default=True, nullable=False)
    language: str | None = Field(default=None, max_length=8)
    timezone: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_at_field()


class UserSession(SQLModel, table=True):
    """A server-side session. The cookie holds a random secret; only its hash is here.

    A row exists before sign-in too (``user_id`` empty), so that the sign-in and
    sign-up forms have a CSRF token bound to a session; signing in rotates it.
    Revoking the row signs the browser out wherever the cookie went.
    """

    __tablename__ = "user_session"
    __table_args__ = (sa.Index("ix_user_session_user_id", "user_id"),)

    id: uuid.UUID = id_field()
    token_hash: str = Field(max_length=64, nullable=False, unique=True)
    csrf_token: str = Field(max_length=64, nullable=False)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="CASCADE")
    active_organization_id: uuid.UUID | None = Field(
        default=None, foreign_key="organization.id", ondelete="SET NULL"
    )
    language: str | None = Field(default=None, max_length=8)
    flash: str | None = Field(default=None, max_length=500)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)
    created_at: datetime = created_at_field()
    last_seen_at: datetime = created_at_field()
    expires_at: datetime = timestamp_field()
    revoked_at: datetime | None = timestamp_field(nullable=True, default=None)


class TokenScope(enum.StrEnum):
    read = "read"
    write = "write"


class ApiToken(SQLModel, table=True):
    """A bearer token for the API, acting as one user within one organization."""

    __tablename__ = "api_token"
    __tenant_key__ = "organization_id"
    __table_args__ = (
        sa.Index("ix_api_token_organization_id_user_id", "organization_id", "user_id"),
    )

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(
        foreign_key="organization.id", nullable=False, ondelete="CASCADE"
    )
    user_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    name: str = Field(max_length=80, nullable=False)
    # The visible start of the token, so people can tell their tokens apart.
    prefix: str = Field(max_length=16, nullable=False)
    token_hash: str = Field(max_length=64, nullable=False, unique=True)
    scope: TokenScope = Field(sa_type=sa.String(8), nullable=False)
    created_at: datetime = created_at_field()
    last_used_at: datetime | None = timestamp_field(nullable=True, default=None)
    revoked_at: datetime | None = timestamp_field(nullable=True, default=None)


class UserIdentity(SQLModel, table=True):
    """A sign-in identity at an OpenID Connect provider, keyed on (issuer, subject)."""

    __tablename__ = "user_identity"
    __table_args__ = (
        sa.UniqueConstraint("issuer", "subject"),
        sa.Index("ix_user_identity_user_id", "user_id"),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    issuer: str = Field(max_length=500, nullable=False)
    subject: str = Field(max_length=255, nullable=False)
    email: str = Field(max_length=254, nullable=False)
    created_at: datetime = created_at_field()
    last_used_at: datetime | None = timestamp_field(nullable=True, default=None)


class PasswordReset(SQLModel, table=True):
    """A single-use, expiring password reset link; only the token's hash is kept."""

    __tablename__ = "password_reset"
    __table_args__ = (sa.Index("ix_password_reset_user_id", "user_id"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, nullable=False, unique=True)
    created_at: datetime = created_at_field()
    expires_at: datetime = timestamp_field()
    used_at: datetime | None = timestamp_field(nullable=True, default=None)


class ThrottleEvent(SQLModel, table=True):
    """One failed attempt (sign-in, reset or invitation request), counted per key.

    Kept in the database so that every app process sees the same counts.
    """

    __tablename__ = "throttle_event"
    __table_args__ = (sa.Index("ix_throttle_event_key_at", "key", "at"),)

    id: uuid.UUID = id_field()
    key: str = Field(max_length=200, nullable=False)
    at: datetime = created_at_field()


class SecurityEvent(SQLModel, table=True):
    """Sign-ins, failures, sign-outs, password and token changes, membership and SSO changes.

    ``organization_id`` is set for events about an organization (its members, its
    SSO settings); events about a person carry ``user_id`` and are shown to the
    owners of the organizations that person belongs to.
    """

    __tablename__ = "security_event"
    __table_args__ = (
        sa.Index("ix_security_event_organization_id_at", "organization_id", "at"),
        sa.Index("ix_security_event_user_id_at", "user_id", "at"),
    )

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=40, nullable=False)
    at: datetime = created_at_field()
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    organization_id: uuid.UUID | None = Field(
        default=None, foreign_key="organization.id", ondelete="CASCADE"
    )
    email: str | None = Field(default=None, max_length=254)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON(), nullable=False)
