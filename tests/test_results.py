"""Results: rows by metric and period, revisions, verify and dispute, posts ↔ results."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit.models import AuditEntry
from app.content.models import Post
from app.db import utcnow
from app.engagements.models import Engagement
from app.results import service
from app.results.models import ResultRow
from app.scorecards.models import MetricRollup
from tests.engagement_factories import Parties, accepted_engagement, grant, make_parties
from tests.factories import bearer, create_token, sign_in
from tests.post_factories import draft

API = "/api/v1"
MONTH = (date(2026, 10, 1), date(2026, 10, 31))


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db, signs_in=True)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    today = utcnow().date()
    return accepted_engagement(
        db, parties, start_date=today - timedelta(days=200), end_date=today + timedelta(days=200)
    )


@pytest.fixture
def tokens(db: Session, parties: Parties) -> dict[str, str]:
    return {
        "manager": create_token(db, parties.manager, parties.agency),
        "creator": create_token(db, parties.creator, parties.agency),
        "reviewer": create_token(db, parties.reviewer, parties.brand),
        "lead": create_token(db, parties.lead, parties.brand),
    }


def row(metric: str = "impressions", value: Any = 12000, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metric": metric,
        "period_start": MONTH[0].isoformat(),
        "period_end": MONTH[1].isoformat(),
        "value": str(value),
        "channel": "instagram",
    }
    body.update(fields)
    return body


def send(
    client: TestClient, token: str, engagement_id: uuid.UUID, rows: list[dict[str, Any]]
) -> Any:
    return client.post(
        f"{API}/engagements/{engagement_id}/results", json=rows, headers=bearer(token)
    )


def all_rows(db: Session, engagement_id: uuid.UUID) -> list[ResultRow]:
    db.expire_all()
    return list(
        db.exec(
            select(ResultRow)
            .where(ResultRow.engagement_id == engagement_id)
            .order_by(col(ResultRow.metric), col(ResultRow.revision))
        ).all()
    )


# --- the API way in ------------------------------------------------------------------


def test_rows_are_written_with_provenance_and_resending_changes_nothing(
    client: TestClient,
    db: Session,
    engagement: Engagement,
    tokens: dict[str, str],
    parties: Parties,
) -> None:
    rows = [
        row("impressions", 12000),
        row("reach", 8000),
        row("revenue", 150000, channel="", currency="EUR"),
        row("engagement_rate_reach", "0.035"),
    ]
    first = send(client, tokens["manager"], engagement.id, rows)
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 4, "revised": 0, "unchanged": 0}
    again = send(client, tokens["manager"], engagement.id, rows)
    assert again.json() == {"created": 0, "revised": 0, "unchanged": 4}
    stored = all_rows(db, engagement.id)
    assert len(stored) == 4
    revenue = next(r for r in stored if r.metric == "revenue")
    assert revenue.value == Decimal(150000) and revenue.currency == "EUR"
    assert revenue.source == "api" and revenue.reported_by_id == parties.manager.id
    assert revenue.revision == 1 and revenue.superseded_at is None
    rate = next(r for r in stored if r.metric == "engagement_rate_reach")
    assert rate.value == Decimal("0.035")


def test_a_changed_value_makes_a_new_revision_and_keeps_the_old(
    client: TestClient, db: Session, engagement: Engagement, tokens: dict[str, str]
) -> None:
    send(client, tokens["manager"], engagement.id, [row("impressions", 12000)])
    answer = send(client, tokens["manager"], engagement.id, [row("impressions", 12500)])
    assert answer.json() == {"created": 0, "revised": 1, "unchanged": 0}
    old, new = all_rows(db, engagement.id)
    assert (old.revision, old.value) == (1, Decimal(12000)) and old.superseded_at is not None
    assert (new.revision, new.value) == (2, Decimal(12500)) and new.superseded_at is None
    listed = client.get(
        f"{API}/engagements/{engagement.id}/results", headers=bearer(tokens["reviewer"])
    ).json()
    assert listed["total"] == 1 and listed["items"][0]["value"] == "12500.000000"
    kinds = db.exec(select(AuditEntry.kind).where(AuditEntry.engagement_id == engagement.id)).all()
    assert kinds.count("results.reported") == 2


def test_one_batch_mixing_unchanged_changed_and_new_rows_is_merged_row_by_row(
    client: TestClient, db: Session, engagement: Engagement, tokens: dict[str, str]
) -> None:
    token = tokens["manager"]
    base = [
        row("impressions", 100),
        row("reach", 50),
        row("revenue", 1000, channel="", currency="EUR"),
    ]
    assert send(client, token, engagement.id, base).json() == {
        "created": 3, "revised": 0, "unchanged": 0,
    }  # fmt: skip
    second = [
        row("impressions", 100),  # the same: nothing to do
        row("reach", 60),  # changed: revision 2
        row("revenue", 1000, channel="", currency="EUR"),
        row("link_clicks", 7),  # new key
    ]
    assert send(client, token, engagement.id, second).json() == {
        "created": 1, "revised": 1, "unchanged": 2,
    }  # fmt: skip
    third = [row("reach", 70), row("impressions", 100), row("link_clicks", 7)]
    assert send(client, token, engagement.id, third).json() == {
        "created": 0, "revised": 1, "unchanged": 2,
    }  # fmt: skip
    stored = all_rows(db, engagement.id)
    reach = sorted((r for r in stored if r.metric == "reach"), key=lambda r: r.revision)
    assert [(r.revision, r.value) for r in reach] == [(1, 50), (2, 60), (3, 70)]
    assert [r.superseded_at is None for r in reach] == [False, False, True]
    current = {r.metric: r for r in stored if r.superseded_at is None}
    assert set(current) == {"impressions", "reach", "revenue", "link_clicks"}
    assert current["impressions"].revision == 1 and current["link_clicks"].revision == 1
    # The scorecard's rollups follow the current revision.
    [rollup] = db.exec(
        select(MetricRollup).where(
            MetricRollup.engagement_id == engagement.id, MetricRollup.metric == "reach"
        )
    ).all()
    assert (rollup.total, rollup.row_count) == (Decimal(70), 1)


@pytest.mark.parametrize(
    ("bad", "column", "fragment"),
    [
        (row("impressions", -5), "value", "cannot be negative"),
        (row("ctr", "1.4"), "value", "between 0 and 100 %"),
        (row("revenue", 100, currency="USD"), "currency", "differs from the engagement's"),
        (row("followers", 10), "metric", "Unknown metric"),
        (row("impressions", 10, period_start="2026-11-01", period_end="2026-10-01"), "period",
         "ends before it starts"),
        (row("impressions", "10.5"), "value", "whole number"),
    ],
)  # fmt: skip
def test_bad_rows_are_refused_by_line_and_nothing_is_written(
    client: TestClient,
    db: Session,
    engagement: Engagement,
    tokens: dict[str, str],
    bad: dict[str, Any],
    column: str,
    fragment: str,
) -> None:
    answer = send(client, tokens["manager"], engagement.id, [row("reach", 100), bad])
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["problem_count"] == 1
    problem = body["problems"][0]
    assert problem["line"] == 2 and problem["column"] == column
    assert fragment in problem["message"]
    assert all_rows(db, engagement.id) == []


def test_more_than_ten_thousand_rows_a_call_is_refused(
    client: TestClient, engagement: Engagement, tokens: dict[str, str]
) -> None:
    rows = [row("impressions", n, post_ref=f"p{n}") for n in range(service.MAX_API_ROWS + 1)]
    answer = send(client, tokens["manager"], engagement.id, rows)
    assert answer.status_code == 422


def test_the_same_key_twice_with_different_values_is_refused(
    client: TestClient, db: Session, engagement: Engagement, tokens: dict[str, str]
) -> None:
    answer = send(
        client, tokens["manager"], engagement.id, [row("impressions", 1), row("impressions", 2)]
    )
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["line"] == 2
    assert all_rows(db, engagement.id) == []


def test_only_the_agency_reports_and_only_the_brand_verifies(
    client: TestClient, db: Session, engagement: Engagement, tokens: dict[str, str]
) -> None:
    refused = send(client, tokens["reviewer"], engagement.id, [row()])
    assert refused.status_code == 403
    creator = send(client, tokens["creator"], engagement.id, [row()])
    assert creator.status_code == 403
    send(client, tokens["manager"], engagement.id, [row()])
    (stored,) = all_rows(db, engagement.id)
    by_agency = client.post(f"{API}/results/{stored.id}/verify", headers=bearer(tokens["manager"]))
    assert by_agency.status_code == 403
    verified = client.post(f"{API}/results/{stored.id}/verify", headers=bearer(tokens["reviewer"]))
    assert verified.status_code == 200 and verified.json()["status"] == "verified"


def test_foreign_engagements_and_rows_are_404(
    client: TestClient, db: Session, engagement: Engagement, tokens: dict[str, str]
) -> None:
    send(client, tokens["manager"], engagement.id, [row()])
    (stored,) = all_rows(db, engagement.id)
    stranger = make_parties(db)
    other = create_token(db, stranger.manager, stranger.agency)
    assert send(client, other, engagement.id, [row()]).status_code == 404
    assert (
        client.get(f"{API}/engagements/{engagement.id}/results", headers=bearer(other)).status_code
        == 404
    )
    brand_stranger = create_token(db, stranger.reviewer, stranger.brand)
    answer = client.post(
        f"{API}/results/{stored.id}/dispute",
        json={"reason": "x" * 3},
        headers=bearer(brand_stranger),
    )
    assert answer.status_code == 404


def test_a_disputed_row_is_shown_but_left_out_of_the_totals_until_settled(
    client: TestClient,
    db: Session,
    engagement: Engagement,
    tokens: dict[str, str],
    parties: Parties,
) -> None:
    send(
        client,
        tokens["manager"],
        engagement.id,
        [row("conversions", 40, channel="instagram"), row("conversions", 60, channel="facebook")],
    )
    rows = all_rows(db, engagement.id)
    facebook = next(r for r in rows if r.channel == "facebook")
    missing_reason = client.post(
        f"{API}/results/{facebook.id}/dispute",
        json={"reason": ""},
        headers=bearer(tokens["reviewer"]),
    )
    assert missing_reason.status_code == 422
    disputed = client.post(
        f"{API}/results/{facebook.id}/dispute",
        json={"reason": "Our shop saw 31 orders from Facebook in October."},
        headers=bearer(tokens["reviewer"]),
    )
    assert disputed.status_code == 200 and disputed.json()["status"] == "disputed"
    granted = grant(db, parties.reviewer, engagement.id)
    cell = service.table(db, granted.engagement)[MONTH]["conversions"]
    assert cell.value == Decimal(40) and cell.disputed == 1
    (headline,) = [h for h in service.headline(db, granted.engagement) if h.metric == "conversions"]
    assert headline.value == Decimal(40)
    # The agency settles it with a corrected number: a new revision, reported again.
    send(
        client,
        tokens["manager"],
        engagement.id,
        [row("conversions", 40, channel="instagram"), row("conversions", 31, channel="facebook")],
    )
    cell = service.table(db, grant(db, parties.reviewer, engagement.id).engagement)[MONTH][
        "conversions"
    ]
    assert cell.value == Decimal(71) and cell.disputed == 0
    superseded = client.post(
        f"{API}/results/{facebook.id}/verify", headers=bearer(tokens["reviewer"])
    )
    assert superseded.status_code == 409


def test_a_month_counts_each_number_once(
    client: TestClient,
    db: Session,
    engagement: Engagement,
    tokens: dict[str, str],
    parties: Parties,
) -> None:
    day = lambda n: date(2026, 10, n).isoformat()  # noqa: E731
    daily = [
        row("impressions", 100 * n, post_ref=f"post-{n}", period_start=day(n), period_end=day(n))
        for n in (3, 10, 17)
    ]
    send(client, tokens["manager"], engagement.id, daily)
    granted = grant(db, parties.reviewer, engagement.id)
    assert service.table(db, granted.engagement)[MONTH]["impressions"].value == Decimal(3000)
    # The whole page's figure for the month wins over the sum of its posts.
    send(client, tokens["manager"], engagement.id, [row("impressions", 5200)])
    cell = service.table(db, grant(db, parties.reviewer, engagement.id).engagement)[MONTH]
    assert cell["impressions"].value == Decimal(5200)
    # Reach is never added up: two channels' reach is shown as rows to open.
    send(
        client, tokens["manager"], engagement.id,
        [row("reach", 800), row("reach", 900, channel="facebook")],
    )  # fmt: skip
    reach = service.table(db, grant(db, parties.reviewer, engagement.id).engagement)[MONTH]["reach"]
    assert reach.rows == 2 and not reach.additive


def test_rows_match_posts_by_permalink_and_unmatched_ones_can_be_matched(
    client: TestClient,
    db: Session,
    engagement: Engagement,
    tokens: dict[str, str],
    parties: Parties,
) -> None:
    first = draft(client, tokens["manager"], engagement.id, title="Autumn teaser")
    second = draft(client, tokens["manager"], engagement.id, title="Autumn reveal")
    granted = grant(db, parties.manager, engagement.id)
    service.record_publication(
        db, granted, uuid.UUID(first["id"]), "https://www.instagram.com/p/AbC123/", None
    )
    db.commit()
    send(
        client,
        tokens["manager"],
        engagement.id,
        [
            row("impressions", 900, post_ref="https://instagram.com/p/AbC123?utm_source=x"),
            row("impressions", 700, post_ref="18012345678"),
        ],
    )
    rows = {r.post_ref: r for r in all_rows(db, engagement.id)}
    assert rows["https://instagram.com/p/AbC123?utm_source=x"].post_id == uuid.UUID(first["id"])
    assert rows["18012345678"].post_id is None
    granted = grant(db, parties.manager, engagement.id)
    assert service.match(db, granted, "18012345678", uuid.UUID(second["id"])) == 1
    db.commit()
    rows = {r.post_ref: r for r in all_rows(db, engagement.id)}
    assert rows["18012345678"].post_id == uuid.UUID(second["id"])
    post = db.get(Post, uuid.UUID(second["id"]))
    assert post is not None and post.platform_post_id == "18012345678"


# --- the pages ------------------------------------------------------------------------------


def test_the_period_form_saves_numbers_in_stored_units(
    client: TestClient, db: Session, engagement: Engagement, parties: Parties
) -> None:
    sign_in(client, parties.manager.email)
    page = client.get(f"/engagements/{engagement.id}/results")
    assert page.status_code == 200
    from tests.conftest import csrf_of

    answer = client.post(
        f"/engagements/{engagement.id}/results",
        data={
            "csrf_token": csrf_of(page.text),
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
            "channel": "",
            "metric_revenue": "1.234,50",
            "metric_ctr": "3.5",
            "metric_impressions": "",
        },
    )
    assert answer.status_code == 303, answer.text
    stored = {r.metric: r for r in all_rows(db, engagement.id)}
    assert stored["revenue"].value == Decimal(123450) and stored["revenue"].source == "form"
    assert stored["ctr"].value == Decimal("0.035")
    assert set(stored) == {"revenue", "ctr"}


def test_the_brand_disputes_on_the_page_in_place(
    client: TestClient,
    db: Session,
    engagement: Engagement,
    parties: Parties,
    tokens: dict[str, str],
) -> None:
    send(client, tokens["manager"], engagement.id, [row("impressions", 5000)])
    (stored,) = all_rows(db, engagement.id)
    sign_in(client, parties.reviewer.email)
    page = client.get(f"/engagements/{engagement.id}/results")
    assert "Dispute" in page.text and "Typed in" not in page.text
    from tests.conftest import csrf_of

    answer = client.post(
        f"/results/{stored.id}/dispute",
        data={"csrf_token": csrf_of(page.text), "reason": "The page shows 4,100."},
        headers={"HX-Request": "true", "HX-Target": "result-rows"},
    )
    assert answer.status_code == 200
    assert "The page shows 4,100." in answer.text and "<html" not in answer.text
    (stored,) = all_rows(db, engagement.id)
    assert stored.status == "disputed"
