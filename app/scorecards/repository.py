"""Queries behind scorecards and the comparison, always for engagements already loaded.

Callers pass engagements that came through the scoped layer (``engagements.service``),
so every query here is keyed by their ``brand_id`` and ``id``: the tenant key first.
Result figures come from the daily rollups; only values that cannot be added up
(reach, NPS, reported rates) are read from the current result rows, through the
``(brand_id, engagement_id, metric, period_start)`` index.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.content.models import Decision, Post, PostVersion
from app.deliverables.models import Deliverable
from app.engagements.models import Engagement, Fee, Kpi
from app.escalations.models import Escalation
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
    brand_id: uuid.UUID | Collection[uuid.UUID],
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
    engagement, metric and period bucket; the benchmark times it raw. An agency's
    scorecards pass the brands of all its clients at once.
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
            _brand_is(MetricRollup, [brand_id] if isinstance(brand_id, uuid.UUID) else brand_id),
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


class SnapshotRow(NamedTuple):
    """What the scorecard reads of a result row whose value is never added up."""

    engagement_id: uuid.UUID
    metric: str
    channel: str
    post_id: uuid.UUID | None
    post_ref: str
    period_start: date
    period_end: date
    value: Decimal


def snapshot_rows(
    session: Session,
    engagement: Engagement,
    metrics: Sequence[str],
    start: date,
    end: date,
    channel: str | None = None,
) -> list[SnapshotRow]:
    """Current, undisputed rows of values that are never added up, overlapping the period."""
    return snapshot_rows_of(session, [engagement], metrics, start, end, channel)


def snapshot_rows_of(
    session: Session,
    engagements: Sequence[Engagement],
    metrics: Sequence[str],
    start: date,
    end: date,
    channel: str | None = None,
) -> list[SnapshotRow]:
    """``snapshot_rows`` of several engagements in one statement (columns only, no entities)."""
    if not engagements:
        return []
    query = sa.select(
        col(ResultRow.engagement_id),
        col(ResultRow.metric),
        col(ResultRow.channel),
        col(ResultRow.post_id),
        col(ResultRow.post_ref),
        col(ResultRow.period_start),
        col(ResultRow.period_end),
        col(ResultRow.value),
    ).where(
        *_keyed(ResultRow, engagements),
        col(ResultRow.metric).in_(list(metrics)),
        col(ResultRow.superseded_at).is_(None),
        col(ResultRow.status) != ResultStatus.disputed,
        col(ResultRow.period_start) <= end,
        col(ResultRow.period_end) >= start,
    )
    if channel is not None:
        query = query.where(col(ResultRow.channel) == channel)
    return [SnapshotRow(*row) for row in session.execute(query)]


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


def _brand_is(model: Any, brand_ids: Collection[uuid.UUID]) -> Any:
    """The tenant key: one brand (the usual case, an equality), or the clients of an agency."""
    ids = sorted(set(brand_ids), key=str)
    return col(model.brand_id) == ids[0] if len(ids) == 1 else col(model.brand_id).in_(ids)


def _keyed(model: Any, engagements: Sequence[Engagement]) -> tuple[Any, Any]:
    """The tenant key first, then the engagements: the shape every grouped query here takes."""
    return (
        _brand_is(model, {e.brand_id for e in engagements}),
        col(model.engagement_id).in_([e.id for e in engagements]),
    )


class PostReviewed(NamedTuple):
    """What the scorecard needs of a post with a decision in the period."""

    id: uuid.UUID
    engagement_id: uuid.UUID
    rounds: int
    submitted_at: datetime | None


class DecisionMade(NamedTuple):
    """What the scorecard needs of a decision."""

    post_id: uuid.UUID
    round: int
    decision: str
    version_number: int
    created_at: datetime


class VersionSaved(NamedTuple):
    """When a post's version was saved: all the scorecard needs of a version."""

    post_id: uuid.UUID
    number: int
    created_at: datetime


def _reviewed(
    engagements: Sequence[Engagement],
    start: date,
    end: date,
    posts: Sequence[Any],
    decisions: Sequence[Any],
) -> tuple[Any, Any, Any]:
    """The posts with a decision in the period and all their decisions, as queries.

    The posts are picked by a subquery (not a list of ids sent back and forth), also
    returned for the versions; decisions come in the order they were made.
    """
    brand_ids = {e.brand_id for e in engagements}
    decided = (
        select(Decision.post_id)
        .where(
            *_keyed(Decision, engagements),
            col(Decision.created_at) >= day_start(start),
            col(Decision.created_at) < day_after(end),
        )
        .scalar_subquery()
    )
    return (
        sa.select(*posts).where(_brand_is(Post, brand_ids), col(Post.id).in_(decided)),
        sa.select(*decisions)
        .where(_brand_is(Decision, brand_ids), col(Decision.post_id).in_(decided))
        .order_by(col(Decision.created_at)),
        decided,
    )


def posts_and_decisions(
    session: Session, engagement: Engagement, start: date, end: date
) -> tuple[Sequence[Post], Sequence[Decision]]:
    """Posts with a decision in the period and all their decisions, for the drill-down."""
    posts, decisions, _ = _reviewed([engagement], start, end, [Post], [Decision])
    return session.scalars(posts).all(), session.scalars(decisions).all()


def review_records_of(
    session: Session, engagements: Sequence[Engagement], start: date, end: date
) -> tuple[list[PostReviewed], list[DecisionMade], list[VersionSaved]]:
    """What the review measures count, for several engagements: three statements, however many.

    Columns, not entities: the counts need a few fields of each row, and loading
    whole posts and decisions into the session was most of the scorecard's Python.
    """
    if not engagements:
        return [], [], []
    posts_query, decisions_query, decided = _reviewed(
        engagements,
        start,
        end,
        [col(Post.id), col(Post.engagement_id), col(Post.rounds), col(Post.submitted_at)],
        [
            col(Decision.post_id),
            col(Decision.round),
            col(Decision.decision),
            col(Decision.version_number),
            col(Decision.created_at),
        ],
    )
    posts = [PostReviewed(*row) for row in session.execute(posts_query)]
    if not posts:
        return [], [], []
    decisions = [DecisionMade(*row) for row in session.execute(decisions_query)]
    versions = session.execute(
        sa.select(col(PostVersion.post_id), col(PostVersion.number), col(PostVersion.created_at))
        .where(
            _brand_is(PostVersion, {e.brand_id for e in engagements}),
            col(PostVersion.post_id).in_(decided),
        )
        .order_by(col(PostVersion.created_at))
    )
    return posts, decisions, [VersionSaved(*row) for row in versions]


def deliverables_due(
    session: Session, engagements: Sequence[Engagement], start: date, end: date
) -> Sequence[Deliverable]:
    """Deliverables of several engagements due within [start, end] (inclusive), at once."""
    if not engagements:
        return []
    return session.exec(
        select(Deliverable).where(
            *_keyed(Deliverable, engagements),
            col(Deliverable.due_on) >= start,
            col(Deliverable.due_on) <= end,
        )
    ).all()


def escalations_touching(
    session: Session, engagements: Sequence[Engagement], start: datetime, end: datetime
) -> Sequence[Escalation]:
    """Escalations of several engagements opened or resolved in [start, end), at once.

    The escalation measures pick their own population out of these: opened in the
    period (the SLA), resolved in it (attributed revenue).
    """
    if not engagements:
        return []
    return session.exec(
        select(Escalation).where(
            *_keyed(Escalation, engagements),
            sa.or_(
                sa.and_(col(Escalation.opened_at) >= start, col(Escalation.opened_at) < end),
                sa.and_(col(Escalation.resolved_at) >= start, col(Escalation.resolved_at) < end),
            ),
        )
    ).all()


def fees_of(session: Session, engagement: Engagement) -> Sequence[Fee]:
    return fees_by_engagement(session, [engagement]).get(engagement.id, [])


def fees_by_engagement(
    session: Session, engagements: Sequence[Engagement]
) -> dict[uuid.UUID, list[Fee]]:
    found: dict[uuid.UUID, list[Fee]] = defaultdict(list)
    if engagements:
        for fee in session.exec(select(Fee).where(*_keyed(Fee, engagements))):
            found[fee.engagement_id].append(fee)
    return found


def kpis_of(session: Session, engagement: Engagement) -> Sequence[Kpi]:
    return kpis_by_engagement(session, [engagement]).get(engagement.id, [])


def kpis_by_engagement(
    session: Session, engagements: Sequence[Engagement]
) -> dict[uuid.UUID, list[Kpi]]:
    """Each engagement's KPIs, in the order they were set."""
    found: dict[uuid.UUID, list[Kpi]] = defaultdict(list)
    if engagements:
        query = select(Kpi).where(*_keyed(Kpi, engagements)).order_by(col(Kpi.created_at))
        for kpi in session.exec(query):
            found[kpi.engagement_id].append(kpi)
    return found


def weights_of(session: Session, engagement: Engagement) -> ScorecardWeights | None:
    return weights_by_engagement(session, [engagement]).get(engagement.id)


def weights_by_engagement(
    session: Session, engagements: Sequence[Engagement]
) -> dict[uuid.UUID, ScorecardWeights]:
    """The brand lead's weights, for the engagements that have their own (one row each)."""
    if not engagements:
        return {}
    query = select(ScorecardWeights).where(*_keyed(ScorecardWeights, engagements))
    return {row.engagement_id: row for row in session.exec(query)}


def brand_engagements(
    session: Session, brand_id: uuid.UUID | Collection[uuid.UUID]
) -> Sequence[Engagement]:
    """Every engagement of a brand the caller leads, or of an agency's clients (checked by the
    caller: only pooled counts of other agencies' engagements may leave the service)."""
    brand_ids = [brand_id] if isinstance(brand_id, uuid.UUID) else brand_id
    return session.exec(
        select(Engagement)
        .where(_brand_is(Engagement, brand_ids))
        .order_by(col(Engagement.start_date).desc(), col(Engagement.name))
    ).all()


def agency_engagements(session: Session, agency_id: uuid.UUID) -> Sequence[Engagement]:
    """Every engagement the agency works in (its own clients only: keyed by the agency)."""
    return session.exec(
        select(Engagement)
        .where(Engagement.agency_id == agency_id)
        .order_by(col(Engagement.start_date).desc(), col(Engagement.name))
    ).all()
