"""Queries about deliverables, always through an engagement the caller may see.

Transitions are conditional updates made by ``app.transitions``: whoever loses a
race changes nothing and is told so.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, or_, select

from app.deliverables.models import Deliverable, DeliverableStatus, EvidenceFile
from app.engagements.models import Engagement, ScopeLine
from app.tenancy.models import Organization
from app.tenancy.repository import AccessibleOrganizationID


def get_deliverable(
    session: Session, deliverable_id: uuid.UUID, accessible: frozenset[AccessibleOrganizationID]
) -> tuple[Deliverable, Engagement] | None:
    if not accessible:
        return None
    ids = list(accessible)
    row = session.exec(
        select(Deliverable, Engagement)
        .join(
            Engagement,
            sa.and_(
                col(Engagement.id) == Deliverable.engagement_id,
                col(Engagement.brand_id) == Deliverable.brand_id,
            ),
        )
        .where(
            Deliverable.id == deliverable_id,
            or_(col(Engagement.brand_id).in_(ids), col(Engagement.agency_id).in_(ids)),
        )
    ).first()
    return (row[0], row[1]) if row else None


def deliverables_of(
    session: Session,
    engagement: Engagement,
    *,
    status: DeliverableStatus | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
) -> Sequence[Deliverable]:
    """The engagement's deliverables, by period (newest first), then due date."""
    query = select(Deliverable).where(
        Deliverable.brand_id == engagement.brand_id, Deliverable.engagement_id == engagement.id
    )
    if status is not None:
        query = query.where(Deliverable.status == status)
    if period_start is not None:
        query = query.where(col(Deliverable.due_on) >= period_start)
    if period_end is not None:
        query = query.where(col(Deliverable.due_on) <= period_end)
    return session.exec(
        query.order_by(
            col(Deliverable.period_start).desc(), col(Deliverable.due_on), col(Deliverable.title)
        )
    ).all()


def brand_timezone(session: Session, brand_id: uuid.UUID) -> str:
    """The brand's time zone: due dates end at midnight there."""
    zone = session.exec(select(Organization.timezone).where(Organization.id == brand_id)).first()
    return zone or "UTC"


def scope_lines_of(session: Session, engagement: Engagement) -> Sequence[ScopeLine]:
    return session.exec(
        select(ScopeLine)
        .where(ScopeLine.brand_id == engagement.brand_id, ScopeLine.engagement_id == engagement.id)
        .order_by(col(ScopeLine.created_at), col(ScopeLine.id))
    ).all()


def planned_keys(session: Session, engagement: Engagement) -> set[tuple[uuid.UUID, date]]:
    rows = session.exec(
        select(col(Deliverable.scope_line_id), col(Deliverable.period_start)).where(
            Deliverable.brand_id == engagement.brand_id,
            Deliverable.engagement_id == engagement.id,
            col(Deliverable.scope_line_id).is_not(None),
        )
    ).all()
    return {(line_id, start) for line_id, start in rows if line_id is not None}


def insert_planned(session: Session, values: dict[str, Any]) -> bool:
    """Insert one planned deliverable unless its (line, period) exists: True if written."""
    table = Deliverable.__table__  # type: ignore[attr-defined]
    values = {
        "status": DeliverableStatus.planned.value,
        "ad_hoc": False,
        "rounds": 0,
        "version": 1,
        **values,
    }
    values.setdefault("evidence", [])
    for key in ("delivery_note", "delivered_by_name", "decided_by_name", "return_reason"):
        values.setdefault(key, "")
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.values(**values).on_conflict_do_nothing(
        index_elements=["brand_id", "scope_line_id", "period_start"]
    )
    result = session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def untouched_future_of_line(
    session: Session, engagement: Engagement, line_id: uuid.UUID, now: datetime
) -> Sequence[Deliverable]:
    return session.exec(
        select(Deliverable).where(
            Deliverable.brand_id == engagement.brand_id,
            Deliverable.engagement_id == engagement.id,
            Deliverable.scope_line_id == line_id,
            Deliverable.status == DeliverableStatus.planned,
            Deliverable.rounds == 0,
            col(Deliverable.due_at) > now,
        )
    ).all()


def evidence_files_of(
    session: Session, engagement: Engagement, deliverable: Deliverable | None = None
) -> Sequence[EvidenceFile]:
    """Every round's evidence files, oldest round first: of one deliverable, or of all
    the engagement's (the board)."""
    query = select(EvidenceFile).where(
        EvidenceFile.brand_id == engagement.brand_id,
        EvidenceFile.engagement_id == engagement.id,
    )
    if deliverable is not None:
        query = query.where(EvidenceFile.deliverable_id == deliverable.id)
    return session.exec(
        query.order_by(col(EvidenceFile.round), col(EvidenceFile.created_at), col(EvidenceFile.id))
    ).all()


def evidence_file(
    session: Session, deliverable: Deliverable, file_id: uuid.UUID
) -> EvidenceFile | None:
    return session.exec(
        select(EvidenceFile).where(
            EvidenceFile.brand_id == deliverable.brand_id,
            EvidenceFile.deliverable_id == deliverable.id,
            EvidenceFile.id == file_id,
        )
    ).first()


def due_between(
    session: Session, engagement: Engagement, start: date, end: date
) -> Sequence[Deliverable]:
    """Deliverables due within [start, end] (inclusive), for the delivery measures."""
    return session.exec(
        select(Deliverable).where(
            Deliverable.brand_id == engagement.brand_id,
            Deliverable.engagement_id == engagement.id,
            col(Deliverable.due_on) >= start,
            col(Deliverable.due_on) <= end,
        )
    ).all()


def engagements_of_brand(session: Session, brand_id: uuid.UUID) -> Sequence[Engagement]:
    """For the periodic planner, working inside one brand's tenant scope."""
    return session.exec(select(Engagement).where(Engagement.brand_id == brand_id)).all()
