"""Every formula of DOMAIN.md §2 and the scorecard arithmetic of §3, by hand-computed values."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal

import pytest

from app.results.metrics import BY_KEY
from app.scorecards import engine
from app.scorecards import scorecard as sc
from app.scorecards.engine import Measure, Snapshot

D = Decimal
TINY = D("1e-20")  # thirds do not divide exactly


def test_cpm_is_cost_per_thousand_impressions() -> None:
    # €250.00 over 125,000 impressions: 25000 cents ÷ 125000 × 1000 = 200 cents = €2.00
    figure = engine.cpm(25000, 125000)
    assert figure.value == D(200)
    assert (figure.numerator, figure.denominator) == (D(25000), D(125000))


def test_cpi_is_cost_per_impression() -> None:
    assert engine.cpi(25000, 125000).value == D("0.2")


def test_share_of_voice_divides_by_all_mentions() -> None:
    # 30 brand mentions, 90 competitors': 30 ÷ 120 = 25 %
    figure = engine.share_of_voice(30, 90)
    assert figure.value == D("0.25")
    assert figure.denominator == D(120)


def test_engagement_rates_by_reach_and_by_impressions() -> None:
    assert engine.engagement_rate_by_reach(450, 10000).value == D("0.045")
    assert engine.engagement_rate_by_impressions(450, 30000).value == D("0.015")


def test_ctr_is_link_clicks_over_impressions() -> None:
    assert engine.ctr(84, 12000).value == D("0.007")


def test_conversion_rate_states_its_base() -> None:
    figure = engine.conversion_rate(36, 1200, basis="sessions")
    assert figure.value == D("0.03")
    by_clicks = engine.conversion_rate(36, 400, basis="link clicks")
    assert by_clicks.value == D("0.09")


def test_roi_uses_fees_ad_spend_and_production() -> None:
    # fees €3,500 + ad spend €1,000 + production €500 = €5,000 cost; revenue €8,000
    cost = engine.total_cost(350000, 100000, 50000)
    assert cost == 500000
    figure = engine.roi(800000, cost)
    assert figure.value == D("0.6")  # (8000 − 5000) ÷ 5000
    assert engine.roi(300000, cost).value == D("-0.4")


def test_roas_and_cpa() -> None:
    assert engine.roas(800000, 100000).value == D(8)
    assert engine.cpa(500000, 40).value == D(12500)  # €125.00 per new customer


def test_positive_sentiment_and_resolution_rate() -> None:
    assert engine.positive_sentiment(62, 80).value == D("0.775")
    assert engine.resolution_rate(45, 50).value == D("0.9")


def test_response_time_is_a_median_and_a_share_within_sla() -> None:
    minutes = [12, 45, 30, 240, 18]
    assert engine.median(minutes) == D(30)
    assert engine.median([10, 20, 30, 40]) == D(25)
    within = engine.within_limit_share(minutes, 60)
    assert within.value == D("0.8")  # 4 of 5 within an hour
    assert engine.median([]) is None


def test_nps_is_promoters_minus_detractors() -> None:
    # 50 promoters, 30 passives, 20 detractors: 50 % − 20 % = 30
    assert engine.nps(50, 30, 20).value == D(30)
    scores = [10, 9, 9, 8, 7, 6, 3, 10, 0, 9]  # 5 promoters, 2 passives, 3 detractors
    assert engine.nps_from_scores(scores).value == D(20)


def test_brand_preference() -> None:
    assert engine.brand_preference(180, 400).value == D("0.45")


def test_far_frequency_reach_and_yield() -> None:
    assert engine.far_frequency(360, 240).value == D("1.5")  # purchases per customer
    assert engine.far_reach(120, 35).value == D(85)  # net new customers
    assert engine.far_yield(1800000, 360).value == D(5000)  # €50.00 per transaction


def test_a_zero_denominator_gives_no_number_and_a_reason() -> None:
    for figure in (
        engine.cpm(1000, 0),
        engine.ctr(5, 0),
        engine.roi(100, 0),
        engine.roas(100, 0),
        engine.cpa(100, 0),
        engine.nps(0, 0, 0),
        engine.share_of_voice(0, 0),
    ):
        assert figure.value is None
        assert figure.reason == engine.ZERO_DENOMINATOR
        assert figure.reason_params["denominator"]
    # Nothing that could become NaN or infinity in JSON.
    json.dumps([engine.ctr(5, 0).value], allow_nan=False)


def test_rates_are_total_over_total_not_an_average_of_rates() -> None:
    posts = [(10, 100), (1, 1000)]  # 10 % and 0.1 %: averaging says 5.05 %
    clicks = sum(c for c, _ in posts)
    impressions = sum(i for _, i in posts)
    assert engine.ctr(clicks, impressions).value == D(11) / D(1100)


def test_reach_is_never_summed_the_widest_row_wins() -> None:
    rows = [
        Snapshot(date(2026, 10, 1), date(2026, 10, 31), D(50000)),
        Snapshot(date(2026, 10, 1), date(2026, 10, 7), D(20000)),
        Snapshot(date(2026, 11, 1), date(2026, 11, 30), D(40000)),
    ]
    best = engine.best_snapshot(rows, date(2026, 10, 1), date(2026, 10, 31))
    assert best is not None and best.value == D(50000)  # not 70,000
    # A tie on covered days: the later row.
    tie = engine.best_snapshot(rows, date(2026, 10, 27), date(2026, 11, 5))  # 5 days each
    assert tie is not None and tie.value == D(40000)
    assert engine.best_snapshot(rows, date(2027, 1, 1), date(2027, 1, 31)) is None


def test_kpi_attainment_is_capped_at_120_percent_and_mapped_to_100() -> None:
    assert engine.kpi_attainment(D(300), D(400)).value == D("0.75")
    assert engine.kpi_attainment(D(900), D(400)).value == D("1.2")
    assert engine.attainment_points(D("0.75")) == D("62.5")
    assert engine.attainment_points(D("1.2")) == D(100)
    # Lower is better for costs: target €5 CPM, actual €4 → 125 % → capped.
    assert engine.kpi_attainment(D(4), D(5), lower_is_better=True).value == D("1.2")
    assert engine.kpi_attainment(D(10), D(5), lower_is_better=True).value == D("0.5")
    assert engine.kpi_attainment(D(0), D(5)).value == D(0)
    assert engine.kpi_attainment(D(3), None).reason == "The KPI has no target."


def test_shrinkage_pulls_sparse_rates_toward_the_portfolio_mean() -> None:
    # 3 of 3 on time, portfolio mean 80 %: (3 + 10 × 0.8) ÷ (3 + 10) = 11 ÷ 13
    assert engine.shrink(3, 3, D("0.8")) == D(11) / D(13)
    # Plenty of data barely moves: (180 + 8) ÷ 210
    assert engine.shrink(180, 200, D("0.8")) == D(188) / D(210)
    assert engine.portfolio_mean([(3, 3), (17, 27)]) == D(20) / D(30)
    assert engine.portfolio_mean([]) is None


def test_rate_measure_shrinks_flags_low_data_and_gives_a_range() -> None:
    measure = engine.rate_measure("on_time", 3, 3, D("0.8"))
    assert measure.points == D(11) / D(13) * 100
    assert measure.low_data is True
    assert measure.low is not None and measure.high is not None
    assert measure.low < measure.points <= measure.high
    plenty = engine.rate_measure("on_time", 90, 100, D("0.8"))
    assert plenty.low_data is False
    assert plenty.points == D(98) / D(110) * 100
    inverted = engine.rate_measure("rejection", 2, 10, D("0.1"), invert=True)
    assert inverted.points == (1 - D(3) / D(20)) * 100  # 1 − (2 + 1) ÷ 20
    assert engine.rate_measure("x", 0, 0, D("0.5")).points is None


def test_wilson_range_by_hand() -> None:
    low, high = engine.wilson_range(8, 10)
    assert abs(low - D("0.4902")) < D("0.0001")
    assert abs(high - D("0.9433")) < D("0.0001")
    assert engine.wilson_range(0, 0) == (D(0), D(1))


def test_rounds_points() -> None:
    assert engine.rounds_points(D(1)) == D(100)
    assert engine.rounds_points(D(3)) == D(50)
    assert engine.rounds_points(D(6)) == D(0)


def test_metrics_without_data_are_dropped_and_weights_rebalanced() -> None:
    results = engine.score_part(
        "results",
        [Measure("kpi_business", None, D(2) / 3), Measure("kpi_indicator", D(90), D(1) / 3)],
    )
    assert results.points is not None and abs(results.points - 90) < TINY
    assert abs(results.covered - D(1) / 3) < TINY
    delivery = engine.score_part("delivery", [Measure("on_time", D(80)), Measure("sla", D(60))])
    assert delivery.points == D(70) and delivery.covered == 1
    quality = engine.score_part("quality", [Measure("first_pass", None)])
    assert quality.points is None

    combined = engine.combine(
        [results, delivery, quality], {"results": 50, "delivery": 30, "quality": 20}
    )
    # Quality has no data: 50 and 30 become 62.5 % and 37.5 %.
    assert combined.weights_used == {"results": D("0.625"), "delivery": D("0.375")}
    assert combined.points is not None and abs(combined.points - D("82.5")) < TINY
    # Covered: (50 × ⅓ + 30 × 1 + 20 × 0) ÷ 100
    assert abs(combined.covered - (D(50) / 3 + 30) / 100) < TINY


def test_combine_with_no_data_at_all_gives_no_score() -> None:
    empty = engine.score_part("results", [Measure("kpi_business", None)])
    combined = engine.combine([empty], {"results": 50})
    assert combined.points is None and combined.covered == 0


def test_confidence_range_combines_the_measures_ranges() -> None:
    part = engine.score_part(
        "delivery",
        [Measure("a", D(80), low=D(60), high=D(90)), Measure("b", D(40), low=D(30), high=D(50))],
    )
    assert (part.points, part.low, part.high) == (D(60), D(45), D(70))


def test_default_weights_depend_on_the_stage_and_weights_are_validated() -> None:
    assert engine.default_weights("setup") == {"results": 50, "delivery": 30, "quality": 20}
    maturity = engine.default_weights("maturity")
    assert maturity["results"] > 50 and sum(maturity.values()) == 100
    assert D(2) / 3 <= engine.BUSINESS_SHARE_OF_RESULTS
    assert engine.weights_problem({"results": 50, "delivery": 30, "quality": 20}) is None
    assert engine.weights_problem({"results": 50, "delivery": 30, "quality": 30}) is not None
    assert engine.weights_problem({"results": 120, "delivery": -30, "quality": 10}) is not None
    assert engine.weights_problem({"results": 100}) is not None


def test_fees_count_pro_rata_by_day_and_one_offs_on_their_date() -> None:
    from app.engagements.models import Engagement, Fee

    engagement = Engagement(
        brand_id=uuid.uuid4(),
        agency_id=uuid.uuid4(),
        name="x",
        start_date=date(2026, 1, 1),
        currency="EUR",
    )
    fees = [
        Fee(kind="monthly", amount_minor=310000),  # €3,100 a month
        Fee(kind="one_off", amount_minor=50000, due_date=date(2026, 3, 10)),
        Fee(kind="one_off", amount_minor=70000, due_date=date(2026, 5, 1)),
    ]
    # 1–15 March: 15 of 31 days of €3,100 = €1,500, plus the €500 one-off on 10 March.
    assert sc.fees_in_period(fees, engagement, date(2026, 3, 1), date(2026, 3, 15)) == 200000


def test_kpi_targets_are_pro_rata_for_counts_and_as_is_for_rates() -> None:
    from app.engagements.models import Kpi

    monthly = Kpi(metric="coupon_redemptions", target=D(400), period="monthly")
    # 91.3125 days is a quarter: three months' target.
    quarter = sc.target_for_period(
        monthly, BY_KEY["coupon_redemptions"], date(2026, 1, 1), date(2026, 3, 31)
    )
    assert quarter == D(400) * 90 / D("30.4375")
    rate = Kpi(metric="ctr", target=D("0.01"), period="monthly")
    assert sc.target_for_period(rate, BY_KEY["ctr"], date(2026, 1, 1), date(2026, 3, 31)) == D(
        "0.01"
    )


@pytest.mark.parametrize("key", sorted(BY_KEY))
def test_every_dictionary_metric_has_a_way_to_be_computed(key: str) -> None:
    """Each metric of the dictionary is a snapshot, an additive sum or a derived formula."""
    derived = {
        "cpm", "cpi", "share_of_voice", "engagement_rate_reach", "engagement_rate_impressions",
        "ctr", "conversion_rate", "roi", "roas", "cpa", "positive_sentiment", "resolution_rate",
        "far_frequency", "far_reach", "far_yield",
    }  # fmt: skip
    metric = BY_KEY[key]
    additive = metric.unit in ("count", "money") and key not in sc.SNAPSHOT_METRICS
    assert key in sc.SNAPSHOT_METRICS or key in derived or additive
