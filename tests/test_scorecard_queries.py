"""The scorecard pages read each kind of record once for all the engagements they show.

A comparison of two agencies and one of five must issue the same number of
statements: a query per engagement (an N+1) makes the second count larger, and
this test fails. The statements are counted on the calling thread only, so the
app's background jobs never blur the count.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.content.models import Decision, DecisionKind, Post, PostStatus, PostVersion
from app.db import Database, utcnow
from app.deliverables.models import Deliverable, DeliverableStatus
from app.engagements.models import Engagement, Fee
from app.escalations.models import Escalation, Outcome
from app.scorecards import service
from app.scorecards.models import ScorecardWeights
from app.scorecards.rollups import refresh_rollups_for
from app.tenancy.service import actor_for
from tests.engagement_factories import (
    Parties,
    accepted_engagement,
    add_kpi,
    grant,
    make_parties,
)
from tests.test_scorecard import add_row


def _day(days_ago: int) -> date:
    return utcnow().date() - timedelta(days=days_ago)


def _with_records(db: Session, parties: Parties, name: str) -> Engagement:
    """An engagement with every kind of record a scorecard reads, all inside the last quarter."""
    engagement = accepted_engagement(db, parties, name=name, start_date=_day(80))
    add_kpi(db, parties, engagement.id, metric="revenue", target=Decimal(20000))
    add_kpi(db, parties, engagement.id, metric="reach", target=Decimal(50000))
    keys = {"brand_id": engagement.brand_id, "engagement_id": engagement.id}
    rows = [
        add_row(db, engagement, "impressions", 120000, _day(20), channel="instagram"),
        add_row(db, engagement, "revenue", 1800000, _day(20), currency="EUR"),
        add_row(db, engagement, "ad_spend", 90000, _day(20), currency="EUR"),
        add_row(db, engagement, "reach", 40000, _day(60), end=_day(1)),
    ]
    refresh_rollups_for(db, engagement.id, rows)
    now = utcnow()
    post = Post(**keys, title="Trail teaser", status=PostStatus.approved, rounds=2,
                current_version=2, submitted_at=now - timedelta(days=8))  # fmt: skip
    db.add(post)
    db.flush()
    for number, days in ((1, 12), (2, 8)):
        db.add(PostVersion(**keys, post_id=post.id, number=number, body=f"v{number}",
                           content_hash=f"{number:064d}", author_name="Agency",
                           created_at=now - timedelta(days=days)))  # fmt: skip
    for round_, kind, days in ((1, DecisionKind.request_changes, 10),
                               (2, DecisionKind.approve, 7)):  # fmt: skip
        db.add(Decision(**keys, post_id=post.id, version_number=round_,
                        version_hash=f"{round_:064d}", round=round_, step=1, decision=kind,
                        decider_name="Brand", created_at=now - timedelta(days=days)))  # fmt: skip
    due = now - timedelta(days=15)
    db.add(Deliverable(**keys, kind="posts", title="12 × posts", period_start=_day(45),
                       period_end=_day(15), due_on=due.date(), due_at=due,
                       status=DeliverableStatus.accepted, rounds=1,
                       first_delivered_at=due - timedelta(hours=3)))  # fmt: skip
    opened = now - timedelta(days=5)
    db.add(Escalation(**keys, kind="sales_lead", conversation_url="https://x.example",
                      summary="Bulk order", route_team="Sales", route_contact_name="Sales",
                      route_contact_email="sales@brand.example", sla_hours=24,
                      opened_at=opened, sla_due_at=opened + timedelta(hours=24),
                      opened_by_name="Agency", acknowledged_at=opened + timedelta(hours=2),
                      resolved_at=opened + timedelta(days=1), outcome=Outcome.won,
                      revenue_minor=250000))  # fmt: skip
    db.add(Fee(**keys, kind="monthly", amount_minor=300000))
    db.add(ScorecardWeights(**keys, results=60, delivery=20, quality=20))
    db.commit()
    return engagement


@contextmanager
def _counted() -> Iterator[list[str]]:
    """The statements this thread sends while the block runs."""
    statements: list[str] = []
    me = threading.get_ident()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == me:
            statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


Measured = dict[str, tuple[int, Any]]


def _measure(database: Database, parties: Parties, engagement: Engagement) -> Measured:
    """Statements (and results) of each scorecard read, each in a fresh session as a request."""
    period = service.parse_period(None, None)
    reads: dict[str, tuple[uuid.UUID, Callable[[Session, Any], Any]]] = {
        "comparison": (
            parties.lead.id,
            lambda s, actor: service.compare_brand(s, actor, parties.brand.slug, period),
        ),
        "agency scorecards": (
            parties.manager.id,
            lambda s, actor: service.agency_scorecards(s, actor, parties.agency.slug, period),
        ),
        "engagement scorecard": (
            parties.lead.id,
            lambda s, _: service.engagement_scorecard(
                s, grant(s, parties.lead, engagement.id), period
            ),
        ),
        "metric series": (
            parties.lead.id,
            lambda s, _: service.metric_series_many(
                s, grant(s, parties.lead, engagement.id), ["revenue", "reach", "cpm"], period
            ),
        ),
    }
    measured: Measured = {}
    for name, (user_id, read) in reads.items():
        with database.tenant_scope(user_id=user_id) as session:
            user = parties.lead if user_id == parties.lead.id else parties.manager
            actor = actor_for(session, user)
            with _counted() as statements:
                result = read(session, actor)
            measured[name] = (len(statements), result)
    return measured


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db)


def test_scorecard_reads_do_not_grow_with_the_number_of_engagements(
    db: Session, database: Database, parties: Parties
) -> None:
    first = _with_records(db, parties, "First")
    rival = make_parties(db, brand=parties.brand)
    _with_records(db, rival, "Rival")
    before = _measure(database, parties, first)
    assert len(before["comparison"][1].rows) == 2

    # Three more engagements with the same kinds of records: one more of the same
    # agency (for its own scorecards page) and two of new agencies of the brand; and
    # the agency gains a second client, whose portfolio its page reads too.
    _with_records(db, parties, "Second")
    for index in range(2):
        _with_records(db, make_parties(db, brand=parties.brand), f"Newcomer {index}")
    _with_records(db, make_parties(db, agency=parties.agency), "Other client")
    after = _measure(database, parties, first)

    comparison = after["comparison"][1]
    assert len(comparison.rows) == 5
    agency_rows = after["agency scorecards"][1].rows
    assert len(agency_rows) == 3 and len({row.engagement.brand_id for row in agency_rows}) == 2
    # The agency sees the same numbers as the brand, each client in its own portfolio.
    brand_sees = {row.engagement.id: row.card.combined for row in comparison.rows}
    assert [row.card.combined for row in agency_rows if row.engagement.id in brand_sees] == [
        brand_sees[row.engagement.id] for row in agency_rows if row.engagement.id in brand_sees
    ]
    # Every row is built from its own records (not an empty card that costs nothing).
    for row in comparison.rows:
        assert row.card.has_any_data and row.card.weights_custom
        assert row.card.figures["roi"].value is not None
        assert row.card.measures_of("delivery")[0].trials == 1
    assert {name: count for name, (count, _) in after.items()} == {
        name: count for name, (count, _) in before.items()
    }


def test_a_comparison_reads_a_fixed_handful_of_statements(
    db: Session, database: Database, parties: Parties
) -> None:
    first = _with_records(db, parties, "First")
    for index in range(2):
        _with_records(db, make_parties(db, brand=parties.brand), f"Rival {index}")
    counts = {name: count for name, (count, _) in _measure(database, parties, first).items()}
    # Access checks, the brand's engagements, posts, decisions, versions, deliverables,
    # escalations, rollups, agencies' names, result snapshots, fees, KPIs and weights:
    # about twenty, whatever the number of engagements (it was 10 to 12 per engagement).
    assert counts["comparison"] <= 24, counts
    assert counts["metric series"] <= 6, counts
