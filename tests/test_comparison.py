"""The brand's comparison of its agencies and an agency's scorecards across its clients:
who may see them, what is compared (rates and unit costs only), and the downloads."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db import utcnow
from app.engagements.models import Engagement
from app.scorecards import repository
from app.scorecards.rollups import refresh_rollups_for
from app.tenancy.models import OrgKind, Role
from tests.engagement_factories import Parties, accepted_engagement, add_kpi, make_parties, person
from tests.factories import bearer, create_org, create_token, sign_in
from tests.pdf_support import skip_without_pdf
from tests.test_scorecard import add_row

API = "/api/v1"


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db, signs_in=True)


def _day(days_ago: int) -> date:
    return utcnow().date() - timedelta(days=days_ago)


def _two_agencies(db: Session, parties: Parties) -> tuple[Engagement, Engagement, Parties]:
    """Agency A strong on results; agency B (a second agency of the same brand) thin on them."""
    strong = accepted_engagement(db, parties, name="Strong", start_date=_day(80))
    rival = make_parties(db, brand=parties.brand, signs_in=True)
    thin = accepted_engagement(db, rival, name="Thin", start_date=_day(80))
    add_kpi(db, parties, strong.id, metric="coupon_redemptions", target=Decimal(100))
    add_kpi(db, rival, thin.id, metric="reach", target=Decimal(100000))
    rows = [
        add_row(db, strong, "impressions", 200000, _day(40), channel="instagram"),
        add_row(db, strong, "coupon_redemptions", 260, _day(40)),
        add_row(db, strong, "revenue", 2500000, _day(40), currency="EUR"),
    ]
    refresh_rollups_for(db, strong.id, rows)
    thin_rows = [
        add_row(db, thin, "impressions", 90000, _day(30), channel="instagram"),
        add_row(db, thin, "reach", 60000, _day(60), end=_day(1)),
    ]
    refresh_rollups_for(db, thin.id, thin_rows)
    db.commit()
    return strong, thin, rival


def test_brand_lead_compares_agencies_by_rates_and_unit_costs(
    client: TestClient, db: Session, parties: Parties
) -> None:
    _two_agencies(db, parties)
    token = create_token(db, parties.lead, parties.brand)
    response = client.get(f"{API}/brands/{parties.brand.slug}/comparison", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    by_name = {row["engagement"]: row for row in body["rows"]}
    assert set(by_name) == {"Strong", "Thin"}
    assert by_name["Strong"]["kpi_attainment"]["value"] > 0
    assert by_name["Strong"]["business_kpi_share"]["value"] == 1
    assert by_name["Thin"]["business_kpi_share"]["value"] == 0
    # No totals in the comparison: impressions, revenue and reach are not there at all.
    flat = json.dumps(body)
    assert '"impressions"' not in flat and '"revenue"' not in flat
    assert set(by_name["Strong"]["unit_costs_and_rates"]) >= {"cpm", "cpa", "roi"}
    # A monthly trend for each.
    assert len(by_name["Strong"]["trend"]) >= 3


def test_comparison_is_for_brand_leads_only(
    client: TestClient, db: Session, parties: Parties
) -> None:
    _two_agencies(db, parties)
    reviewer = create_token(db, parties.reviewer, parties.brand)
    refused = client.get(f"{API}/brands/{parties.brand.slug}/comparison", headers=bearer(reviewer))
    assert refused.status_code == 403
    agency = create_token(db, parties.manager, parties.agency)
    hidden = client.get(f"{API}/brands/{parties.brand.slug}/comparison", headers=bearer(agency))
    assert hidden.status_code == 404


def test_an_agency_sees_its_own_scorecards_never_a_rivals(
    client: TestClient, db: Session, parties: Parties
) -> None:
    _, _, rival = _two_agencies(db, parties)
    other_brand = create_org(db, kind=OrgKind.brand, name="Other brand")
    person(db, other_brand, Role.lead, label="Other Lead")
    token = create_token(db, parties.manager, parties.agency)
    response = client.get(f"{API}/agencies/{parties.agency.slug}/scorecards", headers=bearer(token))
    assert response.status_code == 200
    names = [row["engagement"] for row in response.json()["rows"]]
    assert names == ["Strong"]
    assert "Thin" not in response.text and rival.agency.name not in response.text
    foreign = client.get(f"{API}/agencies/{rival.agency.slug}/scorecards", headers=bearer(token))
    assert foreign.status_code == 404
    as_csv = client.get(
        f"{API}/agencies/{parties.agency.slug}/scorecards",
        headers={**bearer(token), "Accept": "text/csv"},
    )
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert [r[1] for r in rows[1:]] == ["Strong"]


def test_bad_comparison_input_is_422(client: TestClient, db: Session, parties: Parties) -> None:
    token = create_token(db, parties.lead, parties.brand)
    for params, field in (
        ({"from": "2026-06-01", "to": "2026-05-01"}, "from"),
        ({"stage": "loyalty"}, "stage"),
    ):
        response = client.get(
            f"{API}/brands/{parties.brand.slug}/comparison", params=params, headers=bearer(token)
        )
        assert response.status_code == 422
        assert field in {e["field"] for e in response.json()["errors"]}


def test_comparison_page_and_its_pdf_for_a_lead(
    client: TestClient, db: Session, parties: Parties
) -> None:
    _two_agencies(db, parties)
    sign_in(client, parties.lead.email)
    page = client.get(f"/brands/{parties.brand.slug}/comparison")
    assert page.status_code == 200
    assert "Strong" in page.text and "Thin" in page.text
    assert page.text.count("<svg") >= 2
    spanish = client.get(
        f"/brands/{parties.brand.slug}/comparison", headers={"Accept-Language": "es"}
    )
    assert spanish.headers["content-language"] in ("es", "en")
    skip_without_pdf()
    pdf = client.get(f"/brands/{parties.brand.slug}/comparison.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_an_empty_comparison_says_so(client: TestClient, db: Session, parties: Parties) -> None:
    sign_in(client, parties.lead.email)
    page = client.get(
        f"/brands/{parties.brand.slug}/comparison",
        params={"from": "2020-01-01", "to": "2020-03-31"},
    )
    assert page.status_code == 200
    assert "No engagement ran in this period" in page.text


def test_the_comparison_query_is_one_statement_over_the_rollups(
    db: Session, parties: Parties
) -> None:
    strong, thin, _ = _two_agencies(db, parties)
    series = repository.rollup_series(
        db,
        parties.brand.id,
        [strong.id, thin.id],
        _day(90),
        _day(0),
        grain="month",
    )
    totals = {(e, m): t.total for e, m, _, t in series}
    assert totals[(strong.id, "coupon_redemptions")] == Decimal(260)
    assert totals[(thin.id, "impressions")] == Decimal(90000)
