"""Delivery measures for the scorecard (DOMAIN.md §3, "Delivery"), read-only.

For the scorecard: call these with an engagement the caller already sees (loaded
through ``engagements.service.access``); they never write and never check
capabilities. Periods are inclusive date ranges on the deliverable's due date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from app.db import utcnow
from app.deliverables import repository
from app.deliverables.models import DeliverableStatus
from app.engagements.models import Engagement


@dataclass(frozen=True)
class DeliveryCounts:
    """What the agency owed in a period, and how it delivered.

    - ``due``: deliverables whose due date is in the period and whose due moment has
      passed (``due_at <= now``): the denominator of the on-time rate.
    - ``on_time``: of those, first delivered no later than ``due_at``.
    - ``late``: of those, first delivered after ``due_at``, or still undelivered.
    - ``delivered``: of those, delivered at least once.
    - ``first_decided``: of those, whose first delivery the brand has answered
      (accepted, or returned — a second round means the first was returned).
    - ``first_accepted``: of those, accepted on their first delivery (one round):
      the numerator of the first-delivery acceptance rate, over ``first_decided``.
    - ``returned``: deliveries sent back at least once (rounds > 1, or returned now).
    """

    due: int
    on_time: int
    late: int
    delivered: int
    first_decided: int
    first_accepted: int
    returned: int

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.due if self.due else None

    @property
    def first_acceptance_rate(self) -> float | None:
        return self.first_accepted / self.first_decided if self.first_decided else None


def delivery_counts(
    session: Session, engagement: Engagement, start: date, end: date, *, now: datetime | None = None
) -> DeliveryCounts:
    """Counts for deliverables due between ``start`` and ``end`` (inclusive)."""
    now = now or utcnow()
    due = [
        row for row in repository.due_between(session, engagement, start, end) if row.due_at <= now
    ]
    on_time = sum(
        1
        for row in due
        if row.first_delivered_at is not None and row.first_delivered_at <= row.due_at
    )
    delivered = [row for row in due if row.first_delivered_at is not None]
    first_decided = [
        row
        for row in delivered
        if row.rounds > 1 or row.status in (DeliverableStatus.accepted, DeliverableStatus.returned)
    ]
    first_accepted = sum(
        1 for row in first_decided if row.status == DeliverableStatus.accepted and row.rounds == 1
    )
    returned = sum(
        1 for row in delivered if row.rounds > 1 or row.status == DeliverableStatus.returned
    )
    return DeliveryCounts(
        due=len(due),
        on_time=on_time,
        late=len(due) - on_time,
        delivered=len(delivered),
        first_decided=len(first_decided),
        first_accepted=first_accepted,
        returned=returned,
    )
