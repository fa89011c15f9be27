"""Time rules of the review: when the brand's answer is due, missed slots, the calendar.

- **Due time**: each round of review is due ``review_hours`` (the engagement's
  policy, 48 by default) after it was submitted; a new round (a resubmission, or
  an edit during review) starts a new clock and a new series of reminders.
- **Missed slot**: a post not yet approved whose planned time has passed has
  missed its slot. It is never approved for a time already gone: a person chooses
  a new time (an edit, so a new version and a new hash) and only then can it be
  approved. The periodic sweep records the moment (``missed_slot_at``), and every
  read also works it out from the clock, so pages are right before the sweep runs.
- **Calendar**: the days of a month or a week, in one time zone, and which posts
  fall on each, placed by their planned time in the viewer's zone or their own.

Nothing here reads the database: the rules take rows and the time.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.content.models import Post, PostStatus
from app.engagements.models import Engagement
from app.engagements.policy import DEFAULT_REVIEW_HOURS
from app.errors import N_, Conflict

# Posts still on their way to approval: their planned time can still be missed.
AWAITING_APPROVAL = (PostStatus.draft, PostStatus.in_review, PostStatus.changes_requested)
# What the calendar shows: what may still go out, or went through review.
ON_CALENDAR = (*AWAITING_APPROVAL, PostStatus.approved)

MISSED_SLOT = N_(
    "The planned time (%(when)s UTC) has passed before approval: choose a new time, "
    "then it can be approved."
)


# --- due times -----------------------------------------------------------------


def review_hours(engagement: Engagement) -> int:
    """The engagement's promise of how fast the brand answers, in hours."""
    try:
        hours = int((engagement.approval_policy or {}).get("review_hours") or 0)
    except (TypeError, ValueError):
        hours = 0
    return hours if hours > 0 else DEFAULT_REVIEW_HOURS


def review_opened(engagement: Engagement, now: datetime) -> dict[str, Any]:
    """The post's columns for a round of review opening now: a new clock, no reminders yet."""
    return {
        "review_due_at": now + timedelta(hours=review_hours(engagement)),
        "reminders_sent": 0,
        "last_reminder_at": None,
        "escalated_at": None,
    }


def is_overdue(post: Post, now: datetime) -> bool:
    return (
        post.status == PostStatus.in_review
        and post.review_due_at is not None
        and post.review_due_at <= now
    )


def overdue_by(post: Post, now: datetime) -> timedelta | None:
    if not is_overdue(post, now) or post.review_due_at is None:
        return None
    return now - post.review_due_at


# --- missed slots ----------------------------------------------------------------


def slot_passed(planned_at: datetime | None, now: datetime) -> bool:
    return planned_at is not None and planned_at <= now


def is_missed(post: Post, now: datetime) -> bool:
    """Whether the post missed its slot: recorded by the sweep, or seen now on the clock."""
    if post.status not in AWAITING_APPROVAL:
        return False
    return post.missed_slot_at is not None or slot_passed(post.planned_at, now)


def missed_after_edit(post: Post, planned_at: datetime | None, now: datetime) -> datetime | None:
    """``missed_slot_at`` after a save: a new time still ahead clears the mark."""
    if not slot_passed(planned_at, now):
        return None
    return post.missed_slot_at or now


def refuse_missed_slot(planned_at: datetime | None, now: datetime) -> None:
    """Approving for a time already gone would publish late without anyone choosing it."""
    if planned_at is not None and slot_passed(planned_at, now):
        raise Conflict(
            MISSED_SLOT,
            params={"when": planned_at.strftime("%Y-%m-%d %H:%M")},
            extra={"missed_slot": True, "planned_at": planned_at.isoformat()},
        )


# --- the calendar ------------------------------------------------------------------


class CalendarSpan(enum.StrEnum):
    month = "month"
    week = "week"


class CalendarZone(enum.StrEnum):
    """Whose clock places a post on a day: the viewer's, or the post's own."""

    mine = "mine"
    post = "post"


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


@dataclass
class CalendarDay:
    day: date
    in_span: bool  # False for the leading/trailing days of the month grid
    is_today: bool
    entries: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class CalendarFrame:
    """The days shown, in weeks, and where prev/next lead."""

    span: CalendarSpan
    anchor: date
    first: date  # first day of the grid
    last: date  # last day of the grid (inclusive)
    previous: date
    next: date
    weeks: list[list[CalendarDay]]

    @property
    def days(self) -> list[CalendarDay]:
        return [day for week in self.weeks for day in week]

    def bounds(self, viewer_zone: tzinfo) -> tuple[datetime, datetime]:
        """The UTC instants to load posts between, a day wider each way for other zones."""
        start = datetime.combine(self.first, datetime.min.time(), viewer_zone)
        end = datetime.combine(self.last + timedelta(days=1), datetime.min.time(), viewer_zone)
        return start - timedelta(days=1), end + timedelta(days=1)


def _week_start(day: date, first_weekday: int) -> date:
    return day - timedelta(days=(day.weekday() - first_weekday) % 7)


def frame(span: CalendarSpan, anchor: date, *, today: date, first_weekday: int) -> CalendarFrame:
    """The grid for the month or week holding ``anchor``; weeks start on ``first_weekday``."""
    if span is CalendarSpan.week:
        first = _week_start(anchor, first_weekday)
        last = first + timedelta(days=6)
        previous, following = first - timedelta(days=7), first + timedelta(days=7)
        month_of: tuple[int, int] | None = None
    else:
        month_start = anchor.replace(day=1)
        month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        first = _week_start(month_start, first_weekday)
        last = _week_start(month_end, first_weekday) + timedelta(days=6)
        previous = (month_start - timedelta(days=1)).replace(day=1)
        following = month_end + timedelta(days=1)
        month_of = (anchor.year, anchor.month)
    weeks: list[list[CalendarDay]] = []
    day = first
    while day <= last:
        week = []
        for _ in range(7):
            in_span = month_of is None or (day.year, day.month) == month_of
            week.append(CalendarDay(day=day, in_span=in_span, is_today=day == today))
            day += timedelta(days=1)
        weeks.append(week)
    return CalendarFrame(span, anchor, first, last, previous, following, weeks)


def local_planned(post: Post, calendar_zone: CalendarZone, viewer_zone: tzinfo) -> datetime | None:
    """The post's planned time on the clock the calendar is read by."""
    if post.planned_at is None:
        return None
    if calendar_zone is CalendarZone.post:
        return post.planned_at.astimezone(zone(post.timezone))
    return post.planned_at.astimezone(viewer_zone)


def place(
    grid: CalendarFrame,
    entries: Iterable[Any],
    *,
    when: Any,
) -> None:
    """Put each entry on its day (``when(entry)`` gives its local time), in time order."""
    by_day = {day.day: day for day in grid.days}
    for entry in sorted(entries, key=when):
        local = when(entry)
        target = by_day.get(local.date()) if local is not None else None
        if target is not None:
            target.entries.append(entry)


def weekday_names(first_weekday: int, names: Sequence[str]) -> list[str]:
    """Day-of-week headers starting at ``first_weekday`` (names indexed Monday = 0)."""
    return [names[(first_weekday + offset) % 7] for offset in range(7)]
