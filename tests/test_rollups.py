"""Rollup upkeep: exactly the named (metric, day) keys are re-aggregated, however many."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.engagements.models import Engagement
from app.results.models import ResultRow
from app.scorecards import rollups
from app.scorecards.models import MetricRollup
from app.scorecards.rollups import refresh_rollups_for
from tests.engagement_factories import Parties, accepted_engagement, make_parties

FIRST = date(2026, 1, 1)
DAYS = 200


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    return accepted_engagement(db, parties, currency="EUR")


def add_rows(db: Session, engagement: Engagement) -> None:
    for offset in range(DAYS):
        day = FIRST + timedelta(days=offset)
        for channel in ("instagram", "facebook"):
            db.add(
                ResultRow(
                    brand_id=engagement.brand_id,
                    engagement_id=engagement.id,
                    row_key=f"{channel}-{offset}",
                    channel=channel,
                    metric="impressions",
                    period_start=day,
                    period_end=day,
                    value=Decimal(offset + 1),
                    source="api",
                )
            )
    db.add(
        ResultRow(
            brand_id=engagement.brand_id,
            engagement_id=engagement.id,
            row_key="reach",
            channel="instagram",
            metric="reach",
            period_start=FIRST,
            period_end=FIRST,
            value=Decimal(5),
            source="api",
        )
    )
    db.commit()


def totals(db: Session, engagement: Engagement) -> dict[tuple[str, str, date], Decimal]:
    db.expire_all()
    found = db.exec(select(MetricRollup).where(MetricRollup.engagement_id == engagement.id)).all()
    return {(r.metric, r.channel, r.day): r.total for r in found}


def all_keys() -> list[tuple[str, date]]:
    return [("impressions", FIRST + timedelta(days=offset)) for offset in range(DAYS)]


def test_many_keys_are_refreshed_and_nothing_else(db: Session, engagement: Engagement) -> None:
    assert DAYS > rollups.MAX_NAMED_KEYS
    add_rows(db, engagement)
    assert refresh_rollups_for(db, engagement.id, all_keys()) == 2 * DAYS
    kept = totals(db, engagement)
    assert len(kept) == 2 * DAYS  # the reach row was not named: no rollup for it yet
    assert kept[("impressions", "facebook", FIRST + timedelta(days=41))] == Decimal(42)
    # Refreshing again changes nothing.
    refresh_rollups_for(db, engagement.id, all_keys())
    assert totals(db, engagement) == kept


def test_only_the_named_keys_are_re_aggregated_however_far_apart(
    db: Session, engagement: Engagement
) -> None:
    add_rows(db, engagement)
    refresh_rollups_for(db, engagement.id, all_keys())
    # Numbers change behind the rollups' back on three days: only the named two follow.
    db.execute(
        sa.update(ResultRow)
        .where(col(ResultRow.engagement_id) == engagement.id, ResultRow.metric == "impressions")
        .where(
            col(ResultRow.period_start).in_(
                [FIRST, FIRST + timedelta(days=50), FIRST + timedelta(days=99)]
            )
        )
        .values(value=1000)
    )
    db.commit()
    named = [("impressions", FIRST), ("impressions", FIRST + timedelta(days=99))]
    assert refresh_rollups_for(db, engagement.id, named) == 4
    after = totals(db, engagement)
    assert after[("impressions", "instagram", FIRST)] == Decimal(1000)
    assert after[("impressions", "facebook", FIRST + timedelta(days=99))] == Decimal(1000)
    assert after[("impressions", "instagram", FIRST + timedelta(days=50))] == Decimal(51)


def test_keys_whose_rows_are_gone_lose_their_rollup(db: Session, engagement: Engagement) -> None:
    add_rows(db, engagement)
    refresh_rollups_for(db, engagement.id, all_keys())
    gone = FIRST + timedelta(days=10)
    db.execute(
        sa.delete(ResultRow).where(
            col(ResultRow.engagement_id) == engagement.id,
            ResultRow.period_start == gone,
            ResultRow.channel == "facebook",
        )
    )
    db.commit()
    refresh_rollups_for(db, engagement.id, all_keys())
    after = totals(db, engagement)
    assert ("impressions", "facebook", gone) not in after
    assert after[("impressions", "instagram", gone)] == Decimal(11)
    assert len(after) == 2 * DAYS - 1


def test_many_keys_far_apart_are_named_on_postgresql(db: Session, engagement: Engagement) -> None:
    add_rows(db, engagement)
    refresh_rollups_for(db, engagement.id, all_keys())
    db.execute(
        sa.update(ResultRow)
        .where(col(ResultRow.engagement_id) == engagement.id, ResultRow.metric == "impressions")
        .values(value=1000)
    )
    db.commit()
    # Every third day: too sparse for the range alone, and more keys than SQLite names.
    named = all_keys()[::3]
    assert len(named) > rollups.MAX_NAMED_KEYS
    refresh_rollups_for(db, engagement.id, named)
    after = totals(db, engagement)
    assert all(after[("impressions", "instagram", day)] == 1000 for _, day in named)
    between = FIRST + timedelta(days=1)
    if db.get_bind().dialect.name == "postgresql":
        # Exactly the named keys, through the arrays: the days between keep their totals.
        assert after[("impressions", "instagram", between)] == Decimal(2)
    else:
        # SQLite re-aggregates the whole range instead: right, just more work.
        assert after[("impressions", "instagram", between)] == Decimal(1000)
