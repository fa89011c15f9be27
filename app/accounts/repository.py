"""Queries about users, sessions and API tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.accounts.models import ApiToken, User, UserSession
from app.db import tenant_context_column, tenant_context_was_set
from app.tenancy.repository import AccessibleOrganizationID


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def _active_user_id(user_id: Any) -> sa.ColumnElement[str]:
    """The row's user id as the tenant context spells it, or '' unless the user is active."""
    return sa.case((col(User.is_active), sa.cast(user_id, sa.String)), else_="")


def get_live_session_and_user(
    session: Session, token_hash: str, now: datetime
) -> tuple[UserSession, User | None] | None:
    """The live browser session with its user (None before sign-in), in one query.

    On PostgreSQL the same statement names the active user to row-level security
    (their memberships become readable), so no separate round trip is needed.
    """
    setter = tenant_context_column(session, "user_id", _active_user_id(UserSession.user_id))
    query = (
        sa.select(UserSession, User, *([setter] if setter is not None else []))
        .outerjoin(User, col(User.id) == UserSession.user_id)
        .where(
            col(UserSession.token_hash) == token_hash,
            col(UserSession.revoked_at).is_(None),
            col(UserSession.expires_at) > now,
        )
    )
    row = session.execute(query).first()
    if row is None:
        return None
    if setter is not None:
        tenant_context_was_set(session, user_id=row[2])
    return row[0], row[1]


def get_live_token_and_user(session: Session, token_hash: str) -> tuple[ApiToken, User] | None:
    """An unrevoked API token with its owner, in one query; on PostgreSQL it also names
    the owner to row-level security, if active (see ``get_live_session_and_user``).

    The token's row is readable under row-level security only once its hash is in the
    context (``set_tenant_context(token_hash=…)``).
    """
    setter = tenant_context_column(session, "user_id", _active_user_id(ApiToken.user_id))
    query = (
        sa.select(ApiToken, User, *([setter] if setter is not None else []))
        .join(User, col(User.id) == ApiToken.user_id)
        .where(col(ApiToken.token_hash) == token_hash, col(ApiToken.revoked_at).is_(None))
    )
    row = session.execute(query).first()
    if row is None:
        return None
    if setter is not None:
        tenant_context_was_set(session, user_id=row[2])
    return row[0], row[1]


def revoke_sessions_of_user(
    session: Session, user_id: uuid.UUID, now: datetime, *, keep: uuid.UUID | None = None
) -> int:
    query = sa.update(UserSession).where(
        col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None)
    )
    if keep is not None:
        query = query.where(col(UserSession.id) != keep)
    result = session.execute(
        query.values(revoked_at=now).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def list_tokens_of_user(session: Session, user_id: uuid.UUID) -> Sequence[ApiToken]:
    return session.exec(
        select(ApiToken)
        .where(ApiToken.user_id == user_id)
        .order_by(col(ApiToken.created_at).desc())
    ).all()


def get_token_of_user(
    session: Session,
    token_id: uuid.UUID,
    user_id: uuid.UUID,
    accessible: frozenset[AccessibleOrganizationID],
) -> ApiToken | None:
    if not accessible:
        return None
    return session.exec(
        select(ApiToken).where(
            ApiToken.id == token_id,
            ApiToken.user_id == user_id,
            col(ApiToken.organization_id).in_(list(accessible)),
        )
    ).first()
