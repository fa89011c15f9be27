"""Pages: the reviewer's queue (with bulk approval), what waits on the brand, the calendar.

Filters are query parameters, so a filtered list is a link; the filter forms
re-render only the list in place (HTMX, ``HX-Target``) and push the URL. Bulk
approval posts the queue's checkboxes (``post_id:version_hash`` as rendered) and
answers with the list and a report per post.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from babel import Locale
from babel.dates import (
    format_date,
    format_skeleton,
    format_time,
    format_timedelta,
    get_day_names,
)
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from app import web
from app.content import queue, schedule
from app.content.queue import QueueFilters
from app.content.schedule import CalendarSpan, CalendarZone
from app.db import utcnow
from app.deps import PageActor, SessionDep, verify_csrf
from app.engagements.deps import PageEngagement
from app.errors import N_, NotFound
from app.tenancy.service import Actor

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

CALENDAR_STATUS_NAMES = {
    "draft": N_("Draft"),
    "in_review": N_("In review"),
    "changes_requested": N_("Changes requested"),
    "approved": N_("Approved"),
    queue.MISSED: N_("Missed slot"),
}
BULK_OUTCOME_NAMES = {
    queue.BulkOutcome.approved: N_("Approved"),
    queue.BulkOutcome.stale: N_("Changed since you loaded the queue: not approved"),
    queue.BulkOutcome.refused: N_("Not approved"),
}
web.register_labels("calendar_status_names", CALENDAR_STATUS_NAMES)
web.register_labels("bulk_outcome_names", BULK_OUTCOME_NAMES)


async def form_data(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]
EngagementQuery = Annotated[
    str | None, Query(description="Only this engagement's posts.", max_length=64)
]
ChannelQuery = Annotated[str | None, Query(max_length=32)]
CampaignQuery = Annotated[str | None, Query(max_length=160)]


def _engagement_id(raw: str | None) -> uuid.UUID | None:
    """An engagement filter from a query or form; junk names nothing of the caller's."""
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(N_("No engagement here, or it is not yours.")) from None


def _filters(
    db: SessionDep,
    actor: Actor,
    engagement_id: str | None,
    channel: str | None,
    campaign: str | None,
) -> QueueFilters:
    return queue.checked_filters(
        db, actor, engagement_id=_engagement_id(engagement_id), channel=channel, campaign=campaign
    )


def _formatters(request: Request) -> dict[str, Callable[..., str]]:
    """Times and durations in the page's language (Babel)."""
    language = web.request_language(request)

    def waited(value: timedelta) -> str:
        return format_timedelta(value, granularity="minute", threshold=2, locale=language)

    def clock(value: datetime) -> str:
        return format_time(value, "short", tzinfo=value.tzinfo, locale=language)

    def long_date(value: date) -> str:
        return format_date(value, "full", locale=language)

    return {"waited": waited, "clock": clock, "long_date": long_date}


# --- the reviewer's queue ----------------------------------------------------------


def _queue_context(
    request: Request, db: SessionDep, actor: Actor, filters: QueueFilters
) -> dict[str, Any]:
    return {
        "user": actor.user,
        "queue": queue.review_queue(db, actor, filters, utcnow()),
        "filters": filters,
        "results": None,
        **_formatters(request),
    }


@router.get("/review-queue", name="review_queue")
def queue_page(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    engagement_id: EngagementQuery = None,
    channel: ChannelQuery = None,
    campaign: CampaignQuery = None,
) -> Response:
    filters = _filters(db, actor, engagement_id, channel, campaign)
    return web.render(request, "content/queue.html", _queue_context(request, db, actor, filters))


@router.post("/review-queue/approve", name="bulk_approve")
def bulk_approve(request: Request, db: SessionDep, actor: PageActor, form: FormDep) -> Response:
    filters = _filters(
        db,
        actor,
        _text(form.get("engagement_id")),
        _text(form.get("channel")),
        _text(form.get("campaign")),
    )
    selection = queue.parse_selection(
        [value for value in form.getlist("post") if isinstance(value, str)]
    )
    results = queue.bulk_approve(db, actor, selection)
    context = _queue_context(request, db, actor, filters)
    context["results"] = [
        {
            "post_id": result.post_id,
            "title": result.title,
            "outcome": result.outcome,
            "message": web.translate(request, result.message, result.params),
        }
        for result in results
    ]
    return web.render(request, "content/queue.html", context)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# --- waiting on the brand -----------------------------------------------------------


@router.get("/waiting-on-brand", name="waiting_on_brand")
def waiting_page(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    engagement_id: EngagementQuery = None,
    channel: ChannelQuery = None,
    campaign: CampaignQuery = None,
) -> Response:
    filters = _filters(db, actor, engagement_id, channel, campaign)
    entries, choices = queue.waiting_on_brand(db, actor, filters, utcnow())
    return web.render(
        request,
        "content/waiting.html",
        {
            "user": actor.user,
            "entries": entries,
            "choices": choices,
            "filters": filters,
            "overdue": sum(1 for entry in entries if entry.overdue),
            **_formatters(request),
        },
    )


# --- the calendar -------------------------------------------------------------------


SpanQuery = Annotated[CalendarSpan, Query(description="month or week")]
ZoneQuery = Annotated[CalendarZone, Query(description="mine: your time zone; post: each post's")]
DayQuery = Annotated[date | None, Query(alias="date", description="A day in the period shown.")]


def _calendar_page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    *,
    span: CalendarSpan,
    day: date | None,
    calendar_zone: CalendarZone,
    filters: QueueFilters,
    granted: Any = None,
) -> Response:
    language = web.request_language(request)
    viewer_zone = schedule.zone(getattr(request.state, "timezone", None))
    now = utcnow()
    first_weekday = Locale.parse(language).first_week_day
    result = queue.calendar(
        db,
        actor,
        span=span,
        anchor=day or now.astimezone(viewer_zone).date(),
        calendar_zone=calendar_zone,
        viewer_zone=viewer_zone,
        now=now,
        first_weekday=first_weekday,
        granted=granted,
        filters=filters,
    )
    names = get_day_names("abbreviated", locale=language)
    grid = result.frame
    if span is CalendarSpan.month:
        title = format_skeleton("yMMMM", grid.anchor, locale=language)
    else:
        title = " – ".join(
            format_date(value, "medium", locale=language) for value in (grid.first, grid.last)
        )
    base = (
        str(request.url_for("engagement_calendar", engagement_id=granted.engagement.id))
        if granted is not None
        else str(request.url_for("calendar"))
    )
    current = {
        "view": span.value,
        "date": grid.anchor.isoformat(),
        "zone": calendar_zone.value,
        "engagement_id": str(filters.engagement_id) if filters.engagement_id else None,
        "channel": filters.channel,
        "campaign": filters.campaign,
    }

    def link(**changes: Any) -> str:
        """This calendar with some parameters changed (dates as ISO days)."""
        params = {**current, **changes}
        if isinstance(params.get("date"), date):
            params["date"] = params["date"].isoformat()
        return web.url_with_query(base, **params)

    counts = {status: 0 for status in queue.CALENDAR_STATUSES}
    for entry in result.entries:
        counts[entry.status] = counts.get(entry.status, 0) + 1
    return web.render(
        request,
        "content/calendar.html",
        {
            "user": actor.user,
            "calendar": result,
            "grid": grid,
            "title": title,
            "weekdays": schedule.weekday_names(first_weekday, [names[i] for i in range(7)]),
            "span": span,
            "zone": calendar_zone,
            "viewer_zone": str(viewer_zone),
            "engagement": granted.engagement if granted is not None else None,
            "filters": filters,
            "counts": counts,
            "link": link,
            "today": now.astimezone(viewer_zone).date(),
            **_formatters(request),
        },
    )


@router.get("/calendar", name="calendar")
def calendar_page(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    view: SpanQuery = CalendarSpan.month,
    day: DayQuery = None,
    zone: ZoneQuery = CalendarZone.mine,
    engagement_id: EngagementQuery = None,
    channel: ChannelQuery = None,
    campaign: CampaignQuery = None,
) -> Response:
    filters = _filters(db, actor, engagement_id, channel, campaign)
    return _calendar_page(
        request, db, actor, span=view, day=day, calendar_zone=zone, filters=filters
    )


@router.get("/engagements/{engagement_id}/calendar", name="engagement_calendar")
def engagement_calendar_page(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    view: SpanQuery = CalendarSpan.month,
    day: DayQuery = None,
    zone: ZoneQuery = CalendarZone.mine,
    channel: ChannelQuery = None,
    campaign: CampaignQuery = None,
) -> Response:
    filters = QueueFilters(
        channel=(channel or "").strip() or None, campaign=(campaign or "").strip() or None
    )
    return _calendar_page(
        request,
        db,
        granted.actor,
        span=view,
        day=day,
        calendar_zone=zone,
        filters=filters,
        granted=granted,
    )
