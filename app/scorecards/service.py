"""Rules of the scorecard pages and API: who may see what, periods, weights, assembling.

- An engagement's scorecard: anyone who sees the engagement (both sides see the
  same numbers). Weights: the brand's owners and leads (``engagement.edit``).
- The comparison of a brand's agencies: the brand's owners and leads
  (``agency.compare``); only rates and unit costs are compared, never totals.
- An agency's scorecards across its clients: the agency's own members; each row
  is one of its own engagements, never a rival's.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from app.audit import service as audit
from app.db import utcnow
from app.engagements.models import Engagement
from app.engagements.service import EngagementAccess
from app.errors import N_, FieldError, Forbidden, InvalidInput, PreconditionFailed
from app.results.metrics import BY_KEY, Funnel, Unit
from app.scorecards import engine, repository
from app.scorecards import scorecard as sc
from app.scorecards.models import ScorecardWeights
from app.scorecards.repository import GRAINS, Totals
from app.tenancy import service as tenancy
from app.tenancy.models import OrgKind
from app.tenancy.service import Actor, OrgAccess

DEFAULT_DAYS = 90
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    grain: str = "month"
    channel: str | None = None
    stage: str | None = None
    is_default: bool = False

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _parse_day(value: str | None, name: str, errors: list[FieldError]) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors.append(FieldError(name, N_("Give a date as YYYY-MM-DD.")))
        return None


def parse_period(
    start: str | None,
    end: str | None,
    *,
    grain: str | None = None,
    channel: str | None = None,
    stage: str | None = None,
    today: date | None = None,
) -> Period:
    """The period asked for, or the last quarter (90 days to today); 422 with field errors."""
    today = today or utcnow().date()
    errors: list[FieldError] = []
    first = _parse_day(start, "from", errors)
    last = _parse_day(end, "to", errors)
    if grain not in (None, "") and grain not in GRAINS:
        errors.append(FieldError("grain", N_("Choose day, week, month or quarter.")))
    if stage not in (None, "") and stage not in {f.value for f in Funnel}:
        errors.append(
            FieldError(
                "stage", N_("Choose awareness, consideration, decision, adoption or advocacy.")
            )
        )
    if not errors:
        last = last or today
        first = first or (last - timedelta(days=DEFAULT_DAYS - 1))
        if first > last:
            errors.append(FieldError("from", N_("The start must be on or before the end.")))
        elif (last - first).days + 1 > MAX_DAYS:
            errors.append(FieldError("from", N_("Choose a period of at most three years.")))
    if errors:
        raise InvalidInput(field_errors=errors)
    assert first is not None and last is not None
    return Period(
        first,
        last,
        grain or "month",
        channel or None,
        stage or None,
        is_default=not start and not end,
    )


def parse_metric(metric: str | None) -> str:
    if not metric or (metric not in BY_KEY and metric not in sc.INPUTS):
        raise InvalidInput(
            field_errors=[FieldError("metric", N_("This metric is not in the dictionary."))]
        )
    return metric


# --- weights ---------------------------------------------------------------------------------


def weights_for(
    session: Session, engagement: Engagement
) -> tuple[dict[str, int], ScorecardWeights | None]:
    row = repository.weights_of(session, engagement)
    if row is None:
        return engine.default_weights(engagement.stage), None
    return {"results": row.results, "delivery": row.delivery, "quality": row.quality}, row


def set_weights(
    session: Session,
    granted: EngagementAccess,
    weights: dict[str, int],
    *,
    expected_version: int | None,
) -> ScorecardWeights:
    """The brand lead's weights for this engagement; validated, conditional, audited."""
    granted.require("engagement.edit")
    problem = engine.weights_problem(weights)
    if problem is not None:
        raise InvalidInput(field_errors=[FieldError("weights", problem)])
    engagement = granted.engagement
    before, row = weights_for(session, engagement)
    if row is None:
        row = ScorecardWeights(
            brand_id=engagement.brand_id,
            engagement_id=engagement.id,
            results=weights["results"],
            delivery=weights["delivery"],
            quality=weights["quality"],
        )
    else:
        if expected_version is not None and expected_version != row.version:
            raise PreconditionFailed()
        row.results, row.delivery, row.quality = (
            weights["results"],
            weights["delivery"],
            weights["quality"],
        )
        row.version += 1
    row.updated_by_id = granted.actor.user.id
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=granted.actor.user.id,
        actor=f"{granted.actor.user.name} <{granted.actor.user.email}>",
        kind="scorecard_weights_set",
        subject_type="scorecard_weights",
        subject_id=row.id,
        data={"before": before, "after": weights},
    )
    return row


def reset_weights(session: Session, granted: EngagementAccess) -> None:
    granted.require("engagement.edit")
    engagement = granted.engagement
    before, row = weights_for(session, engagement)
    if row is None:
        return
    session.delete(row)
    session.flush()
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=granted.actor.user.id,
        actor=f"{granted.actor.user.name} <{granted.actor.user.email}>",
        kind="scorecard_weights_reset",
        subject_type="scorecard_weights",
        subject_id=row.id,
        data={"before": before, "after": engine.default_weights(engagement.stage)},
    )


# --- assembling ------------------------------------------------------------------------------


def _sum_series(
    series: Sequence[tuple[uuid.UUID, str, date, Totals]],
) -> tuple[dict[uuid.UUID, dict[str, Totals]], dict[uuid.UUID, Totals]]:
    """Per engagement: totals per metric, and all rows together (for measurement honesty)."""
    per_metric: dict[uuid.UUID, dict[str, Totals]] = defaultdict(dict)
    honesty: dict[uuid.UUID, Totals] = {}
    for engagement_id, metric, _, totals in series:
        old = per_metric[engagement_id].get(metric)
        per_metric[engagement_id][metric] = _add(old, totals)
        honesty[engagement_id] = _add(honesty.get(engagement_id), totals)
    return per_metric, honesty


def _add(old: Totals | None, new: Totals) -> Totals:
    if old is None:
        return new
    return Totals(
        old.total + new.total,
        old.rows + new.rows,
        old.backed + new.backed,
        old.disputed + new.disputed,
    )


def _snapshots(
    session: Session, engagement: Engagement, period: Period
) -> tuple[dict[str, engine.Snapshot | None], set[str]]:
    """The period's value of each metric that is never added up, and those given per channel only.

    Without a channel chosen only engagement-wide rows count: two channels' reach
    (or rates) cannot be added, so a metric reported per channel alone has no
    engagement-wide number, and says so.
    """
    rows = repository.snapshot_rows(
        session,
        engagement,
        sorted(sc.SNAPSHOT_METRICS | sc.DERIVED_METRICS),
        period.start,
        period.end,
        period.channel,
    )
    wanted = period.channel or ""
    by_metric: dict[str, list[engine.Snapshot]] = defaultdict(list)
    per_channel: set[str] = set()
    for row in rows:
        if row.metric in sc.DERIVED_METRICS and (row.post_id is not None or row.post_ref):
            continue
        if row.channel != wanted:
            per_channel.add(row.metric)
            continue
        by_metric[row.metric].append(engine.Snapshot(row.period_start, row.period_end, row.value))
    found: dict[str, engine.Snapshot | None] = {
        key: engine.best_snapshot(rows_of, period.start, period.end)
        for key, rows_of in by_metric.items()
    }
    return found, per_channel - {key for key, snap in found.items() if snap is not None}


def _costs(
    session: Session, engagement: Engagement, sums: dict[str, Totals], period: Period
) -> sc.Costs:
    fees = sc.fees_in_period(
        repository.fees_of(session, engagement), engagement, period.start, period.end
    )

    def money(name: str) -> int:
        value = sc._first_known(sums, name)
        return int(value) if value is not None else 0

    return sc.Costs(engagement.currency, fees, money("ad_spend"), money("production_cost"))


@dataclass
class Portfolio:
    """The brand's pooled counts for the period: the shrinkage's prior."""

    counts: dict[uuid.UUID, sc.RawCounts]
    means: dict[str, Decimal | None]
    sums: dict[uuid.UUID, dict[str, Totals]]
    series: list[tuple[uuid.UUID, str, date, Totals]]


def portfolio(
    session: Session, actor: Actor, brand_id: uuid.UUID, period: Period,
    engagements: Sequence[Engagement] | None = None,
) -> Portfolio:  # fmt: skip
    with sc.brand_portfolio_context(session, actor.org_ids, brand_id):
        everyone = list(repository.brand_engagements(session, brand_id))
        counts = sc.counts_for(session, everyone, period.start, period.end)
        series = repository.rollup_series(
            session,
            brand_id,
            [e.id for e in everyone],
            period.start,
            period.end,
            grain=period.grain,
            channel=period.channel,
        )
    sums, honesty = _sum_series(series)
    sc.add_honesty(counts, honesty)
    means = sc.portfolio_means(counts)
    return Portfolio(counts, means, sums, series)


def build_scorecard(
    session: Session, engagement: Engagement, period: Period, pool: Portfolio
) -> sc.Scorecard:
    raw = pool.counts.get(engagement.id, sc.RawCounts())
    sums = pool.sums.get(engagement.id, {})
    snapshots, per_channel_only = _snapshots(session, engagement, period)
    costs = _costs(session, engagement, sums, period)
    figures = sc.figures_from(
        sums, snapshots, costs, attributed_revenue_minor=raw.escalation_revenue_minor
    )
    for key in per_channel_only:
        if figures.get(key, engine.missing()).value is None:
            figures[key] = engine.missing(sc.PER_CHANNEL_ONLY)
    kpis = sc.kpi_views(
        repository.kpis_of(session, engagement),
        figures,
        engagement.currency,
        period.start,
        period.end,
    )
    measures = sc.measures_of(raw, pool.means, kpis)
    weights, custom = weights_for(session, engagement)
    parts, combined = sc.score(measures, weights)
    low_data = any(view.measure.low_data for view in measures if view.measure.points is not None)
    low_data = low_data or combined.covered < Decimal("0.5")
    honesty = Totals(Decimal(0), 0, 0, 0)
    for totals in sums.values():
        honesty = _add(honesty, totals)
    business = sum(1 for k in kpis if k.metric is not None and k.metric.is_business_measure)
    has_any = bool(honesty.rows) or any(v.trials for v in measures) or bool(raw.approval_wait_hours)
    return sc.Scorecard(
        engagement=engagement,
        start=period.start,
        end=period.end,
        channel=period.channel,
        weights=weights,
        weights_custom=custom is not None,
        measures=measures,
        parts=parts,
        combined=combined,
        low_data=low_data,
        kpis=kpis,
        figures=figures,
        costs=costs,
        honesty=honesty,
        approval_wait_median_hours=engine.median(raw.approval_wait_hours),
        approval_waits=len(raw.approval_wait_hours),
        returned_deliverables=raw.returned_deliverables,
        business_kpi_share=engine.ratio(business, len(kpis), denominator_name=N_("KPIs")),
        has_any_data=has_any,
    )


def engagement_scorecard(
    session: Session, granted: EngagementAccess, period: Period
) -> sc.Scorecard:
    engagement = granted.engagement
    pool = portfolio(session, granted.actor, engagement.brand_id, period)
    return build_scorecard(session, engagement, period, pool)


# --- series -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint:
    start: date
    figure: engine.Figure
    rows: int


def metric_series(
    session: Session, granted: EngagementAccess, metric: str, period: Period
) -> list[SeriesPoint]:
    """One metric per day/week/month/quarter; snapshot metrics come from their rows, not sums."""
    engagement = granted.engagement
    buckets = bucket_starts(period.start, period.end, period.grain)
    if metric in sc.SNAPSHOT_METRICS:
        rows = repository.snapshot_rows(
            session, engagement, [metric], period.start, period.end, period.channel or ""
        )
        snaps = [engine.Snapshot(r.period_start, r.period_end, r.value) for r in rows]
        points = []
        for first, last in buckets:
            best = engine.best_snapshot(snaps, max(first, period.start), last)
            points.append(
                SeriesPoint(
                    first, engine.Figure(best.value) if best else engine.missing(), 1 if best else 0
                )
            )
        return points
    series = repository.rollup_series(
        session,
        engagement.brand_id,
        [engagement.id],
        period.start,
        period.end,
        grain=period.grain,
        channel=period.channel,
    )
    per_bucket: dict[date, dict[str, Totals]] = defaultdict(dict)
    for _, key, when, totals in series:
        per_bucket[when][key] = _add(per_bucket[when].get(key), totals)
    fees = repository.fees_of(session, engagement)
    points = []
    for first, last in buckets:
        sums = per_bucket.get(first, {})
        costs = sc.Costs(
            engagement.currency,
            sc.fees_in_period(fees, engagement, max(first, period.start), last),
            int(sc._first_known(sums, "ad_spend") or 0),
            int(sc._first_known(sums, "production_cost") or 0),
        )
        figures = sc.figures_from(sums, {}, costs)
        figure = figures.get(metric) or (
            engine.Figure(sums[metric].total) if metric in sums else engine.missing()
        )
        points.append(SeriesPoint(first, figure, sum(t.rows for t in sums.values())))
    return points


def _first_of(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day


def _next_of(day: date, grain: str) -> date:
    if grain == "day":
        return day + timedelta(days=1)
    if grain == "week":
        return day + timedelta(days=7)
    month = day.month - 1 + (1 if grain == "month" else 3)
    return date(day.year + month // 12, month % 12 + 1, 1)


def bucket_starts(start: date, end: date, grain: str) -> list[tuple[date, date]]:
    """The buckets a grain cuts [start, end] into: (the grain's first day, last day in range).

    The first day is the bucket's key as the database groups it (it may precede
    ``start``); callers clip it with ``max(first, start)`` where days matter.
    """
    out: list[tuple[date, date]] = []
    day = _first_of(start, grain)
    while day <= end:
        following = _next_of(day, grain)
        out.append((day, min(following - timedelta(days=1), end)))
        day = following
    return out


# --- comparison --------------------------------------------------------------------------------

COMPARED_METRICS = (
    "cpm",
    "cpa",
    "ctr",
    "engagement_rate_impressions",
    "conversion_rate",
    "roi",
    "roas",
)


@dataclass
class ComparedEngagement:
    engagement: Engagement
    agency_name: str
    agency_slug: str
    card: sc.Scorecard
    cost_per_deliverable: engine.Figure
    kpi_attainment: engine.Figure
    trend: list[tuple[date, engine.Figure]]  # monthly KPI attainment


@dataclass
class Comparison:
    organization: Any
    period: Period
    rows: list[ComparedEngagement]
    months: list[date]


def compare_brand(session: Session, actor: Actor, brand_slug: str, period: Period) -> Comparison:
    """The brand's agencies side by side (one column per engagement, each in its own currency)."""
    access: OrgAccess = tenancy.org_access(session, actor, brand_slug)
    if access.organization.kind != OrgKind.brand:
        # Visible, but not a brand: say what this page is for rather than pretend it is gone.
        raise Forbidden(
            N_("Only a brand compares its agencies; an agency sees its own scorecards.")
        )
    access.require("agency.compare")
    brand_id = access.organization.id
    pool = portfolio(session, actor, brand_id, period)
    engagements = [
        e for e in repository.brand_engagements(session, brand_id)
        if e.start_date <= period.end and (e.end_date is None or e.end_date >= period.start)
        and e.status not in ("proposed", "declined")
    ]  # fmt: skip
    return _compared(session, access.organization, engagements, period, pool)


def _compared(
    session: Session, organization: Any, engagements: Sequence[Engagement], period: Period,
    pool: Portfolio,
) -> Comparison:  # fmt: skip
    names = repository_names(
        session, {e.agency_id for e in engagements} | {e.brand_id for e in engagements}
    )
    months = [first for first, _ in bucket_starts(period.start, period.end, "month")]
    kpis_by = defaultdict(list)
    for kpi in (
        repository.kpis_of_many(session, organization.id, [e.id for e in engagements])
        if organization.kind == OrgKind.brand
        else []
    ):
        kpis_by[kpi.engagement_id].append(kpi)
    rows = []
    for engagement in engagements:
        card = build_scorecard(session, engagement, period, pool)
        if period.stage:
            card.kpis = [
                k
                for k in card.kpis
                if k.metric is not None and Funnel(period.stage) in k.metric.stages
            ]
        attained = [k.attainment.value for k in card.kpis if k.attainment.value is not None]
        attainment = (
            engine.Figure(
                sum(attained, Decimal(0)) / len(attained),
                Decimal(len(attained)),
                Decimal(len(card.kpis)),
            )
            if attained
            else engine.missing(N_("No KPI with a target and data in this period."))
        )
        delivered = card.measures_of("delivery")[0].trials or 0
        per_deliverable = engine.ratio(
            card.costs.total_minor, delivered, denominator_name=N_("deliverables due")
        )
        rows.append(
            ComparedEngagement(
                engagement,
                names.get(engagement.agency_id, ("", ""))[0],
                names.get(engagement.agency_id, ("", ""))[1],
                card,
                per_deliverable,
                attainment,
                _attainment_trend(session, engagement, card, pool, months, period),
            )
        )
    return Comparison(organization, period, rows, months)


def _attainment_trend(
    session: Session, engagement: Engagement, card: sc.Scorecard, pool: Portfolio,
    months: list[date], period: Period,
) -> list[tuple[date, engine.Figure]]:  # fmt: skip
    """KPI attainment per month, from the same rollups (monthly targets pro rata)."""
    by_month: dict[date, dict[str, Totals]] = defaultdict(dict)
    for engagement_id, metric, when, totals in pool.series:
        if engagement_id == engagement.id:
            month = when.replace(day=1)
            by_month[month][metric] = _add(by_month[month].get(metric), totals)
    kpis = [view.kpi for view in card.kpis]
    trend = []
    fees = repository.fees_of(session, engagement)
    for month in months:
        last = min(_next_of(month, "month") - timedelta(days=1), period.end)
        first = max(month, period.start)
        sums = by_month.get(month, {})
        costs = sc.Costs(
            engagement.currency,
            sc.fees_in_period(fees, engagement, first, last),
            int(sc._first_known(sums, "ad_spend") or 0),
            int(sc._first_known(sums, "production_cost") or 0),
        )
        figures = sc.figures_from(sums, {}, costs)
        views = sc.kpi_views(kpis, figures, engagement.currency, first, last)
        values = [v.attainment.value for v in views if v.attainment.value is not None]
        trend.append(
            (
                month,
                engine.Figure(sum(values, Decimal(0)) / len(values))
                if values
                else engine.missing(),
            )
        )
    return trend


def repository_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    from app.engagements import repository as engagements_repository

    return {
        org_id: (org.name, org.slug)
        for org_id, org in engagements_repository.organizations_by_id(session, ids).items()
    }


def agency_scorecards(
    session: Session, actor: Actor, agency_slug: str, period: Period
) -> Comparison:
    """An agency's own scorecards across its clients (each in its client's portfolio)."""
    access: OrgAccess = tenancy.org_access(session, actor, agency_slug)
    if access.organization.kind != OrgKind.agency:
        raise Forbidden(
            N_("These are an agency's scorecards of its clients; a brand compares its agencies.")
        )
    engagements = [
        e for e in repository.agency_engagements(session, access.organization.id)
        if e.start_date <= period.end and (e.end_date is None or e.end_date >= period.start)
        and e.status not in ("proposed", "declined")
    ]  # fmt: skip
    rows: list[ComparedEngagement] = []
    months = [first for first, _ in bucket_starts(period.start, period.end, "month")]
    names = repository_names(session, {e.brand_id for e in engagements})
    for brand_id in sorted({e.brand_id for e in engagements}, key=str):
        pool = portfolio(session, actor, brand_id, period)
        own = [e for e in engagements if e.brand_id == brand_id]
        part = _compared(session, access.organization, own, period, pool)
        for row in part.rows:
            # The client, not the agency, names each row here.
            row.agency_name, row.agency_slug = names.get(brand_id, ("", ""))
        rows.extend(part.rows)
    return Comparison(access.organization, period, rows, months)


def unit_of(metric: str) -> Unit | None:
    found = BY_KEY.get(metric)
    return found.unit if found else None
