"""The metric formulas of DOMAIN.md §2 and the scorecard arithmetic of §3, as pure functions.

Nothing here reads the database: every function takes plain numbers or plain
dataclasses, so each formula can be checked against a hand-computed value.

Rules held here, once for the whole product:

- A rate is total numerator ÷ total denominator, never an average of per-post rates.
- A zero or missing denominator gives no number (``None``) and a reason (a message
  id, translated where it is shown) — never infinity or NaN.
- Money is in minor units of one currency; figures of different currencies are
  never added (the callers keep them apart).
- Reach is never summed: it is a *snapshot* metric, read from the one row that
  covers the most of the period.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from app.errors import N_

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

# DOMAIN.md §3: (successes + 10 × mean) ÷ (trials + 10).
SHRINKAGE_TRIALS = 10
# Fewer trials than the shrinkage's own weight: the portfolio mean says more than the data.
LOW_DATA_TRIALS = SHRINKAGE_TRIALS
# KPI attainment is capped at 120 % and then mapped onto 0–100.
ATTAINMENT_CAP = Decimal("1.2")
# z for a 95 % confidence range.
Z95 = 1.959964

NO_DATA = N_("No rows for this period.")
ZERO_DENOMINATOR = N_("The denominator (%(denominator)s) is zero for this period.")


@dataclass(frozen=True)
class Figure:
    """A computed number with what it is made of; ``value`` is None when it cannot be had."""

    value: Decimal | None
    numerator: Decimal | None = None
    denominator: Decimal | None = None
    reason: str | None = None
    reason_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.value is not None


def missing(reason: str = NO_DATA, **params: Any) -> Figure:
    return Figure(None, reason=reason, reason_params=params)


def ratio(
    numerator: Decimal | int | None,
    denominator: Decimal | int | None,
    *,
    denominator_name: str,
    scale: Decimal | int = 1,
) -> Figure:
    """numerator ÷ denominator × scale, or no number with the reason why."""
    if numerator is None or denominator is None:
        return missing()
    num, den = Decimal(numerator), Decimal(denominator)
    if den == 0:
        return Figure(None, num, den, ZERO_DENOMINATOR, {"denominator": denominator_name})
    return Figure(num / den * Decimal(scale), num, den)


# --- DOMAIN.md §2, one function per formula -----------------------------------------------


def cpm(cost_minor: Decimal | int | None, impressions: Decimal | int | None) -> Figure:
    """Cost ÷ impressions × 1000, in minor units of the cost's currency."""
    return ratio(cost_minor, impressions, denominator_name=N_("impressions"), scale=1000)


def cpi(cost_minor: Decimal | int | None, impressions: Decimal | int | None) -> Figure:
    return ratio(cost_minor, impressions, denominator_name=N_("impressions"))


def share_of_voice(
    brand_mentions: Decimal | int | None, competitor_mentions: Decimal | int | None
) -> Figure:
    if brand_mentions is None or competitor_mentions is None:
        return missing()
    return ratio(
        brand_mentions,
        Decimal(brand_mentions) + Decimal(competitor_mentions),
        denominator_name=N_("all mentions"),
    )


def engagement_rate_by_reach(
    engagements: Decimal | int | None, reach: Decimal | int | None
) -> Figure:
    return ratio(engagements, reach, denominator_name=N_("reach"))


def engagement_rate_by_impressions(
    engagements: Decimal | int | None, impressions: Decimal | int | None
) -> Figure:
    return ratio(engagements, impressions, denominator_name=N_("impressions"))


def ctr(link_clicks: Decimal | int | None, impressions: Decimal | int | None) -> Figure:
    return ratio(link_clicks, impressions, denominator_name=N_("impressions"))


def conversion_rate(
    conversions: Decimal | int | None, base: Decimal | int | None, *, basis: str
) -> Figure:
    """Conversions ÷ sessions, or ÷ clicks: ``basis`` says which, and is shown."""
    return ratio(conversions, base, denominator_name=basis)


def total_cost(fees_minor: int, ad_spend_minor: int, production_minor: int) -> int:
    """DOMAIN.md: cost = fees + ad spend + production (one currency)."""
    return fees_minor + ad_spend_minor + production_minor


def roi(revenue_minor: Decimal | int | None, cost_minor: Decimal | int | None) -> Figure:
    """(revenue − total cost) ÷ total cost."""
    if revenue_minor is None or cost_minor is None:
        return missing()
    return ratio(
        Decimal(revenue_minor) - Decimal(cost_minor), cost_minor, denominator_name=N_("total cost")
    )


def roas(revenue_minor: Decimal | int | None, ad_spend_minor: Decimal | int | None) -> Figure:
    return ratio(revenue_minor, ad_spend_minor, denominator_name=N_("ad spend"))


def cpa(cost_minor: Decimal | int | None, new_customers: Decimal | int | None) -> Figure:
    return ratio(cost_minor, new_customers, denominator_name=N_("new customers"))


def positive_sentiment(positive: Decimal | int | None, coded: Decimal | int | None) -> Figure:
    return ratio(positive, coded, denominator_name=N_("coded mentions"))


def median(values: Iterable[Decimal | int | float]) -> Decimal | None:
    ordered = sorted(Decimal(str(value)) for value in values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def within_limit_share(values: Sequence[Decimal | int | float], limit: Decimal | int) -> Figure:
    """Share of durations at or under a limit (first response within SLA)."""
    inside = sum(1 for value in values if Decimal(str(value)) <= Decimal(limit))
    return ratio(inside, len(values), denominator_name=N_("cases"))


def resolution_rate(resolved: Decimal | int | None, cases: Decimal | int | None) -> Figure:
    return ratio(resolved, cases, denominator_name=N_("cases"))


def nps(promoters: int, passives: int, detractors: int) -> Figure:
    """% promoters (9–10) − % detractors (0–6), from −100 to 100."""
    answers = promoters + passives + detractors
    if answers == 0:
        return Figure(None, None, ZERO, ZERO_DENOMINATOR, {"denominator": N_("answers")})
    value = (Decimal(promoters) - Decimal(detractors)) / Decimal(answers) * HUNDRED
    return Figure(value, Decimal(promoters - detractors), Decimal(answers))


def nps_from_scores(scores: Iterable[int]) -> Figure:
    promoters = passives = detractors = 0
    for score in scores:
        if score >= 9:
            promoters += 1
        elif score >= 7:
            passives += 1
        else:
            detractors += 1
    return nps(promoters, passives, detractors)


def brand_preference(preferring: Decimal | int | None, asked: Decimal | int | None) -> Figure:
    return ratio(preferring, asked, denominator_name=N_("people asked"))


def far_frequency(purchases: Decimal | int | None, customers: Decimal | int | None) -> Figure:
    """FAR frequency: purchases per customer in the period."""
    return ratio(purchases, customers, denominator_name=N_("customers"))


def far_reach(new_customers: Decimal | int | None, lost_customers: Decimal | int = 0) -> Figure:
    """FAR reach: net new customers (customers, not viewers)."""
    if new_customers is None:
        return missing()
    return Figure(Decimal(new_customers) - Decimal(lost_customers))


def far_yield(revenue_minor: Decimal | int | None, transactions: Decimal | int | None) -> Figure:
    return ratio(revenue_minor, transactions, denominator_name=N_("transactions"))


# --- snapshots: reach and other values that cannot be added up ----------------------------


@dataclass(frozen=True)
class Snapshot:
    """One reported value for a stretch of days (a reach, an NPS survey, a median time)."""

    period_start: date
    period_end: date
    value: Decimal


def best_snapshot(rows: Iterable[Snapshot], start: date, end: date) -> Snapshot | None:
    """The row covering the most days of [start, end]; the later one on a tie.

    Reach counts unique people: two rows' reach cannot be added, so the period's
    reach is the one row that tells the most about it, with its own dates shown.
    """
    best: tuple[int, date, Snapshot] | None = None
    for row in rows:
        overlap = (min(row.period_end, end) - max(row.period_start, start)).days + 1
        if overlap <= 0:
            continue
        key = (overlap, row.period_end, row)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


# --- KPI attainment ------------------------------------------------------------------------


def kpi_attainment(
    actual: Decimal | None, target: Decimal | None, *, lower_is_better: bool = False
) -> Figure:
    """actual ÷ target (target ÷ actual for costs and times), capped at 0–120 %."""
    if actual is None:
        return missing()
    if target is None:
        return missing(N_("The KPI has no target."))
    if lower_is_better:
        if actual == 0:
            return Figure(ATTAINMENT_CAP, target, actual)
        raw = ratio(target, actual, denominator_name=N_("actual"))
    else:
        raw = ratio(actual, target, denominator_name=N_("target"))
    if raw.value is None:
        return raw
    capped = min(max(raw.value, ZERO), ATTAINMENT_CAP)
    return Figure(capped, raw.numerator, raw.denominator)


def attainment_points(attainment: Decimal) -> Decimal:
    """0–120 % attainment onto 0–100 points: beating the target by a fifth is full marks."""
    return min(max(attainment, ZERO), ATTAINMENT_CAP) / ATTAINMENT_CAP * HUNDRED


# --- shrinkage and confidence --------------------------------------------------------------


def shrink(successes: Decimal | int, trials: Decimal | int, mean: Decimal) -> Decimal:
    """(successes + 10 × mean) ÷ (trials + 10): sparse rates lean on the portfolio mean."""
    return (Decimal(successes) + SHRINKAGE_TRIALS * mean) / (Decimal(trials) + SHRINKAGE_TRIALS)


def portfolio_mean(pairs: Iterable[tuple[Decimal | int, Decimal | int]]) -> Decimal | None:
    """The brand's pooled rate: all successes ÷ all trials across its engagements."""
    successes = trials = ZERO
    for s, t in pairs:
        successes += Decimal(s)
        trials += Decimal(t)
    return successes / trials if trials else None


def wilson_range(successes: Decimal | int, trials: Decimal | int) -> tuple[Decimal, Decimal]:
    """95 % Wilson score interval of a proportion; (0, 1) when there are no trials."""
    n = float(trials)
    if n <= 0:
        return ZERO, ONE
    p = float(successes) / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    return Decimal(str(round(low, 6))), Decimal(str(round(high, 6)))


# --- combining the score -------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One scored measure inside a part: 0–100 points (None = no data), with its range."""

    key: str
    points: Decimal | None
    weight: Decimal = ONE
    low: Decimal | None = None
    high: Decimal | None = None
    low_data: bool = False


@dataclass(frozen=True)
class PartScore:
    key: str
    points: Decimal | None
    low: Decimal | None
    high: Decimal | None
    covered: Decimal  # share of this part's measure weight backed by data (0–1)


@dataclass(frozen=True)
class Combined:
    points: Decimal | None
    low: Decimal | None
    high: Decimal | None
    covered: Decimal  # share of the whole score's weight backed by data (0–1)
    weights_used: dict[str, Decimal]  # the rebalanced weights actually applied (sum 1)


def _weighted(values: Sequence[tuple[Decimal, Decimal]]) -> Decimal:
    total = sum((weight for _, weight in values), ZERO)
    return sum((value * weight for value, weight in values), ZERO) / total


def score_part(key: str, measures: Sequence[Measure]) -> PartScore:
    """Weighted mean of the measures that have data; the others are dropped and counted."""
    all_weight = sum((m.weight for m in measures), ZERO)
    known = [m for m in measures if m.points is not None]
    if not known or all_weight == 0:
        return PartScore(key, None, None, None, ZERO)
    points = _weighted([(m.points, m.weight) for m in known if m.points is not None])
    low = _weighted([(m.low if m.low is not None else m.points, m.weight) for m in known])  # type: ignore[misc]
    high = _weighted([(m.high if m.high is not None else m.points, m.weight) for m in known])  # type: ignore[misc]
    covered = sum((m.weight for m in known), ZERO) / all_weight
    return PartScore(key, points, low, high, covered)


def combine(parts: Sequence[PartScore], weights: Mapping[str, Decimal | int]) -> Combined:
    """The 0–100 score: parts without data are dropped and the others' weights rebalanced.

    ``covered`` is the share of the configured weight that data backs: each part's
    weight times the share of its own measures that had data.
    """
    total_weight = sum((Decimal(weights.get(p.key, 0)) for p in parts), ZERO)
    known = [p for p in parts if p.points is not None and Decimal(weights.get(p.key, 0)) > 0]
    if not known or total_weight == 0:
        return Combined(None, None, None, ZERO, {})
    known_weight = sum((Decimal(weights[p.key]) for p in known), ZERO)
    used = {p.key: Decimal(weights[p.key]) / known_weight for p in known}
    points = sum((p.points * used[p.key] for p in known if p.points is not None), ZERO)
    low = sum(((p.low if p.low is not None else ZERO) * used[p.key] for p in known), ZERO)
    high = sum((p.high if p.high is not None else HUNDRED) * used[p.key] for p in known)
    covered = sum((Decimal(weights[p.key]) * p.covered for p in known), ZERO) / total_weight
    return Combined(points, low, Decimal(high), covered, used)


def rate_measure(
    key: str,
    successes: int,
    trials: int,
    mean: Decimal | None,
    *,
    weight: Decimal = ONE,
    invert: bool = False,
) -> Measure:
    """A success rate as 0–100 points, shrunk toward the portfolio mean, with its range.

    ``invert`` scores the complement (a rejection rate: fewer is better).
    """
    if trials <= 0:
        return Measure(key, None, weight)
    prior = mean if mean is not None else Decimal(successes) / Decimal(trials)
    shrunk = shrink(successes, trials, prior)
    low, high = wilson_range(successes, trials)
    if invert:
        shrunk, low, high = ONE - shrunk, ONE - high, ONE - low
    return Measure(
        key,
        shrunk * HUNDRED,
        weight,
        low * HUNDRED,
        high * HUNDRED,
        low_data=trials < LOW_DATA_TRIALS,
    )


def rounds_points(mean_rounds: Decimal) -> Decimal:
    """Mean review rounds onto 0–100: one round is full marks, five or more (a weak brief) none."""
    return min(max((Decimal(5) - mean_rounds) / Decimal(4), ZERO), ONE) * HUNDRED


# --- weights -------------------------------------------------------------------------------

PARTS = ("results", "delivery", "quality")

# DOMAIN.md §3: results 50, delivery/SLA 30, quality 20; results weigh more in maturity.
DEFAULT_WEIGHTS: dict[str, dict[str, int]] = {
    "setup": {"results": 50, "delivery": 30, "quality": 20},
    "development": {"results": 50, "delivery": 30, "quality": 20},
    "maturity": {"results": 60, "delivery": 25, "quality": 15},
}
# Inside results, at least two thirds of the weight sits on business measures.
BUSINESS_SHARE_OF_RESULTS = Decimal(2) / Decimal(3)


def default_weights(stage: str) -> dict[str, int]:
    return dict(DEFAULT_WEIGHTS.get(stage, DEFAULT_WEIGHTS["setup"]))


def weights_problem(weights: Mapping[str, int]) -> str | None:
    """Why a set of weights is refused (a message id), or None when it is fine."""
    if set(weights) != set(PARTS):
        return N_("Give a weight for results, delivery and quality.")
    if any(value < 0 or value > 100 for value in weights.values()):
        return N_("Each weight is between 0 and 100.")
    if sum(weights.values()) != 100:
        return N_("The weights must add up to 100.")
    return None
