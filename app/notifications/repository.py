"""Queries about notifications (the recipient's own) and about who is on an engagement."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.accounts.models import User
from app.engagements.models import Engagement
from app.notifications.models import Notification, NotificationKind, NotificationPreference
from app.tenancy.models import Membership

# On PostgreSQL a function created by the migration, running as the tables' owner, lists
# the members of both sides of one engagement, and only of an engagement the caller's
# organizations take part in. Row-level security rightly hides the brand's memberships
# from the agency (and the reverse), yet each side must be able to mention the other's
# people and to notify the reviewers who wait for a post: this is the one narrow door.
_ENGAGEMENT_PEOPLE = sa.text(
    "SELECT person_id, org_id, person_role FROM brandkeep_engagement_people(:engagement_id)"
)


@dataclass(frozen=True)
class Person:
    """Someone on an engagement: which side they are on and their role there."""

    user: User
    organization_id: uuid.UUID
    role: str


def engagement_people(session: Session, engagement: Engagement) -> list[Person]:
    """The brand's and the agency's members, by name (someone on both sides: once per side)."""
    if session.get_bind().dialect.name == "postgresql":
        rows = [
            (uuid.UUID(str(user_id)), uuid.UUID(str(org_id)), str(role))
            for user_id, org_id, role in session.execute(
                _ENGAGEMENT_PEOPLE, {"engagement_id": engagement.id}
            )
        ]
    else:
        rows = [
            (user_id, org_id, str(role))
            for user_id, org_id, role in session.exec(
                select(Membership.user_id, Membership.organization_id, Membership.role).where(
                    col(Membership.organization_id).in_([engagement.brand_id, engagement.agency_id])
                )
            )
        ]
    users = users_by_id(session, {user_id for user_id, _org, _role in rows})
    people = [
        Person(users[user_id], org_id, role)
        for user_id, org_id, role in rows
        if user_id in users and users[user_id].is_active
    ]
    return sorted(people, key=lambda person: (person.user.name.lower(), person.user.email))


def users_by_id(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {user.id: user for user in session.exec(select(User).where(col(User.id).in_(wanted)))}


def preferences_of(
    session: Session, user_ids: Iterable[uuid.UUID]
) -> dict[tuple[uuid.UUID, NotificationKind], NotificationPreference]:
    wanted = list(set(user_ids))
    if not wanted:
        return {}
    rows = session.exec(
        select(NotificationPreference).where(col(NotificationPreference.user_id).in_(wanted))
    )
    return {(row.user_id, NotificationKind(row.kind)): row for row in rows}


def notifications_of(
    session: Session,
    user_id: uuid.UUID,
    org_ids: Iterable[uuid.UUID],
    *,
    limit: int,
    offset: int = 0,
    unread_only: bool = False,
) -> Sequence[Notification]:
    query = _mine(select(Notification), user_id, org_ids)
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    return session.exec(
        query.order_by(col(Notification.created_at).desc(), col(Notification.id))
        .limit(limit)
        .offset(offset)
    ).all()


def count_unread(session: Session, user_id: uuid.UUID, org_ids: Iterable[uuid.UUID]) -> int:
    query = _mine(select(func.count()).select_from(Notification), user_id, org_ids)
    return session.exec(query.where(col(Notification.read_at).is_(None))).one()


def count_all(session: Session, user_id: uuid.UUID, org_ids: Iterable[uuid.UUID]) -> int:
    return session.exec(
        _mine(select(func.count()).select_from(Notification), user_id, org_ids)
    ).one()


def mark_read(
    session: Session,
    user_id: uuid.UUID,
    org_ids: Iterable[uuid.UUID],
    at: datetime,
    notification_id: uuid.UUID | None = None,
) -> int:
    """Mark one (or, without an id, every) unread notification of this person read."""
    statement = (
        sa.update(Notification)
        .where(
            col(Notification.user_id) == user_id,
            col(Notification.engagement_id).in_(_visible_engagements(org_ids)),
            col(Notification.read_at).is_(None),
        )
        .values(read_at=at)
        .execution_options(synchronize_session=False)
    )
    if notification_id is not None:
        statement = statement.where(col(Notification.id) == notification_id)
    result = session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


def get_notification(
    session: Session, user_id: uuid.UUID, org_ids: Iterable[uuid.UUID], notification_id: uuid.UUID
) -> Notification | None:
    return session.exec(
        _mine(select(Notification), user_id, org_ids).where(Notification.id == notification_id)
    ).first()


def _visible_engagements(org_ids: Iterable[uuid.UUID]) -> Any:
    """The engagements these organizations take part in (either side)."""
    ids = list(org_ids)
    return select(Engagement.id).where(
        sa.or_(col(Engagement.brand_id).in_(ids), col(Engagement.agency_id).in_(ids))
    )


def _mine(query: Any, user_id: uuid.UUID, org_ids: Iterable[uuid.UUID]) -> Any:
    """The person's own notifications, about engagements they still take part in."""
    return query.where(
        col(Notification.user_id) == user_id,
        col(Notification.engagement_id).in_(_visible_engagements(org_ids)),
    )
