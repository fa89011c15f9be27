"""Planning deliverables from the scope of work: periods, due dates, idempotent generation.

A scope line ("12 posts per month, due on the last day") owes one deliverable per
period of its cadence. Periods are calendar periods: months, ISO weeks (Monday to
Sunday), quarters; a line owed ``once`` has one period, the engagement itself. The
due date is the line's ``due_day`` of the period (1–28; for a week, 1–7 with larger
days meaning Sunday), or the period's last day for 0. A deliverable is due at the
end of that day in the brand's time zone.

``plan`` writes the deliverables of every period from the engagement's start up to
the period after today's (never past its end), skipping those that exist: the
unique key (brand, scope line, period start) makes it idempotent, and
the insert is ``ON CONFLICT DO NOTHING`` so two planners racing both succeed. It
runs when the scope changes (``engagements.service`` calls ``scope_line_saved`` and
``scope_line_removed``) and from a periodic job (``deliverables.tasks``).

This module depends on models and repositories only, so that the engagements
service can call it without an import cycle.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session

from app.accounts.models import User
from app.audit import service as audit
from app.db import utcnow
from app.deliverables import repository
from app.deliverables.models import Deliverable
from app.engagements.models import Engagement, ScopeLine, Status

# The actor named on the audit record when the periodic job plans a new period.
PLANNER = "Brandkeep (scope of work)"
PLANNED_STATUSES = (Status.proposed, Status.active, Status.paused, Status.ended)
WEEKDAYS = 7


@dataclass(frozen=True)
class Period:
    start: date
    end: date


def _month(day: date) -> Period:
    last = calendar.monthrange(day.year, day.month)[1]
    return Period(day.replace(day=1), day.replace(day=last))


def _quarter(day: date) -> Period:
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    end = _month(date(day.year, first_month + 2, 1)).end
    return Period(start, end)


def _week(day: date) -> Period:
    start = day - timedelta(days=day.weekday())
    return Period(start, start + timedelta(days=WEEKDAYS - 1))


def period_of(cadence: str, day: date, engagement: Engagement) -> Period:
    """The period of this cadence that contains ``day``."""
    if cadence == "weekly":
        return _week(day)
    if cadence == "quarterly":
        return _quarter(day)
    if cadence == "once":
        start = engagement.start_date
        end = engagement.end_date or _month(start).end
        return Period(start, max(end, start))
    return _month(day)


def due_on(cadence: str, due_day: int, period: Period) -> date:
    """The line's due day within the period (0: the period's last day)."""
    if due_day <= 0:
        return period.end
    if cadence == "weekly":
        due_day = min(due_day, WEEKDAYS)
    return min(period.start + timedelta(days=due_day - 1), period.end)


def due_instant(due: date, timezone: str) -> datetime:
    """The end of the due day in the brand's time zone, as a UTC instant."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.combine(due + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)


def periods_to_plan(line: ScopeLine, engagement: Engagement, today: date) -> list[Period]:
    """Every period from the engagement's start to the one after today's, within its end."""
    if line.cadence == "once":
        return [period_of("once", engagement.start_date, engagement)]
    first = period_of(line.cadence, engagement.start_date, engagement)
    horizon = period_of(line.cadence, today, engagement).end + timedelta(days=1)
    last_day = period_of(line.cadence, horizon, engagement).end
    if engagement.end_date is not None:
        last_day = min(last_day, engagement.end_date)
    if engagement.ended_at is not None:
        last_day = min(last_day, engagement.ended_at.date())
    periods = []
    period = first
    while period.start <= last_day:
        periods.append(period)
        period = period_of(line.cadence, period.end + timedelta(days=1), engagement)
    return periods


def title_of(line: ScopeLine) -> str:
    """The title kept for the API and the audit record ("12 × posts").

    Pages show the scope kind's translated name instead, in the reader's language.
    """
    what = line.description.strip() or line.kind.replace("_", " ")
    return f"{line.quantity} × {what}" if line.quantity > 1 else what


def is_late(deliverable: Deliverable, now: datetime | None = None) -> bool:
    """Late: first delivered after it was due, or not delivered and already past due."""
    if deliverable.first_delivered_at is not None:
        return deliverable.first_delivered_at > deliverable.due_at
    return (now or utcnow()) > deliverable.due_at


def _audit(
    session: Session,
    engagement: Engagement,
    user: User | None,
    kind: str,
    deliverable_id: uuid.UUID,
    data: dict[str, Any],
) -> None:
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=user.id if user else None,
        actor=f"{user.name} <{user.email}>" if user else PLANNER,
        kind=kind,
        subject_type="deliverable",
        subject_id=deliverable_id,
        data=data,
    )


def plan(
    session: Session,
    engagement: Engagement,
    *,
    user: User | None = None,
    today: date | None = None,
    only_line: uuid.UUID | None = None,
) -> int:
    """Write the missing deliverables of the engagement's scope lines; return how many."""
    if engagement.status not in PLANNED_STATUSES:
        return 0
    today = today or utcnow().date()
    timezone = repository.brand_timezone(session, engagement.brand_id)
    existing = repository.planned_keys(session, engagement)
    written = 0
    for line in repository.scope_lines_of(session, engagement):
        if only_line is not None and line.id != only_line:
            continue
        for period in periods_to_plan(line, engagement, today):
            if (line.id, period.start) in existing:
                continue
            due = due_on(line.cadence, line.due_day, period)
            row_id = uuid.uuid4()
            now = utcnow()
            values = {
                "id": row_id,
                "brand_id": engagement.brand_id,
                "engagement_id": engagement.id,
                "scope_line_id": line.id,
                "kind": line.kind,
                "title": title_of(line),
                "description": line.description,
                "quantity": line.quantity,
                "period_start": period.start,
                "period_end": period.end,
                "due_on": due,
                "due_at": due_instant(due, timezone),
                "created_by_id": user.id if user else None,
                "created_at": now,
                "updated_at": now,
            }
            if not repository.insert_planned(session, values):
                continue  # another planner wrote it first
            written += 1
            _audit(
                session,
                engagement,
                user,
                "deliverable_planned",
                row_id,
                {
                    "scope_line_id": str(line.id),
                    "period_start": period.start.isoformat(),
                    "due_on": due.isoformat(),
                    "quantity": line.quantity,
                },
            )
    return written


def _unplan(session: Session, engagement: Engagement, user: User, line_id: uuid.UUID) -> None:
    """Drop the line's deliverables not yet due and never delivered: their terms changed."""
    for row in repository.untouched_future_of_line(session, engagement, line_id, utcnow()):
        _audit(
            session,
            engagement,
            user,
            "deliverable_unplanned",
            row.id,
            {"scope_line_id": str(line_id), "period_start": row.period_start.isoformat()},
        )
        session.delete(row)
    session.flush()


def scope_line_saved(
    session: Session, engagement: Engagement, user: User, line_id: uuid.UUID
) -> None:
    """A line was added or changed: re-plan its future, untouched deliverables."""
    _unplan(session, engagement, user, line_id)
    plan(session, engagement, user=user, only_line=line_id)


def scope_line_removed(
    session: Session, engagement: Engagement, user: User, line_id: uuid.UUID
) -> None:
    """A line is about to be removed: what was due stays owed, the future is dropped."""
    _unplan(session, engagement, user, line_id)
