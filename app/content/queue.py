"""Who is waiting on whom: the reviewer's queue, bulk approval, the agency's view, the calendar.

- **The reviewer's queue**: what waits for my decision at the open step, oldest
  submission first, with its due time and whether it is overdue or missed its slot.
- **Bulk approval**: each selected post is approved on the version hash the
  reviewer saw when the queue was rendered (``post_id:hash`` pairs), each in its own
  savepoint, through the same ``content.service.decide`` as a single approval: a post
  changed since is reported as stale and left alone, the others are approved.
- **Waiting on the brand** (the agency's side): its posts in review, overdue first,
  how long each has waited and which step (and, to the brand, who) still decides.
- **The calendar**: posts by planned time, for one engagement or all of the viewer's.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from sqlmodel import Session

from app.content import repository, schedule
from app.content import service as content
from app.content.models import DecisionKind, Post, PostStatus
from app.content.schedule import CalendarFrame, CalendarSpan, CalendarZone
from app.content.schemas import DecisionIn
from app.engagements import service as engagements
from app.engagements.models import Engagement
from app.engagements.service import EngagementAccess
from app.errors import N_, BrandkeepError, Conflict, NotFound
from app.tenancy.service import Actor

MAX_BULK = 100


# --- filters -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    """Narrowing a list of posts; an engagement filter is loaded through the scoped layer."""

    engagement_id: uuid.UUID | None = None
    channel: str | None = None
    campaign: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.engagement_id or self.channel or self.campaign)

    def keeps(self, post: Post) -> bool:
        if self.engagement_id is not None and post.engagement_id != self.engagement_id:
            return False
        if self.channel and self.channel not in (post.channels or []):
            return False
        return not self.campaign or post.campaign == self.campaign


def checked_filters(
    session: Session,
    actor: Actor,
    *,
    engagement_id: uuid.UUID | None,
    channel: str | None,
    campaign: str | None,
) -> QueueFilters:
    """Filters as asked; naming an engagement that is not the caller's answers 404."""
    if engagement_id is not None:
        engagements.access(session, actor, engagement_id)
    return QueueFilters(
        engagement_id=engagement_id,
        channel=(channel or "").strip() or None,
        campaign=(campaign or "").strip() or None,
    )


@dataclass(frozen=True)
class FilterChoices:
    """What the filter menus offer: the values present in the unfiltered list."""

    engagements: list[tuple[uuid.UUID, str]]
    channels: list[str]
    campaigns: list[str]


def _choices(pairs: Sequence[tuple[Post, Engagement]]) -> FilterChoices:
    return FilterChoices(
        engagements=sorted(
            {(engagement.id, engagement.name) for _post, engagement in pairs},
            key=lambda item: item[1].lower(),
        ),
        channels=sorted({channel for post, _e in pairs for channel in post.channels or []}),
        campaigns=sorted({post.campaign for post, _e in pairs if post.campaign}, key=str.lower),
    )


# --- the reviewer's queue --------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    post: Post
    engagement: Engagement
    step_name: str
    version_hash: str
    due_at: datetime | None
    overdue: bool
    missed_slot: bool
    waited: timedelta


@dataclass(frozen=True)
class ReviewQueue:
    entries: list[QueueEntry]
    choices: FilterChoices
    total: int  # before filtering

    @property
    def overdue(self) -> int:
        return sum(1 for entry in self.entries if entry.overdue)


def review_queue(
    session: Session, actor: Actor, filters: QueueFilters, now: datetime
) -> ReviewQueue:
    """What waits for this person's decision, oldest submission first."""
    items = content.review_queue(session, actor)
    entries = [
        QueueEntry(
            post=item.post,
            engagement=item.engagement,
            step_name=item.step_name,
            version_hash=item.version_hash,
            due_at=item.post.review_due_at,
            overdue=schedule.is_overdue(item.post, now),
            missed_slot=schedule.is_missed(item.post, now),
            waited=now - (item.post.submitted_at or now),
        )
        for item in items
    ]
    return ReviewQueue(
        entries=[entry for entry in entries if filters.keeps(entry.post)],
        choices=_choices([(item.post, item.engagement) for item in items]),
        total=len(entries),
    )


# --- bulk approval ---------------------------------------------------------------------


class BulkOutcome(enum.StrEnum):
    approved = "approved"
    stale = "stale"
    refused = "refused"


@dataclass(frozen=True)
class BulkResult:
    post_id: uuid.UUID
    title: str
    outcome: BulkOutcome
    message: str  # a msgid, translated by the caller with ``params``
    params: dict[str, object]


def parse_selection(values: Sequence[str]) -> list[tuple[uuid.UUID, str]]:
    """``post_id:version_hash`` pairs from the queue's checkboxes; junk is dropped."""
    selection: list[tuple[uuid.UUID, str]] = []
    seen: set[uuid.UUID] = set()
    for value in values:
        raw_id, _, version_hash = value.partition(":")
        try:
            post_id = uuid.UUID(raw_id)
        except ValueError:
            continue
        if post_id in seen or len(version_hash) != 64:
            continue
        seen.add(post_id)
        selection.append((post_id, version_hash.lower()))
    return selection


def bulk_approve(
    session: Session, actor: Actor, selection: Sequence[tuple[uuid.UUID, str]]
) -> list[BulkResult]:
    """Approve each selected post on the hash the reviewer saw; report each one."""
    if len(selection) > MAX_BULK:
        raise Conflict(N_("Approve at most %(count)d posts at once."), params={"count": MAX_BULK})
    results: list[BulkResult] = []
    for post_id, version_hash in selection:
        title = ""
        try:
            with session.begin_nested():
                found = content.access(session, actor, post_id)
                title = found.post.title
                content.decide(
                    session,
                    found,
                    DecisionIn(decision=DecisionKind.approve, version_hash=version_hash),
                )
        except NotFound:
            results.append(BulkResult(post_id, title, BulkOutcome.refused, content.NOT_FOUND, {}))
            continue
        except BrandkeepError as exc:
            stale = isinstance(exc, Conflict) and "current_hash" in (exc.extra or {})
            results.append(
                BulkResult(
                    post_id,
                    title,
                    BulkOutcome.stale if stale else BulkOutcome.refused,
                    exc.message,
                    dict(exc.params or {}),
                )
            )
            continue
        results.append(BulkResult(post_id, title, BulkOutcome.approved, N_("Approved."), {}))
    return results


# --- waiting on the brand ------------------------------------------------------------


@dataclass(frozen=True)
class WaitingEntry:
    post: Post
    engagement: Engagement
    review: content.Review | None
    due_at: datetime | None
    overdue: bool
    missed_slot: bool
    waited: timedelta
    # Names of the people still to decide: shown to the brand's side only; the
    # agency sees the step and the count (it cannot see the brand's members).
    waiting_on: list[str]


def waiting_on_brand(
    session: Session, actor: Actor, filters: QueueFilters, now: datetime
) -> tuple[list[WaitingEntry], FilterChoices]:
    """Posts in review on the caller's engagements (either side): overdue first, then by due."""
    pairs = list(repository.in_review_of(session, sorted(actor.org_ids)))
    kept = [(post, engagement) for post, engagement in pairs if filters.keeps(post)]
    reviews = content.reviews_of(session, [post for post, _engagement in kept])
    entries: list[WaitingEntry] = []
    for post, engagement in kept:
        review = reviews.get(post.id)
        names = (
            [name for _id, name in review.waiting_on]
            if review is not None and engagement.brand_id in actor.org_ids
            else []
        )
        entries.append(
            WaitingEntry(
                post=post,
                engagement=engagement,
                review=review,
                due_at=post.review_due_at,
                overdue=schedule.is_overdue(post, now),
                missed_slot=schedule.is_missed(post, now),
                waited=now - (post.submitted_at or now),
                waiting_on=names,
            )
        )
    entries.sort(key=lambda entry: (not entry.overdue, entry.due_at or now, entry.post.id))
    return entries, _choices(pairs)


def overdue_reviews(session: Session, granted: EngagementAccess, now: datetime) -> int:
    """How many of the engagement's posts wait on the brand past their due time."""
    granted.require("engagement.read")
    return repository.count_overdue(session, granted.engagement, now)


# --- the calendar ---------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarEntry:
    post: Post
    engagement: Engagement
    local: datetime  # the planned time on the calendar's clock
    status: str  # the post's status, or "missed" for a missed slot
    overdue: bool


@dataclass(frozen=True)
class Calendar:
    frame: CalendarFrame
    zone: CalendarZone
    entries: list[CalendarEntry]
    unplanned: int  # posts awaiting approval with no planned time (not on any day)


def calendar(
    session: Session,
    actor: Actor,
    *,
    span: CalendarSpan,
    anchor: date,
    calendar_zone: CalendarZone,
    viewer_zone: tzinfo,
    now: datetime,
    first_weekday: int,
    granted: EngagementAccess | None = None,
    filters: QueueFilters | None = None,
) -> Calendar:
    """The month or week around ``anchor``; one engagement's (``granted``) or all of them."""
    if granted is not None:
        granted.require("engagement.read")
    today = now.astimezone(viewer_zone).date()
    grid = schedule.frame(span, anchor, today=today, first_weekday=first_weekday)
    start, end = grid.bounds(viewer_zone)
    pairs = repository.planned_between(
        session,
        sorted(actor.org_ids),
        start,
        end,
        schedule.ON_CALENDAR,
        engagement_id=granted.engagement.id if granted is not None else None,
    )
    entries: list[CalendarEntry] = []
    for post, engagement in pairs:
        if filters is not None and not filters.keeps(post):
            continue
        local = schedule.local_planned(post, calendar_zone, viewer_zone)
        if local is None:
            continue
        missed = schedule.is_missed(post, now)
        entries.append(
            CalendarEntry(
                post=post,
                engagement=engagement,
                local=local,
                status="missed" if missed else str(post.status),
                overdue=schedule.is_overdue(post, now),
            )
        )
    schedule.place(grid, entries, when=lambda entry: entry.local)
    unplanned = 0
    if granted is not None:
        unplanned = sum(
            1
            for post in content.list_posts(session, granted)
            if post.planned_at is None and post.status in schedule.AWAITING_APPROVAL
        )
    return Calendar(frame=grid, zone=calendar_zone, entries=entries, unplanned=unplanned)


MISSED = "missed"
CALENDAR_STATUSES = (
    PostStatus.draft.value,
    PostStatus.in_review.value,
    PostStatus.changes_requested.value,
    PostStatus.approved.value,
    MISSED,
)
