"""Queries about escalations, always through an engagement the caller may see.

The brand's notes are read by ``notes_of`` only, which the service calls for the
brand's side alone; on PostgreSQL their row-level security policy has no agency
clause, so even a query that forgot this would show the agency nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select

from app.accounts.models import User
from app.engagements.models import Engagement, HandoverRoute, RouteKind
from app.escalations.models import Escalation, EscalationNote, EscalationStatus
from app.tenancy.repository import AccessibleOrganizationID


def _join() -> Any:
    return sa.and_(
        col(Engagement.id) == Escalation.engagement_id,
        col(Engagement.brand_id) == Escalation.brand_id,
    )


def get_escalation(
    session: Session, escalation_id: uuid.UUID, accessible: frozenset[AccessibleOrganizationID]
) -> tuple[Escalation, Engagement] | None:
    if not accessible:
        return None
    ids = list(accessible)
    row = session.exec(
        select(Escalation, Engagement)
        .join(Engagement, _join())
        .where(
            Escalation.id == escalation_id,
            or_(col(Engagement.brand_id).in_(ids), col(Engagement.agency_id).in_(ids)),
        )
    ).first()
    return (row[0], row[1]) if row else None


def escalations_of(
    session: Session, engagement: Engagement, status: EscalationStatus | None = None
) -> Sequence[Escalation]:
    query = select(Escalation).where(
        Escalation.brand_id == engagement.brand_id, Escalation.engagement_id == engagement.id
    )
    if status is not None:
        query = query.where(Escalation.status == status)
    return session.exec(query.order_by(col(Escalation.opened_at).desc())).all()


def opened_between(
    session: Session, engagement: Engagement, start: datetime, end: datetime
) -> Sequence[Escalation]:
    """Opened in [start, end): the escalation measures' population."""
    return session.exec(
        select(Escalation).where(
            Escalation.brand_id == engagement.brand_id,
            Escalation.engagement_id == engagement.id,
            col(Escalation.opened_at) >= start,
            col(Escalation.opened_at) < end,
        )
    ).all()


def resolved_between(
    session: Session, engagement: Engagement, start: datetime, end: datetime
) -> Sequence[Escalation]:
    return session.exec(
        select(Escalation).where(
            Escalation.brand_id == engagement.brand_id,
            Escalation.engagement_id == engagement.id,
            col(Escalation.resolved_at) >= start,
            col(Escalation.resolved_at) < end,
        )
    ).all()


def for_organizations(
    session: Session,
    *,
    brand_ids: Iterable[AccessibleOrganizationID] = (),
    agency_ids: Iterable[AccessibleOrganizationID] = (),
    status: EscalationStatus | None = None,
    limit: int = 200,
) -> Sequence[tuple[Escalation, Engagement]]:
    """The inbox (escalations to these brands) or the outbox (from these agencies)."""
    brands, agencies = list(brand_ids), list(agency_ids)
    if not brands and not agencies:
        return []
    query = (
        select(Escalation, Engagement)
        .join(Engagement, _join())
        .where(or_(col(Engagement.brand_id).in_(brands), col(Engagement.agency_id).in_(agencies)))
    )
    if status is not None:
        query = query.where(Escalation.status == status)
    rows = session.exec(
        query.order_by(col(Escalation.opened_at).desc(), col(Escalation.id)).limit(limit)
    ).all()
    return [(escalation, engagement) for escalation, engagement in rows]


def route_of(session: Session, engagement: Engagement, kind: RouteKind) -> HandoverRoute | None:
    return session.exec(
        select(HandoverRoute).where(
            HandoverRoute.brand_id == engagement.brand_id,
            HandoverRoute.engagement_id == engagement.id,
            HandoverRoute.kind == kind,
        )
    ).first()


def user_by_id(session: Session, user_id: uuid.UUID) -> User | None:
    """The engagement's named brand lead, whom a crisis goes to."""
    return session.get(User, user_id)


def notes_of(session: Session, escalation: Escalation) -> Sequence[EscalationNote]:
    return session.exec(
        select(EscalationNote)
        .where(
            EscalationNote.brand_id == escalation.brand_id,
            EscalationNote.escalation_id == escalation.id,
        )
        .order_by(col(EscalationNote.created_at), col(EscalationNote.id))
    ).all()
