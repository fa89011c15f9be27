"""Queries about users, sessions and API tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.accounts.models import ApiToken, User, UserSession
from app.tenancy.repository import AccessibleOrganizationID


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def get_live_session(session: Session, token_hash: str, now: datetime) -> UserSession | None:
    return session.exec(
        select(UserSession).where(
            UserSession.token_hash == token_hash,
            col(UserSession.revoked_at).is_(None),
            col(UserSession.expires_at) > now,
        )
    ).first()


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


def get_live_token(session: Session, token_hash: str) -> ApiToken | None:
    return session.exec(
        select(ApiToken).where(
            ApiToken.token_hash == token_hash, col(ApiToken.revoked_at).is_(None)
        )
    ).first()


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
