"""Every table, imported in one place so that metadata is complete for Alembic and tests."""

from __future__ import annotations

from sqlmodel import SQLModel

from app.accounts.models import ApiToken, User, UserSession
from app.idempotency import IdempotencyRecord
from app.tenancy.models import Membership, Organization

metadata = SQLModel.metadata

__all__ = [
    "ApiToken",
    "IdempotencyRecord",
    "Membership",
    "Organization",
    "User",
    "UserSession",
    "metadata",
]
