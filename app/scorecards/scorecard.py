"""An engagement's accountability scorecard (DOMAIN.md §3), computed from its records.

The portal measures what it holds: deliverables, posts and decisions, escalations,
result rows (through the daily rollups), KPIs and fees. ``counts_for`` gathers the
raw successes and trials of several engagements of one brand in a few grouped
queries (no query per engagement); ``build`` turns one engagement's counts into
the scored parts, shrinking each rate toward the brand's portfolio mean.

The brand's own approval wait is measured here too and shown beside the score,
never inside it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision
from sqlmodel import Session

from app.content.models import DecisionKind
from app.db import set_tenant_context, utcnow
from app.deliverables import measures as deliveries
from app.engagements.models import Engagement, Fee, Kpi
from app.errors import N_
from app.escalations import measures as escalations
from app.results.metrics import BY_KEY, Funnel, Metric, Unit
from app.scorecards import engine, repository
from app.scorecards.engine import Figure, Measure, PartScore
from app.scorecards.repository import DecisionMade, PostReviewed, Totals, VersionSaved

# Result metrics the engine reads as inputs (besides the dictionary's own keys). A
# source may name the same thing differently: the first key with data wins.
INPUTS: dict[str, tuple[str, ...]] = {
    "engagements": ("engagements", "interactions"),
    "link_clicks": ("link_clicks", "clicks", "url_clicks"),
    "sessions": ("sessions",),
    "ad_spend": ("ad_spend",),
    "production_cost": ("production_cost", "production"),
    "new_customers": ("new_customers", "far_reach"),
    "lost_customers": ("lost_customers",),
    "transactions": ("transactions", "orders"),
    "purchases": ("purchases",),
    "customers": ("customers",),
    "brand_mentions": ("brand_mentions", "mentions"),
    "competitor_mentions": ("competitor_mentions",),
    "positive_mentions": ("positive_mentions",),
    "coded_mentions": ("coded_mentions",),
    "cases": ("cases",),
    "resolved_cases": ("resolved_cases",),
}
# Never added up: read from the one row that covers the most of the period.
SNAPSHOT_METRICS = frozenset(
    {"reach", "nps", "brand_preference", "first_response_time", "resolution_time"}
)
# Computed from their inputs; a reported row is used only when the inputs are missing and
# the row is engagement-wide (a per-post rate is never taken for the period's rate).
DERIVED_METRICS = frozenset(
    {
        "cpm", "cpi", "share_of_voice", "engagement_rate_reach", "engagement_rate_impressions",
        "ctr", "conversion_rate", "roi", "roas", "cpa", "positive_sentiment", "resolution_rate",
        "far_frequency", "far_yield",
    }
)  # fmt: skip
PER_CHANNEL_ONLY = N_(
    "Reported per channel only, and channels are never added up for this: choose a channel."
)
# Costs and times: the lower, the better (KPI attainment is target ÷ actual).
LOWER_IS_BETTER = frozenset({"cpm", "cpi", "cpa", "first_response_time", "resolution_time"})
# Change requests answered by a new version within this many hours count as on time.
TURNAROUND_TARGET_HOURS = 48
# A KPI's target is per month, per quarter or for the whole engagement.
PERIOD_DAYS = {"monthly": Decimal("30.4375"), "quarterly": Decimal("91.3125")}

MEASURE_NAMES = {
    "on_time": N_("On-time delivery rate"),
    "first_acceptance": N_("Accepted on first delivery"),
    "turnaround": N_("Change requests answered within %(hours)s h"),
    "escalations_sla": N_("Escalations handled within SLA"),
    "first_pass": N_("First-pass approval rate"),
    "rounds": N_("Mean review rounds"),
    "rejection": N_("Rejection rate"),
    "backed": N_("Result rows backed by exports or verified"),
    "disputed": N_("Disputed result rows"),
    "kpi_business": N_("KPI attainment: business measures"),
    "kpi_indicator": N_("KPI attainment: indicators"),
}
PART_NAMES = {
    "results": N_("Results"),
    "delivery": N_("Delivery and responsiveness"),
    "quality": N_("Quality and measurement honesty"),
}


@dataclass
class RawCounts:
    """Successes and trials of every rate-like measure of one engagement in one period."""

    pairs: dict[str, tuple[int, int]] = field(default_factory=dict)
    mean_rounds: Decimal | None = None
    rounds_posts: int = 0
    turnaround_hours: list[Decimal] = field(default_factory=list)
    approval_wait_hours: list[Decimal] = field(default_factory=list)
    returned_deliverables: int = 0
    escalation_revenue_minor: int = 0

    def pair(self, key: str) -> tuple[int, int]:
        return self.pairs.get(key, (0, 0))


@dataclass(frozen=True)
class MeasureView:
    key: str
    part: str
    successes: int | None
    trials: int | None
    rate: Decimal | None  # the raw rate, before shrinkage
    measure: Measure
    detail: str = ""  # e.g. the mean of rounds, as shown


@dataclass(frozen=True)
class KpiView:
    kpi: Kpi
    metric: Metric | None
    target: Decimal | None  # scaled to the period
    actual: Figure
    attainment: Figure


@dataclass(frozen=True)
class Costs:
    currency: str
    fees_minor: int
    ad_spend_minor: int
    production_minor: int

    @property
    def total_minor(self) -> int:
        return engine.total_cost(self.fees_minor, self.ad_spend_minor, self.production_minor)


@dataclass
class Scorecard:
    engagement: Engagement
    start: date
    end: date
    channel: str | None
    weights: dict[str, int]
    weights_custom: bool
    measures: list[MeasureView]
    parts: list[PartScore]
    combined: engine.Combined
    low_data: bool
    kpis: list[KpiView]
    figures: dict[str, Figure]
    costs: Costs
    honesty: Totals
    approval_wait_median_hours: Decimal | None
    approval_waits: int
    returned_deliverables: int
    business_kpi_share: Figure
    has_any_data: bool

    def measures_of(self, part: str) -> list[MeasureView]:
        return [view for view in self.measures if view.part == part]

    def part(self, key: str) -> PartScore | None:
        return next((part for part in self.parts if part.key == key), None)


# --- gathering ----------------------------------------------------------------------------


def _hours(delta: timedelta) -> Decimal:
    return Decimal(int(delta.total_seconds())) / Decimal(3600)


def _posts_counts(
    counts: RawCounts,
    posts: Sequence[PostReviewed],
    by_post: Mapping[uuid.UUID, Sequence[DecisionMade]],
    versions_by_post: Mapping[uuid.UUID, Sequence[VersionSaved]],
    start: date,
    end: date,
    now: datetime,
) -> None:
    first_pass = rejected = 0
    rounds_total = 0
    on_time = answered_or_due = 0
    for post in posts:
        own = by_post.get(post.id, [])
        if not own:
            continue
        if any(d.decision == DecisionKind.approve and d.round == 1 for d in own):
            first_pass += 1
        if any(d.decision == DecisionKind.reject for d in own):
            rejected += 1
        rounds_total += max(d.round for d in own)
        # Agency turnaround: changes requested → the next version.
        for decision in own:
            if decision.decision != DecisionKind.request_changes:
                continue
            following = next(
                (
                    v
                    for v in versions_by_post.get(post.id, [])
                    if v.created_at > decision.created_at
                ),
                None,
            )
            deadline = decision.created_at + timedelta(hours=TURNAROUND_TARGET_HOURS)
            if following is not None:
                counts.turnaround_hours.append(_hours(following.created_at - decision.created_at))
                answered_or_due += 1
                on_time += following.created_at <= deadline
            elif now > deadline:
                answered_or_due += 1
        # The brand's approval wait: each round's first decision − that round's submission.
        for round_number in sorted({d.round for d in own}):
            first = min((d for d in own if d.round == round_number), key=lambda d: d.created_at)
            if not start <= first.created_at.date() <= end:
                continue
            submitted = _round_submitted_at(
                post, round_number, first, versions_by_post.get(post.id, ())
            )
            if submitted is not None and submitted <= first.created_at:
                counts.approval_wait_hours.append(_hours(first.created_at - submitted))
    decided = sum(1 for post in posts if by_post.get(post.id))
    counts.pairs["first_pass"] = (first_pass, decided)
    counts.pairs["rejection"] = (rejected, decided)
    counts.pairs["turnaround"] = (on_time, answered_or_due)
    counts.rounds_posts = decided
    counts.mean_rounds = Decimal(rounds_total) / Decimal(decided) if decided else None


def _round_submitted_at(
    post: PostReviewed, round_number: int, first: DecisionMade, versions: Sequence[VersionSaved]
) -> datetime | None:
    if round_number == post.rounds and post.submitted_at is not None:
        return post.submitted_at
    # An earlier round: the version it decided on was saved, then submitted.
    saved = [v.created_at for v in versions if v.number == first.version_number]
    return saved[0] if saved else None


def counts_for(
    session: Session, engagements: Sequence[Engagement], start: date, end: date
) -> dict[uuid.UUID, RawCounts]:
    """Raw counts of each engagement (all of one brand) over [start, end].

    A fixed number of statements however many engagements: each kind of record is
    loaded for all of them at once and counted per engagement here.
    """
    now = utcnow()
    posts, decisions, versions = repository.review_records_of(session, engagements, start, end)
    posts_of: dict[uuid.UUID, list[PostReviewed]] = defaultdict(list)
    for post in posts:
        posts_of[post.engagement_id].append(post)
    by_post: dict[uuid.UUID, list[DecisionMade]] = defaultdict(list)
    for decision in decisions:
        by_post[decision.post_id].append(decision)
    versions_by_post: dict[uuid.UUID, list[VersionSaved]] = defaultdict(list)
    for version in versions:
        versions_by_post[version.post_id].append(version)
    deliveries_of = deliveries.delivery_counts_by_engagement(
        repository.deliverables_due(session, engagements, start, end), start, end, now=now
    )
    opened_from, opened_to = repository.day_start(start), repository.day_after(end)
    touching = repository.escalations_touching(session, engagements, opened_from, opened_to)
    sla_of = escalations.escalation_counts_by_engagement(touching, opened_from, opened_to, now=now)
    revenue_of = escalations.attributed_revenue_by_engagement(
        touching, engagements, opened_from, opened_to
    )
    result: dict[uuid.UUID, RawCounts] = {}
    for engagement in engagements:
        counts = RawCounts()
        _posts_counts(counts, posts_of[engagement.id], by_post, versions_by_post, start, end, now)
        delivery = deliveries_of.get(engagement.id, deliveries.NO_DELIVERIES)
        counts.pairs["on_time"] = (delivery.on_time, delivery.due)
        counts.pairs["first_acceptance"] = (delivery.first_accepted, delivery.first_decided)
        counts.returned_deliverables = delivery.returned
        sla = sla_of.get(engagement.id) or escalations.count((), now)
        counts.pairs["escalations_sla"] = (sla.within_sla, sla.decided)
        counts.escalation_revenue_minor = revenue_of[engagement.id].minor_units
        result[engagement.id] = counts
    return result


def add_honesty(counts: Mapping[uuid.UUID, RawCounts], totals: Mapping[uuid.UUID, Totals]) -> None:
    for engagement_id, raw in counts.items():
        honesty = totals.get(engagement_id, Totals(Decimal(0), 0, 0, 0))
        raw.pairs["backed"] = (honesty.backed, honesty.rows)
        raw.pairs["disputed"] = (honesty.disputed, honesty.rows)


def portfolio_means(counts: Mapping[uuid.UUID, RawCounts]) -> dict[str, Decimal | None]:
    keys = {key for raw in counts.values() for key in raw.pairs}
    return {key: engine.portfolio_mean(raw.pair(key) for raw in counts.values()) for key in keys}


@contextmanager
def brand_portfolio_context(
    session: Session, org_ids: frozenset[Any], brand_ids: Collection[uuid.UUID]
) -> Iterator[None]:
    """Let the pooled means of the brand's portfolio be read, then narrow the context again.

    The shrinkage's prior is the brand's portfolio mean, and both sides must see the
    same score: an agency viewer's queries would otherwise (under row-level security)
    see only its own engagements. Only pooled counts leave this block, never rows.
    """
    set_tenant_context(session, org_ids=set(org_ids) | set(brand_ids))
    try:
        yield
    finally:
        set_tenant_context(session, org_ids=org_ids)


# --- results figures ------------------------------------------------------------------------


def _first_known(sums: Mapping[str, Totals], name: str) -> Decimal | None:
    for key in INPUTS.get(name, (name,)):
        if key in sums and sums[key].counted:
            return sums[key].total
    return None


def fees_in_period(fees: Sequence[Fee], engagement: Engagement, start: date, end: date) -> int:
    """Fees that fall in the period: monthly fees pro rata by day, one-off fees on their date."""
    first = max(start, engagement.start_date)
    last = min(end, engagement.end_date) if engagement.end_date else end
    total = Decimal(0)
    for fee in fees:
        if fee.kind == "monthly":
            day = first
            while day <= last:
                month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(
                    days=1
                )
                stretch_end = min(month_end, last)
                days = (stretch_end - day).days + 1
                total += Decimal(fee.amount_minor) * days / Decimal(month_end.day)
                day = stretch_end + timedelta(days=1)
        else:
            when = fee.due_date or engagement.start_date
            if start <= when <= end:
                total += fee.amount_minor
    return int(total.to_integral_value())


def figures_from(
    sums: Mapping[str, Totals],
    snapshots: Mapping[str, engine.Snapshot | None],
    costs: Costs,
    *,
    attributed_revenue_minor: int = 0,
) -> dict[str, Figure]:
    """Every dictionary metric that the period's data allows, each with its parts."""
    figures: dict[str, Figure] = {}
    for key, metric in BY_KEY.items():
        if key in SNAPSHOT_METRICS:
            snap = snapshots.get(key)
            figures[key] = engine.Figure(snap.value) if snap else engine.missing()
        elif metric.unit in (Unit.quantity, Unit.money) and key in sums and sums[key].counted:
            figures[key] = engine.Figure(sums[key].total)
    revenue = _first_known(sums, "revenue")
    if attributed_revenue_minor:
        revenue = (revenue or Decimal(0)) + attributed_revenue_minor
        figures["revenue"] = engine.Figure(revenue)
    impressions = _first_known(sums, "impressions")
    engagements_ = _first_known(sums, "engagements")
    clicks = _first_known(sums, "link_clicks")
    sessions = _first_known(sums, "sessions")
    conversions = _first_known(sums, "conversions")
    ad_spend = Decimal(costs.ad_spend_minor)
    total_cost = Decimal(costs.total_minor)
    reach = snapshots.get("reach")
    derived = {
        "cpm": engine.cpm(total_cost, impressions) if impressions is not None else engine.missing(),
        "cpi": engine.cpi(total_cost, impressions) if impressions is not None else engine.missing(),
        "share_of_voice": engine.share_of_voice(
            _first_known(sums, "brand_mentions"), _first_known(sums, "competitor_mentions")
        ),
        "engagement_rate_reach": engine.engagement_rate_by_reach(
            engagements_, reach.value if reach else None
        ),
        "engagement_rate_impressions": engine.engagement_rate_by_impressions(
            engagements_, impressions
        ),
        "ctr": engine.ctr(clicks, impressions),
        "conversion_rate": (
            engine.conversion_rate(conversions, sessions, basis=N_("sessions"))
            if sessions is not None
            else engine.conversion_rate(conversions, clicks, basis=N_("link clicks"))
        ),
        "roi": engine.roi(revenue, total_cost) if revenue is not None else engine.missing(),
        "roas": engine.roas(revenue, ad_spend) if revenue is not None else engine.missing(),
        "cpa": (
            engine.cpa(total_cost, _first_known(sums, "new_customers"))
            if _first_known(sums, "new_customers") is not None
            else engine.missing()
        ),
        "positive_sentiment": engine.positive_sentiment(
            _first_known(sums, "positive_mentions"), _first_known(sums, "coded_mentions")
        ),
        "resolution_rate": engine.resolution_rate(
            _first_known(sums, "resolved_cases"), _first_known(sums, "cases")
        ),
        "far_frequency": engine.far_frequency(
            _first_known(sums, "purchases"), _first_known(sums, "customers")
        ),
        "far_reach": engine.far_reach(
            _first_known(sums, "new_customers"), _first_known(sums, "lost_customers") or 0
        ),
        "far_yield": engine.far_yield(revenue, _first_known(sums, "transactions")),
    }
    for key, figure in derived.items():
        reported = snapshots.get(key)
        if not figure.known and reported is not None:
            figure = engine.Figure(reported.value)
        if figure.known or key not in figures:
            figures[key] = figure
    return figures


def target_for_period(kpi: Kpi, metric: Metric | None, start: date, end: date) -> Decimal | None:
    """The KPI's target over the period: counts and money pro rata; rates and costs as they are."""
    if kpi.target is None:
        return None
    additive = (
        metric is not None
        and metric.unit in (Unit.quantity, Unit.money)
        and metric.key not in SNAPSHOT_METRICS
        and metric.key not in LOWER_IS_BETTER
        and metric.key not in ("far_yield",)
    )
    if not additive or kpi.period not in PERIOD_DAYS:
        return kpi.target
    days = Decimal((end - start).days + 1)
    return kpi.target * days / PERIOD_DAYS[kpi.period]


def actual_for_kpi(figures: Mapping[str, Figure], metric: Metric | None) -> Figure:
    if metric is None:
        return engine.missing(N_("The KPI's metric is not in the dictionary."))
    return figures.get(metric.key, engine.missing())


def kpi_views(
    kpis: Sequence[Kpi], figures: Mapping[str, Figure], currency: str, start: date, end: date
) -> list[KpiView]:
    views = []
    for kpi in kpis:
        metric = BY_KEY.get(kpi.metric)
        target = target_for_period(kpi, metric, start, end)
        actual = actual_for_kpi(figures, metric)
        compared_actual = actual.value
        if compared_actual is not None and metric is not None and metric.unit is Unit.money:
            compared_actual = compared_actual / Decimal(10) ** get_currency_precision(currency)
        attainment = (
            engine.kpi_attainment(
                compared_actual, target, lower_is_better=kpi.metric in LOWER_IS_BETTER
            )
            if actual.value is not None
            else actual  # no actual: the attainment says why, in the actual's words
        )
        views.append(KpiView(kpi, metric, target, actual, attainment))
    return views


def funnel(kpis: Sequence[KpiView]) -> list[tuple[Funnel, list[KpiView]]]:
    """ACDAA: each stage's KPIs with their attainment (a KPI sits at its metric's first stage)."""
    stages: dict[Funnel, list[KpiView]] = {stage: [] for stage in Funnel}
    for view in kpis:
        if view.metric is not None:
            stages[view.metric.stages[0]].append(view)
    return list(stages.items())


# --- scoring --------------------------------------------------------------------------------


def measures_of(
    raw: RawCounts, means: Mapping[str, Decimal | None], kpis: Sequence[KpiView]
) -> list[MeasureView]:
    views: list[MeasureView] = []

    def add_rate(key: str, part: str, *, invert: bool = False) -> None:
        successes, trials = raw.pair(key)
        measure = engine.rate_measure(key, successes, trials, means.get(key), invert=invert)
        rate = Decimal(successes) / Decimal(trials) if trials else None
        views.append(MeasureView(key, part, successes, trials, rate, measure))

    add_rate("on_time", "delivery")
    add_rate("first_acceptance", "delivery")
    add_rate("turnaround", "delivery")
    add_rate("escalations_sla", "delivery")
    add_rate("first_pass", "quality")
    rounds_points = engine.rounds_points(raw.mean_rounds) if raw.mean_rounds is not None else None
    views.append(
        MeasureView(
            "rounds",
            "quality",
            None,
            raw.rounds_posts or None,
            raw.mean_rounds,
            Measure(
                "rounds", rounds_points, low_data=0 < raw.rounds_posts < engine.LOW_DATA_TRIALS
            ),
        )
    )
    add_rate("rejection", "quality", invert=True)
    add_rate("backed", "quality")
    add_rate("disputed", "quality", invert=True)
    # Results: KPI attainment, two thirds of the weight on business measures.
    for key, business in (("kpi_business", True), ("kpi_indicator", False)):
        own = [
            v
            for v in kpis
            if v.metric is not None
            and v.metric.is_business_measure is business
            and v.attainment.value is not None
        ]
        weight = (
            engine.BUSINESS_SHARE_OF_RESULTS if business else 1 - engine.BUSINESS_SHARE_OF_RESULTS
        )
        points = (
            sum(
                (
                    engine.attainment_points(v.attainment.value)
                    for v in own
                    if v.attainment.value is not None
                ),
                Decimal(0),
            )
            / len(own)
            if own
            else None
        )
        mean_attainment = (
            sum((v.attainment.value for v in own if v.attainment.value is not None), Decimal(0))
            / len(own)
            if own
            else None
        )
        views.append(
            MeasureView(
                key,
                "results",
                len(own) or None,
                sum(
                    1
                    for v in kpis
                    if v.metric is not None and v.metric.is_business_measure is business
                )
                or None,
                mean_attainment,
                Measure(key, points, weight),
            )
        )
    return views


def score(
    measures: Sequence[MeasureView], weights: Mapping[str, int]
) -> tuple[list[PartScore], engine.Combined]:
    parts = [
        engine.score_part(part, [view.measure for view in measures if view.part == part])
        for part in engine.PARTS
    ]
    return parts, engine.combine(parts, {key: Decimal(value) for key, value in weights.items()})
