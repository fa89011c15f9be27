"""Escalation measures for the checklist and the scorecard, read-only.

The SLA clock starts when the agency opens an escalation and stops when the brand
first takes it up: the first of ``acknowledged_at`` and ``resolved_at`` (resolving
without acknowledging first also takes it up). An escalation is

- ``met`` when it was taken up no later than ``sla_due_at``;
- ``breached`` when it was taken up later, or is still untouched past ``sla_due_at``;
- ``pending`` while untouched and still within its SLA: it counts neither way.

For the scorecard: call these with an engagement the caller already sees (loaded
through ``engagements.service.access``); they never write and never check
capabilities. Periods are half-open instant ranges ``[start, end)`` (UTC).
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.db import utcnow
from app.engagements.models import Engagement
from app.escalations import repository
from app.escalations.models import Escalation, Outcome


class SlaState(enum.StrEnum):
    pending = "pending"
    met = "met"
    breached = "breached"


def taken_up_at(escalation: Escalation) -> datetime | None:
    moments = [m for m in (escalation.acknowledged_at, escalation.resolved_at) if m is not None]
    return min(moments) if moments else None


def sla_state(escalation: Escalation, now: datetime | None = None) -> SlaState:
    taken = taken_up_at(escalation)
    if taken is not None:
        return SlaState.met if taken <= escalation.sla_due_at else SlaState.breached
    return SlaState.breached if (now or utcnow()) > escalation.sla_due_at else SlaState.pending


@dataclass(frozen=True)
class EscalationCounts:
    """Escalations opened in a period and how the brand's SLA held.

    - ``total``: opened in the period, every kind.
    - ``decided``: whose SLA is settled (met or breached): the denominator.
    - ``within_sla``: taken up within the SLA: the numerator of "handed over within SLA".
    - ``breached``: taken up late, or still untouched past the SLA.
    - ``pending``: untouched and still within the SLA.
    """

    total: int
    decided: int
    within_sla: int
    breached: int
    pending: int

    @property
    def within_sla_rate(self) -> float | None:
        return self.within_sla / self.decided if self.decided else None


def count(escalations: Iterable[Escalation], now: datetime | None = None) -> EscalationCounts:
    """The counts of any escalations already loaded (pure: used by the stage checklist)."""
    now = now or utcnow()
    states = [sla_state(escalation, now) for escalation in escalations]
    met = states.count(SlaState.met)
    breached = states.count(SlaState.breached)
    return EscalationCounts(
        total=len(states),
        decided=met + breached,
        within_sla=met,
        breached=breached,
        pending=states.count(SlaState.pending),
    )


def escalation_counts(
    session: Session,
    engagement: Engagement,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
) -> EscalationCounts:
    """Counts for the escalations opened in ``[start, end)``."""
    opened = repository.opened_between(session, engagement, start, end)
    found = escalation_counts_by_engagement(opened, start, end, now=now)
    return found.get(engagement.id) or count((), now)


def escalation_counts_by_engagement(
    escalations: Iterable[Escalation],
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
) -> dict[uuid.UUID, EscalationCounts]:
    """Per engagement, the counts of those opened in ``[start, end)`` among escalations loaded.

    The scorecard loads the escalations of all the engagements it compares in one
    query (those opened or resolved in the period) and counts them here. An
    engagement with none opened in the period is absent.
    """
    now = now or utcnow()
    by_engagement: dict[uuid.UUID, list[Escalation]] = defaultdict(list)
    for escalation in escalations:
        if start <= escalation.opened_at < end:
            by_engagement[escalation.engagement_id].append(escalation)
    return {engagement_id: count(rows, now) for engagement_id, rows in by_engagement.items()}


@dataclass(frozen=True)
class AttributedRevenue:
    """Revenue from sales leads the agency handed over and the brand won.

    ``minor_units`` is in ``currency``, the engagement's; ``won`` and ``lost`` count
    the sales leads resolved in the period either way.
    """

    minor_units: int
    currency: str
    won: int
    lost: int


def attributed_revenue(
    session: Session, engagement: Engagement, start: datetime, end: datetime
) -> AttributedRevenue:
    """Won sales leads resolved in ``[start, end)``: attributed revenue (DOMAIN.md §2)."""
    resolved = repository.resolved_between(session, engagement, start, end)
    found = attributed_revenue_by_engagement(resolved, [engagement], start, end)
    return found[engagement.id]


def attributed_revenue_by_engagement(
    escalations: Iterable[Escalation],
    engagements: Iterable[Engagement],
    start: datetime,
    end: datetime,
) -> dict[uuid.UUID, AttributedRevenue]:
    """Each engagement's attributed revenue from the escalations loaded, several at once.

    Only those resolved in ``[start, end)`` count; every engagement given gets an
    answer (zero without won leads), in its own currency.
    """
    won: dict[uuid.UUID, list[Escalation]] = defaultdict(list)
    lost: dict[uuid.UUID, int] = defaultdict(int)
    for escalation in escalations:
        if escalation.resolved_at is None or not start <= escalation.resolved_at < end:
            continue
        if escalation.outcome == Outcome.won:
            won[escalation.engagement_id].append(escalation)
        elif escalation.outcome == Outcome.lost:
            lost[escalation.engagement_id] += 1
    return {
        engagement.id: AttributedRevenue(
            minor_units=sum(row.revenue_minor or 0 for row in won[engagement.id]),
            currency=engagement.currency,
            won=len(won[engagement.id]),
            lost=lost[engagement.id],
        )
        for engagement in engagements
    }
