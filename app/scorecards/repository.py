"""Queries behind scorecards and the comparison, always for engagements already loaded.

Callers pass engagements that came through the scoped layer (``engagements.service``),
so every query here is keyed by their ``brand_id`` and ``id``: the tenant key first.
Result figures come from the daily rollups; only values that cannot be added up
(reach, NPS, reported rates) are read from the current result rows, through the
``(brand_id, engagement_id, metric, period_start)`` index.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.content.models import Decision, Post, PostVersion
from app.engagements.models import Engagement, Fee, Kpi
from app.results.models import ResultRow, ResultStatus
from app.scorecards.models import MetricRollup, ScorecardWeights

GRAINS = ("day", "week", "month", "quarter")


@dataclass(frozen=True)
class Totals:
    total: Decimal
    rows: int
    backed: int
    disputed: int

    @property
    def counted(self) -> int:
        """Rows that count: disputed rows stay out of every figure until settled."""
        return self.rows - self.disputed


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_after(day: date) -> datetime:
    return day_start(day + timedelta(days=1))


def bucket(dialect: str, grain: str, column: Any) -> Any:
    """The first day of the day/week/month/quarter a date falls in, as SQL for the dialect."""
    if grain == "day":
        return column
    if dialect == "postgresql":
        return sa.cast(func.date_trunc(grain, column), sa.Date)
    if grain == "week":  # ISO weeks start on Monday
        return func.date(column, "weekday 0", "-6 days")
    if grain == "month":
        return func.strftime("%Y-%m-01", column)
    month = sa.cast(func.strftime("%m", column), sa.Integer)
    first_month = ((month - 1) / 3) * 3 + 1
    return func.printf("%s-%02d-01", func.strftime("%Y", column), first_month)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def rollup_series(
    session: Session,
    brand_id: uuid.UUID,
    engagement_ids: Sequence[uuid.UUID],
    start: date,
    end: date,
    *,
    grain: str = "month",
    channel: str | None = None,
    metrics: Sequence[str] | None = None,
) -> list[tuple[uuid.UUID, str, date, Totals]]:
    """THE comparison query: rollups of some engagements of one brand, per metric and bucket.

    One statement over ``metric_rollup`` (brand first in its keys), grouped by
    engagement, metric and period bucket; the benchmark times it raw.
    """
    if not engagement_ids:
        return []
    dialect = session.get_bind().dialect.name
    period = bucket(dialect, grain, col(MetricRollup.day)).label("period")
    query = (
        sa.select(
            col(MetricRollup.engagement_id),
            col(MetricRollup.metric),
            period,
            func.sum(MetricRollup.total),
            func.sum(MetricRollup.row_count),
            func.sum(MetricRollup.backed_rows),
            func.sum(MetricRollup.disputed_rows),
        )
        .where(
            col(MetricRollup.brand_id) == brand_id,
            col(MetricRollup.engagement_id).in_(list(engagement_ids)),
            col(MetricRollup.day) >= start,
            col(MetricRollup.day) <= end,
        )
        .group_by(col(MetricRollup.engagement_id), col(MetricRollup.metric), period)
    )
    if channel:
        query = query.where(col(MetricRollup.channel) == channel)
    if metrics is not None:
        query = query.where(col(MetricRollup.metric).in_(list(metrics)))
    return [
        (
            engagement_id,
            metric,
            _as_date(when),
            Totals(Decimal(total or 0), int(rows or 0), int(backed or 0), int(disputed or 0)),
        )
        for engagement_id, metric, when, total, rows, backed, disputed in session.execute(
            query
        ).all()
    ]


def snapshot_rows(
    session: Session,
    engagement: Engagement,
    metrics: Sequence[str],
    start: date,
    end: date,
    channel: str | None = None,
) -> Sequence[ResultRow]:
    """Current, undisputed rows of values that are never added up, overlapping the period."""
    query = select(ResultRow).where(
        ResultRow.brand_id == engagement.brand_id,
        ResultRow.engagement_id == engagement.id,
        col(ResultRow.metric).in_(list(metrics)),
        col(ResultRow.superseded_at).is_(None),
        ResultRow.status != ResultStatus.disputed,
        col(ResultRow.period_start) <= end,
        col(ResultRow.period_end) >= start,
    )
    if channel is not None:
        query = query.where(ResultRow.channel == channel)
    return session.exec(query).all()


def result_rows(
    session: Session,
    engagement: Engagement,
    start: date,
    end: date,
    *,
    metrics: Sequence[str] | None = None,
    channel: str | None = None,
    limit: int = 500,
) -> Sequence[ResultRow]:
    """The current rows behind a figure, for the drill-down page (disputed ones included)."""
    query = select(ResultRow).where(
        ResultRow.brand_id == engagement.brand_id,
        ResultRow.engagement_id == engagement.id,
        col(ResultRow.superseded_at).is_(None),
        col(ResultRow.period_start) >= start,
        col(ResultRow.period_start) <= end,
    )
    if metrics:
        query = query.where(col(ResultRow.metric).in_(list(metrics)))
    if channel:
        query = query.where(ResultRow.channel == channel)
    query = query.order_by(col(ResultRow.period_start), col(ResultRow.metric)).limit(limit)
    return session.exec(query).all()


def posts_and_decisions(
    session: Session, engagement: Engagement, start: date, end: date
) -> tuple[Sequence[Post], Sequence[Decision], Sequence[PostVersion]]:
    """Posts with a decision in the period, all their decisions and versions (three queries)."""
    decided = (
        select(Decision.post_id)
        .where(
            Decision.brand_id == engagement.brand_id,
            Decision.engagement_id == engagement.id,
            col(Decision.created_at) >= day_start(start),
            col(Decision.created_at) < day_after(end),
        )
        .distinct()
    )
    post_ids = list(session.exec(decided).all())
    if not post_ids:
        return [], [], []
    posts = session.exec(
        select(Post).where(Post.brand_id == engagement.brand_id, col(Post.id).in_(post_ids))
    ).all()
    decisions = session.exec(
        select(Decision)
        .where(Decision.brand_id == engagement.brand_id, col(Decision.post_id).in_(post_ids))
        .order_by(col(Decision.created_at))
    ).all()
    versions = session.exec(
        select(PostVersion)
        .where(PostVersion.brand_id == engagement.brand_id, col(PostVersion.post_id).in_(post_ids))
        .order_by(col(PostVersion.created_at))
    ).all()
    return posts, decisions, versions


def fees_of(session: Session, engagement: Engagement) -> Sequence[Fee]:
    return session.exec(
        select(Fee).where(Fee.brand_id == engagement.brand_id, Fee.engagement_id == engagement.id)
    ).all()


def kpis_of(session: Session, engagement: Engagement) -> Sequence[Kpi]:
    return session.exec(
        select(Kpi)
        .where(Kpi.brand_id == engagement.brand_id, Kpi.engagement_id == engagement.id)
        .order_by(col(Kpi.created_at))
    ).all()


def kpis_of_many(session: Session, brand_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> Sequence[Kpi]:
    if not ids:
        return []
    return session.exec(
        select(Kpi).where(Kpi.brand_id == brand_id, col(Kpi.engagement_id).in_(list(ids)))
    ).all()


def weights_of(session: Session, engagement: Engagement) -> ScorecardWeights | None:
    return session.exec(
        select(ScorecardWeights).where(
            ScorecardWeights.brand_id == engagement.brand_id,
            ScorecardWeights.engagement_id == engagement.id,
        )
    ).first()


def brand_engagements(session: Session, brand_id: uuid.UUID) -> Sequence[Engagement]:
    """Every engagement of a brand the caller leads (checked by the caller)."""
    return session.exec(
        select(Engagement)
        .where(Engagement.brand_id == brand_id)
        .order_by(col(Engagement.start_date).desc(), col(Engagement.name))
    ).all()


def agency_engagements(session: Session, agency_id: uuid.UUID) -> Sequence[Engagement]:
    """Every engagement the agency works in (its own clients only: keyed by the agency)."""
    return session.exec(
        select(Engagement)
        .where(Engagement.agency_id == agency_id)
        .order_by(col(Engagement.start_date).desc(), col(Engagement.name))
    ).all()
