"""Demo: the scorecards' part of the story, loaded after every other part.

The results, deliverables and escalations of the demo come from their own demo
loaders; here the daily rollups of every demo engagement are brought up to date
from its current result rows (so the comparison tells the story whichever path
wrote them), and Northwind, in development and strong on results, gets the
weights its lead chose: results first.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.engagements.models import Engagement
from app.results.models import ResultRow
from app.scorecards.models import ScorecardWeights
from app.scorecards.rollups import refresh_rollups_for
from app.tenancy import repository as tenancy_repository


def load(session: Session) -> None:
    brand = tenancy_repository.get_org_by_slug_unscoped(session, "acme")
    if brand is None:
        return
    engagements = session.exec(select(Engagement).where(Engagement.brand_id == brand.id)).all()
    for engagement in engagements:
        keys = session.execute(
            sa.select(col(ResultRow.metric), col(ResultRow.period_start))
            .where(
                col(ResultRow.brand_id) == brand.id,
                col(ResultRow.engagement_id) == engagement.id,
                sa.text("superseded_at IS NULL"),
            )
            .distinct()
        ).all()
        refresh_rollups_for(session, engagement.id, [(metric, day) for metric, day in keys])
        if engagement.name == "Social media 2026" and _weights(session, engagement) is None:
            session.add(
                ScorecardWeights(
                    brand_id=brand.id, engagement_id=engagement.id,
                    results=55, delivery=25, quality=20,
                )
            )  # fmt: skip
    session.flush()


def _weights(session: Session, engagement: Engagement) -> ScorecardWeights | None:
    return session.exec(
        select(ScorecardWeights).where(
            ScorecardWeights.brand_id == engagement.brand_id,
            ScorecardWeights.engagement_id == engagement.id,
        )
    ).first()
