"""Queries about engagements, always scoped to the organizations the caller may see.

An engagement is shared by exactly its brand and its agency: it is visible when
one of the caller's accessible organizations is either.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, func, or_, select

from app.engagements.models import (
    Attestation,
    Engagement,
    EngagementEvent,
    Kpi,
    ScopeChange,
    StageChange,
)
from app.tenancy.models import Organization
from app.tenancy.repository import AccessibleOrganizationID

Row = TypeVar("Row", bound=SQLModel)


def _visible(accessible: frozenset[AccessibleOrganizationID]) -> Any:
    ids = list(accessible)
    return or_(col(Engagement.brand_id).in_(ids), col(Engagement.agency_id).in_(ids))


def get_engagement(
    session: Session, engagement_id: uuid.UUID, accessible: frozenset[AccessibleOrganizationID]
) -> Engagement | None:
    if not accessible:
        return None
    return session.exec(
        select(Engagement).where(Engagement.id == engagement_id, _visible(accessible))
    ).first()


def list_engagements(
    session: Session,
    accessible: frozenset[AccessibleOrganizationID],
    *,
    limit: int,
    offset: int,
) -> tuple[Sequence[Engagement], int]:
    if not accessible:
        return [], 0
    total = session.exec(
        select(func.count()).select_from(Engagement).where(_visible(accessible))
    ).one()
    rows = session.exec(
        select(Engagement)
        .where(_visible(accessible))
        .order_by(col(Engagement.start_date).desc(), col(Engagement.name))
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def organizations_by_id(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, Organization]:
    """Names of the organizations on engagements the caller already sees."""
    if not ids:
        return {}
    rows = session.exec(select(Organization).where(col(Organization.id).in_(list(ids)))).all()
    return {org.id: org for org in rows}


def get_agency_by_slug(session: Session, slug: str) -> Organization | None:
    """The agency a brand names when it opens an engagement (agencies are listed by name)."""
    return session.exec(select(Organization).where(Organization.slug == slug)).first()


def rows_of(session: Session, model: type[Row], engagement: Engagement) -> Sequence[Row]:
    """Every row of one engagement-scoped table for this (already scoped) engagement."""
    table: Any = model
    order = next(
        getattr(table, name)
        for name in ("created_at", "at", "attested_at", "updated_at", "id")
        if name in model.model_fields
    )
    return session.exec(
        select(model)
        .where(table.brand_id == engagement.brand_id, table.engagement_id == engagement.id)
        .order_by(order)
    ).all()


def get_row(
    session: Session, model: type[Row], engagement: Engagement, row_id: uuid.UUID
) -> Row | None:
    table: Any = model
    return session.exec(
        select(model).where(
            table.brand_id == engagement.brand_id,
            table.engagement_id == engagement.id,
            table.id == row_id,
        )
    ).first()


def live_attestations(session: Session, engagement: Engagement) -> Sequence[Attestation]:
    return session.exec(
        select(Attestation)
        .where(
            Attestation.brand_id == engagement.brand_id,
            Attestation.engagement_id == engagement.id,
            col(Attestation.withdrawn_at).is_(None),
        )
        .order_by(col(Attestation.attested_at))
    ).all()


def timeline(
    session: Session, engagement: Engagement
) -> tuple[Sequence[StageChange], Sequence[EngagementEvent], Sequence[ScopeChange]]:
    def newest_first(model: Any) -> Any:
        return session.exec(
            select(model)
            .where(model.brand_id == engagement.brand_id, model.engagement_id == engagement.id)
            .order_by(col(model.at).desc())
        ).all()

    return newest_first(StageChange), newest_first(EngagementEvent), newest_first(ScopeChange)


def last_stage_change(session: Session, engagement: Engagement) -> StageChange | None:
    return session.exec(
        select(StageChange)
        .where(
            StageChange.brand_id == engagement.brand_id,
            StageChange.engagement_id == engagement.id,
        )
        .order_by(col(StageChange.at).desc())
    ).first()


def kpi_by_id(
    session: Session, kpi_id: uuid.UUID, accessible: frozenset[AccessibleOrganizationID]
) -> tuple[Kpi, Engagement] | None:
    if not accessible:
        return None
    row = session.exec(
        select(Kpi, Engagement)
        .join(
            Engagement,
            sa.and_(
                col(Engagement.id) == Kpi.engagement_id, col(Engagement.brand_id) == Kpi.brand_id
            ),
        )
        .where(Kpi.id == kpi_id, _visible(accessible))
    ).first()
    return (row[0], row[1]) if row else None


def bump_version(
    session: Session, engagement_id: uuid.UUID, expected_version: int, **values: Any
) -> bool:
    """Conditional update: applies only if nobody changed the engagement since."""
    result = session.execute(
        sa.update(Engagement)
        .where(col(Engagement.id) == engagement_id, col(Engagement.version) == expected_version)
        .values(version=Engagement.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def bump_kpi_version(
    session: Session, kpi_id: uuid.UUID, expected_version: int, **values: Any
) -> bool:
    result = session.execute(
        sa.update(Kpi)
        .where(col(Kpi.id) == kpi_id, col(Kpi.version) == expected_version)
        .values(version=Kpi.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
