"""Delivery measures for the scorecard (DOMAIN.md §3, "Delivery"), read-only.

For the scorecard: call these with an engagement the caller already sees (loaded
through ``engagements.service.access``); they never write and never check
capabilities. Periods are inclusive date ranges on the deliverable's due date.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from app.db import utcnow
from app.deliverables import repository
from app.deliverables.models import Deliverable, DeliverableStatus
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


NO_DELIVERIES = DeliveryCounts(
    due=0, on_time=0, late=0, delivered=0, first_decided=0, first_accepted=0, returned=0
)


def delivery_counts(
    session: Session, engagement: Engagement, start: date, end: date, *, now: datetime | None = None
) -> DeliveryCounts:
    """Counts for deliverables due between ``start`` and ``end`` (inclusive)."""
    due = repository.due_between(session, engagement, start, end)
    return delivery_counts_by_engagement(due, start, end, now=now).get(engagement.id, NO_DELIVERIES)


def delivery_counts_by_engagement(
    deliverables: Iterable[Deliverable],
    start: date,
    end: date,
    *,
    now: datetime | None = None,
) -> dict[uuid.UUID, DeliveryCounts]:
    """The counts of each engagement among deliverables already loaded, several at once.

    The scorecard loads the deliverables of all the engagements it compares in one
    query and counts them here; only those due between ``start`` and ``end``
    (inclusive) and already due at ``now`` count. An engagement with none is absent.
    """
    now = now or utcnow()
    by_engagement: dict[uuid.UUID, list[Deliverable]] = defaultdict(list)
    for row in deliverables:
        if start <= row.due_on <= end and row.due_at <= now:
            by_engagement[row.engagement_id].append(row)
    return {engagement_id: _count(due) for engagement_id, due in by_engagement.items()}


def _count(due: Sequence[Deliverable]) -> DeliveryCounts:
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
