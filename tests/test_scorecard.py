"""The engagement scorecard: rollups kept by upserts, the API (JSON and CSV), the page with
its drill-downs, the weights form, the PDF, and bad input."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.db import utcnow
from app.engagements.models import Engagement
from app.results.models import ResultRow, ResultStatus
from app.scorecards.models import MetricRollup, ScorecardWeights
from app.scorecards.rollups import refresh_rollups_for
from tests.engagement_factories import Parties, accepted_engagement, add_kpi, make_parties
from tests.factories import bearer, create_token, sign_in
from tests.pdf_support import skip_without_pdf

API = "/api/v1"


def add_row(
    db: Session,
    engagement: Engagement,
    metric: str,
    value: Decimal | int,
    day: date,
    *,
    end: date | None = None,
    channel: str = "",
    source: str = "form",
    status: ResultStatus = ResultStatus.reported,
    currency: str | None = None,
) -> ResultRow:
    row = ResultRow(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        row_key=uuid.uuid4().hex,
        channel=channel,
        metric=metric,
        period_start=day,
        period_end=end or day,
        value=Decimal(value),
        currency=currency,
        source=source,
        status=status,
    )
    db.add(row)
    db.commit()
    return row


def rollup_of(db: Session, engagement: Engagement, metric: str) -> list[MetricRollup]:
    db.expire_all()
    return list(
        db.exec(
            select(MetricRollup)
            .where(MetricRollup.engagement_id == engagement.id, MetricRollup.metric == metric)
            .order_by(col(MetricRollup.day))
        ).all()
    )


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db, signs_in=True)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    today = utcnow().date()
    return accepted_engagement(db, parties, start_date=today - timedelta(days=60))


def _day(days_ago: int) -> date:
    return utcnow().date() - timedelta(days=days_ago)


# --- rollups ---------------------------------------------------------------------------------


def test_rollups_are_upserted_for_the_touched_keys_only(
    db: Session, engagement: Engagement
) -> None:
    first = add_row(db, engagement, "impressions", 1000, _day(5), channel="instagram")
    second = add_row(
        db, engagement, "impressions", 500, _day(5), channel="instagram", source="import:meta"
    )
    other_day = add_row(db, engagement, "impressions", 70, _day(4), channel="instagram")
    assert refresh_rollups_for(db, engagement.id, [first, second]) >= 1
    db.commit()
    [only] = rollup_of(db, engagement, "impressions")  # day 4 was not touched: not there yet
    assert (only.total, only.row_count, only.backed_rows) == (Decimal(1500), 2, 1)

    refresh_rollups_for(db, engagement.id, [("impressions", other_day.period_start)])
    db.commit()
    assert [r.total for r in rollup_of(db, engagement, "impressions")] == [1500, 70]


def test_a_revision_a_dispute_and_a_verification_are_reflected(
    db: Session, engagement: Engagement
) -> None:
    row = add_row(db, engagement, "revenue", 100000, _day(3), currency="EUR")
    refresh_rollups_for(db, engagement.id, [row])
    db.commit()
    # A new revision supersedes the row: the old value stops counting.
    row.superseded_at = utcnow()
    db.add(row)
    db.commit()
    revised = add_row(db, engagement, "revenue", 120000, _day(3), currency="EUR")
    refresh_rollups_for(db, engagement.id, [revised])
    db.commit()
    [rollup] = rollup_of(db, engagement, "revenue")
    assert (rollup.total, rollup.row_count) == (Decimal(120000), 1)
    revised.status = ResultStatus.disputed
    db.add(revised)
    db.commit()
    refresh_rollups_for(db, engagement.id, [revised])
    db.commit()
    [rollup] = rollup_of(db, engagement, "revenue")
    assert (rollup.total, rollup.disputed_rows) == (Decimal(0), 1)
    revised.status = ResultStatus.verified
    db.add(revised)
    db.commit()
    refresh_rollups_for(db, engagement.id, [revised])
    db.commit()
    [rollup] = rollup_of(db, engagement, "revenue")
    assert (rollup.total, rollup.backed_rows, rollup.disputed_rows) == (Decimal(120000), 1, 0)
    # Gone altogether (say the row moved to another day): the key is pruned.
    db.delete(revised)
    db.commit()
    refresh_rollups_for(db, engagement.id, [("revenue", _day(3))])
    db.commit()
    assert rollup_of(db, engagement, "revenue") == []


# --- the API ---------------------------------------------------------------------------------


def _results(db: Session, engagement: Engagement) -> None:
    rows = [
        add_row(db, engagement, "impressions", 40000, _day(20), channel="instagram",
                source="import:meta"),
        add_row(db, engagement, "impressions", 10000, _day(10), channel="facebook"),
        add_row(db, engagement, "link_clicks", 500, _day(10), channel="facebook"),
        add_row(db, engagement, "revenue", 900000, _day(10), currency="EUR",
                status=ResultStatus.verified),
        add_row(db, engagement, "coupon_redemptions", 150, _day(10)),
        add_row(db, engagement, "reach", 30000, _day(30), end=_day(1)),
        add_row(db, engagement, "reach", 25000, _day(10)),
        add_row(db, engagement, "conversions", 999, _day(9), status=ResultStatus.disputed),
    ]  # fmt: skip
    refresh_rollups_for(db, engagement.id, rows)
    db.commit()


def test_scorecard_api_computes_rates_as_totals_and_states_why_a_number_is_missing(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    add_kpi(db, parties, engagement.id, metric="coupon_redemptions", target=Decimal(300))
    add_kpi(
        db, parties, engagement.id, metric="ctr", target=Decimal("0.01"), baseline=Decimal("0.005")
    )
    _results(db, engagement)
    token = create_token(db, parties.lead, parties.brand)
    response = client.get(
        f"{API}/engagements/{engagement.id}/scorecard",
        params={"from": _day(30).isoformat(), "to": _day(0).isoformat()},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    metrics = body["metrics"]
    assert metrics["impressions"]["value"] == 50000
    # CTR = 500 ÷ 50,000, not an average of the channels' rates.
    assert metrics["ctr"]["value"] == pytest.approx(0.01)
    assert (metrics["ctr"]["numerator"], metrics["ctr"]["denominator"]) == (500, 50000)
    # Reach: the row covering the whole period, never 30,000 + 25,000.
    assert metrics["reach"]["value"] == 30000
    # The disputed conversions are out; nothing says the conversion rate without a base.
    assert "conversions" not in metrics or metrics["conversions"]["value"] is None
    # No new customers: CPA has no number and says why; no infinity, no NaN.
    assert metrics["cpa"]["value"] is None and metrics["cpa"]["reason"]
    assert body["measurement"] == {"rows": 8, "backed_rows": 2, "disputed_rows": 1}
    assert body["costs"]["fees_minor"] == 0
    kpis = {k["metric"]: k for k in body["kpis"]}
    # 150 redemptions against a 300-a-month target pro rata over 31 days.
    expected = 150 / (300 * 31 / 30.4375)
    assert kpis["coupon_redemptions"]["attainment"]["value"] == pytest.approx(expected, rel=1e-6)
    results = next(p for p in body["parts"] if p["part"] == "results")
    assert results["points"] is not None
    # No delivery, quality data yet: dropped, and the covered share says how little backs it.
    assert 0 < body["covered_share"] < 1
    assert body["low_data"] is True
    assert body["brand_side"]["approval_wait_median_hours"] is None


def test_scorecard_as_csv_with_the_accept_header(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    token = create_token(db, parties.manager, parties.agency)
    response = client.get(
        f"{API}/engagements/{engagement.id}/scorecard",
        headers={**bearer(token), "Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:2] == ["Part", "Measure"]
    assert len(rows) == 1 + 11


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("scorecard", {"from": "2026-05-02", "to": "2026-05-01"}, "from"),
        ("scorecard", {"from": "yesterday"}, "from"),
        ("metrics", {"metric": "followers"}, "metric"),
        ("metrics", {"metric": "ctr", "grain": "fortnight"}, "grain"),
    ],
)
def test_bad_periods_metrics_and_grains_are_422_with_field_errors(
    client: TestClient,
    db: Session,
    parties: Parties,
    engagement: Engagement,
    path: str,
    params: dict[str, str],
    field: str,
) -> None:
    token = create_token(db, parties.lead, parties.brand)
    response = client.get(
        f"{API}/engagements/{engagement.id}/{path}", params=params, headers=bearer(token)
    )
    assert response.status_code == 422
    assert field in {error["field"] for error in response.json()["errors"]}


def test_metric_series_by_grain_never_sums_reach(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    _results(db, engagement)
    token = create_token(db, parties.lead, parties.brand)
    params = {"from": _day(30).isoformat(), "to": _day(0).isoformat(), "grain": "day"}
    clicks = client.get(
        f"{API}/engagements/{engagement.id}/metrics",
        params={**params, "metric": "ctr"},
        headers=bearer(token),
    ).json()
    by_day = {p["from"]: p for p in clicks["points"]}
    assert by_day[_day(10).isoformat()]["value"] == pytest.approx(0.05)  # 500 ÷ 10,000
    empty = by_day[_day(15).isoformat()]
    assert empty["value"] is None and empty["reason"]
    as_csv = client.get(
        f"{API}/engagements/{engagement.id}/metrics",
        params={**params, "metric": "reach", "grain": "month"},
        headers={**bearer(token), "Accept": "text/csv"},
    )
    values = [row[1] for row in list(csv.reader(io.StringIO(as_csv.text)))[1:] if row[1]]
    assert values and all(Decimal(v) in (Decimal(30000), Decimal(25000)) for v in values)


def test_a_foreign_engagement_is_404(
    client: TestClient, db: Session, engagement: Engagement
) -> None:
    stranger = make_parties(db)
    token = create_token(db, stranger.lead, stranger.brand)
    response = client.get(f"{API}/engagements/{engagement.id}/scorecard", headers=bearer(token))
    assert response.status_code == 404


# --- pages -------------------------------------------------------------------------------------


def test_scorecard_page_links_every_number_to_its_rows(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    add_kpi(db, parties, engagement.id, metric="coupon_redemptions", target=Decimal(300))
    _results(db, engagement)
    sign_in(client, parties.lead.email)
    page = client.get(f"/engagements/{engagement.id}/scorecard")
    assert page.status_code == 200
    assert "scorecard/rows?" in page.text and "metric=coupon_redemptions" in page.text
    assert "<svg" in page.text and "<table" in page.text
    rows = client.get(
        f"/engagements/{engagement.id}/scorecard/rows",
        params={"metric": "coupon_redemptions", "from": _day(30).isoformat()},
    )
    assert rows.status_code == 200
    assert "150" in rows.text
    disputed = client.get(
        f"/engagements/{engagement.id}/scorecard/rows", params={"measure": "backed"}
    )
    assert "disputed" in disputed.text


def test_an_empty_period_says_what_is_missing_rather_than_zeros(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    sign_in(client, parties.manager.email)
    page = client.get(f"/engagements/{engagement.id}/scorecard")
    assert page.status_code == 200
    assert "Nothing to score in this period" in page.text
    bad = client.get(
        f"/engagements/{engagement.id}/scorecard", params={"from": "2026-05-02", "to": "2026-05-01"}
    )
    assert bad.status_code == 422
    assert "The start must be on or before the end." in bad.text


def _weights_form(client: TestClient, engagement: Engagement, **values: Any) -> Any:
    page = client.get(f"/engagements/{engagement.id}/scorecard")
    from tests.conftest import csrf_of

    return client.post(
        f"/engagements/{engagement.id}/scorecard/weights",
        data={"csrf_token": csrf_of(page.text), **{k: str(v) for k, v in values.items()}},
        headers={"HX-Request": "true", "HX-Target": "scorecard-main"},
    )


def test_the_brand_lead_sets_weights_that_must_add_up_to_100(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    _results(db, engagement)
    sign_in(client, parties.lead.email)
    refused = _weights_form(client, engagement, results=50, delivery=30, quality=30)
    assert refused.status_code == 422
    assert "The weights must add up to 100." in refused.text
    saved = _weights_form(client, engagement, results=70, delivery=20, quality=10)
    assert saved.status_code == 200
    assert "Weights saved." in saved.text
    db.expire_all()
    row = db.exec(
        select(ScorecardWeights).where(ScorecardWeights.engagement_id == engagement.id)
    ).one()
    assert (row.results, row.delivery, row.quality) == (70, 20, 10)


def test_the_agency_cannot_change_the_weights(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    _results(db, engagement)
    sign_in(client, parties.manager.email)
    response = _weights_form(client, engagement, results=100, delivery=0, quality=0)
    assert response.status_code == 403


def test_csv_downloads_neutralise_formulas(
    client: TestClient, db: Session, parties: Parties
) -> None:
    engagement = accepted_engagement(db, parties, name='=HYPERLINK("http://x")')
    sign_in(client, parties.lead.email)
    response = client.get(f"/brands/{parties.brand.slug}/comparison.csv")
    assert response.status_code == 200
    assert "'=HYPERLINK" in response.text
    assert engagement.name in response.text.replace("'", "", 1).replace('""', '"')


def test_scorecard_pdf_is_a_pdf_in_the_readers_language(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    skip_without_pdf()
    _results(db, engagement)
    sign_in(client, parties.lead.email)
    response = client.get(
        f"/engagements/{engagement.id}/scorecard.pdf", headers={"Accept-Language": "es"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_reach_reported_per_channel_is_not_added_across_channels(
    client: TestClient, db: Session, parties: Parties, engagement: Engagement
) -> None:
    for channel, reach in (("instagram", 40000), ("linkedin", 9000)):
        add_row(db, engagement, "reach", reach, _day(30), end=_day(1), channel=channel)
    token = create_token(db, parties.lead, parties.brand)
    url = f"{API}/engagements/{engagement.id}/scorecard"
    params = {"from": _day(30).isoformat(), "to": _day(1).isoformat()}
    everywhere = client.get(url, params=params, headers=bearer(token)).json()
    assert everywhere["metrics"]["reach"]["value"] is None  # never 49,000
    assert "per channel" in everywhere["metrics"]["reach"]["reason"]
    one = client.get(url, params={**params, "channel": "instagram"}, headers=bearer(token)).json()
    assert one["metrics"]["reach"]["value"] == 40000
