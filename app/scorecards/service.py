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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from app.audit import service as audit
from app.db import utcnow
from app.engagements.models import Engagement, Fee, Kpi
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
    return _weights(engagement, repository.weights_of(session, engagement))


def _weights(
    engagement: Engagement, row: ScorecardWeights | None
) -> tuple[dict[str, int], ScorecardWeights | None]:
    """The lead's own weights, or the stage's defaults when none were set."""
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
    rows: Sequence[repository.SnapshotRow], period: Period
) -> tuple[dict[str, engine.Snapshot | None], set[str]]:
    """The period's value of each metric that is never added up, and those given per channel only.

    Without a channel chosen only engagement-wide rows count: two channels' reach
    (or rates) cannot be added, so a metric reported per channel alone has no
    engagement-wide number, and says so.
    """
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
    fees: Sequence[Fee], engagement: Engagement, sums: Mapping[str, Totals], first: date, last: date
) -> sc.Costs:
    """Fees of [first, last] pro rata, plus the ad spend and production the sums hold."""

    def money(name: str) -> int:
        value = sc._first_known(sums, name)
        return int(value) if value is not None else 0

    return sc.Costs(
        engagement.currency,
        sc.fees_in_period(fees, engagement, first, last),
        money("ad_spend"),
        money("production_cost"),
    )


SeriesRow = tuple[str, date, Totals]


@dataclass
class Portfolio:
    """The brand's pooled counts for the period: the shrinkage's prior."""

    engagements: list[Engagement]
    counts: dict[uuid.UUID, sc.RawCounts]
    means: dict[str, Decimal | None]
    sums: dict[uuid.UUID, dict[str, Totals]]
    series: dict[uuid.UUID, list[SeriesRow]]  # each engagement's rollups per bucket


def portfolio(session: Session, actor: Actor, brand_id: uuid.UUID, period: Period) -> Portfolio:
    return portfolios(session, actor, [brand_id], period)[brand_id]


def portfolios(
    session: Session, actor: Actor, brand_ids: Collection[uuid.UUID], period: Period
) -> dict[uuid.UUID, Portfolio]:
    """Each brand's portfolio; several brands (an agency's clients) in the same statements."""
    if not brand_ids:
        return {}
    with sc.brand_portfolio_context(session, actor.org_ids, brand_ids):
        everyone = list(repository.brand_engagements(session, brand_ids))
        counts = sc.counts_for(session, everyone, period.start, period.end)
        series = repository.rollup_series(
            session,
            brand_ids,
            [e.id for e in everyone],
            period.start,
            period.end,
            grain=period.grain,
            channel=period.channel,
        )
    sums, honesty = _sum_series(series)
    sc.add_honesty(counts, honesty)
    series_of: dict[uuid.UUID, list[SeriesRow]] = defaultdict(list)
    for engagement_id, metric, when, totals in series:
        series_of[engagement_id].append((metric, when, totals))
    found = {}
    for brand_id in brand_ids:
        own = [e for e in everyone if e.brand_id == brand_id]
        own_counts = {e.id: counts[e.id] for e in own}
        found[brand_id] = Portfolio(
            own,
            own_counts,
            sc.portfolio_means(own_counts),
            {e.id: sums[e.id] for e in own if e.id in sums},
            {e.id: series_of[e.id] for e in own if e.id in series_of},
        )
    return found


@dataclass
class Records:
    """What the scorecards of some engagements read besides the portfolio, loaded at once."""

    snapshots: dict[uuid.UUID, list[repository.SnapshotRow]]
    fees: dict[uuid.UUID, list[Fee]]
    kpis: dict[uuid.UUID, list[Kpi]]
    weights: dict[uuid.UUID, ScorecardWeights]


def records_of(session: Session, engagements: Sequence[Engagement], period: Period) -> Records:
    """Four statements, however many engagements."""
    snapshots: dict[uuid.UUID, list[repository.SnapshotRow]] = defaultdict(list)
    for row in repository.snapshot_rows_of(
        session,
        engagements,
        sorted(sc.SNAPSHOT_METRICS | sc.DERIVED_METRICS),
        period.start,
        period.end,
        period.channel,
    ):
        snapshots[row.engagement_id].append(row)
    return Records(
        snapshots,
        repository.fees_by_engagement(session, engagements),
        repository.kpis_by_engagement(session, engagements),
        repository.weights_by_engagement(session, engagements),
    )


def build_scorecard(
    session: Session, engagement: Engagement, period: Period, pool: Portfolio
) -> sc.Scorecard:
    return scorecard_of(engagement, period, pool, records_of(session, [engagement], period))


def scorecard_of(
    engagement: Engagement, period: Period, pool: Portfolio, records: Records
) -> sc.Scorecard:
    """One engagement's scorecard from what is already loaded (no statement here)."""
    raw = pool.counts.get(engagement.id, sc.RawCounts())
    sums = pool.sums.get(engagement.id, {})
    snapshots, per_channel_only = _snapshots(records.snapshots.get(engagement.id, []), period)
    costs = _costs(records.fees.get(engagement.id, []), engagement, sums, period.start, period.end)
    figures = sc.figures_from(
        sums, snapshots, costs, attributed_revenue_minor=raw.escalation_revenue_minor
    )
    for key in per_channel_only:
        if figures.get(key, engine.missing()).value is None:
            figures[key] = engine.missing(sc.PER_CHANNEL_ONLY)
    kpis = sc.kpi_views(
        records.kpis.get(engagement.id, []),
        figures,
        engagement.currency,
        period.start,
        period.end,
    )
    measures = sc.measures_of(raw, pool.means, kpis)
    weights, custom = _weights(engagement, records.weights.get(engagement.id))
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
    return metric_series_many(session, granted, [metric], period)[metric]


def metric_series_many(
    session: Session, granted: EngagementAccess, metrics: Sequence[str], period: Period
) -> dict[str, list[SeriesPoint]]:
    """Several metrics' series at once: one rollup read, one snapshot read, one fees read."""
    engagement = granted.engagement
    buckets = bucket_starts(period.start, period.end, period.grain)
    out: dict[str, list[SeriesPoint]] = {}
    snapshot_keys = [m for m in metrics if m in sc.SNAPSHOT_METRICS]
    summed_keys = [m for m in metrics if m not in sc.SNAPSHOT_METRICS]
    if snapshot_keys:
        snaps_of: dict[str, list[engine.Snapshot]] = defaultdict(list)
        for row in repository.snapshot_rows(
            session, engagement, snapshot_keys, period.start, period.end, period.channel or ""
        ):
            snaps_of[row.metric].append(
                engine.Snapshot(row.period_start, row.period_end, row.value)
            )
        for key in snapshot_keys:
            points = []
            for first, last in buckets:
                best = engine.best_snapshot(snaps_of[key], max(first, period.start), last)
                points.append(
                    SeriesPoint(
                        first,
                        engine.Figure(best.value) if best else engine.missing(),
                        1 if best else 0,
                    )
                )
            out[key] = points
    if not summed_keys:
        return out
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
    for key in summed_keys:
        out[key] = []
    for first, last in buckets:
        sums = per_bucket.get(first, {})
        costs = _costs(fees, engagement, sums, max(first, period.start), last)
        figures = sc.figures_from(sums, {}, costs)
        rows = sum(t.rows for t in sums.values())
        for key in summed_keys:
            figure = figures.get(key) or (
                engine.Figure(sums[key].total) if key in sums else engine.missing()
            )
            out[key].append(SeriesPoint(first, figure, rows))
    return out


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
    pool = portfolio(session, actor, access.organization.id, period)
    engagements = [e for e in pool.engagements if _compared_in(e, period)]
    names = repository_names(session, {e.agency_id for e in engagements})
    months = [first for first, _ in bucket_starts(period.start, period.end, "month")]
    records = records_of(session, engagements, period)
    rows = _compared(
        engagements, period, pool, records, lambda e: names.get(e.agency_id, ("", "")), months
    )
    return Comparison(access.organization, period, rows, months)


def _compared_in(engagement: Engagement, period: Period) -> bool:
    """Running during the period, and agreed (a proposal or a refusal is not compared)."""
    return (
        engagement.start_date <= period.end
        and (engagement.end_date is None or engagement.end_date >= period.start)
        and engagement.status not in ("proposed", "declined")
    )


def _compared(
    engagements: Sequence[Engagement], period: Period, pool: Portfolio, records: Records,
    name_of: Callable[[Engagement], tuple[str, str]], months: list[date],
) -> list[ComparedEngagement]:  # fmt: skip
    """One row per engagement, named by ``name_of``, from what is loaded (no statement here)."""
    rows = []
    for engagement in engagements:
        card = scorecard_of(engagement, period, pool, records)
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
        name, slug = name_of(engagement)
        rows.append(
            ComparedEngagement(
                engagement,
                name,
                slug,
                card,
                per_deliverable,
                attainment,
                _attainment_trend(
                    engagement, card, pool, records.fees.get(engagement.id, []), months, period
                ),
            )
        )
    return rows


def _attainment_trend(
    engagement: Engagement, card: sc.Scorecard, pool: Portfolio, fees: Sequence[Fee],
    months: list[date], period: Period,
) -> list[tuple[date, engine.Figure]]:  # fmt: skip
    """KPI attainment per month, from the same rollups (monthly targets pro rata)."""
    by_month: dict[date, dict[str, Totals]] = defaultdict(dict)
    for metric, when, totals in pool.series.get(engagement.id, ()):
        month = when.replace(day=1)
        by_month[month][metric] = _add(by_month[month].get(metric), totals)
    kpis = [view.kpi for view in card.kpis]
    trend = []
    for month in months:
        last = min(_next_of(month, "month") - timedelta(days=1), period.end)
        first = max(month, period.start)
        sums = by_month.get(month, {})
        figures = sc.figures_from(sums, {}, _costs(fees, engagement, sums, first, last))
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
        e
        for e in repository.agency_engagements(session, access.organization.id)
        if _compared_in(e, period)
    ]
    rows: list[ComparedEngagement] = []
    months = [first for first, _ in bucket_starts(period.start, period.end, "month")]
    # The client, not the agency, names each row here.
    names = repository_names(session, {e.brand_id for e in engagements})
    pools = portfolios(session, actor, {e.brand_id for e in engagements}, period)
    records = records_of(session, engagements, period)
    for brand_id in sorted(pools, key=str):
        own = [e for e in engagements if e.brand_id == brand_id]
        rows.extend(
            _compared(
                own, period, pools[brand_id], records,
                lambda e: names.get(e.brand_id, ("", "")), months,
            )
        )  # fmt: skip
    return Comparison(access.organization, period, rows, months)


def unit_of(metric: str) -> Unit | None:
    found = BY_KEY.get(metric)
    return found.unit if found else None
