"""Demo results: six months for Acme × Northwind, two for Acme × Bluepeak.

Northwind's numbers come in every way a real agency's would: a Meta Business Suite
export of its Facebook posts and one Google Analytics 4 export per month, both
written as the platforms write them and imported through the real import path;
monthly business numbers through the API's service; one month of sentiment typed
in the period form. Some posts carry their permalink (so their rows match), one
number was corrected (two revisions), the brand verified some rows and disputed
two. Loading twice adds nothing.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

from sqlmodel import Session, select

from app.accounts.models import User
from app.config import get_settings
from app.db import utcnow
from app.engagements import service as engagements
from app.engagements.service import EngagementAccess
from app.results import imports, repository, service
from app.results.models import ResultRow, ResultStatus
from app.tenancy.service import Actor, actor_for

PAGE_ID = "1093847562019384"
META_HEADER = (
    "Post ID", "Page ID", "Page name", "Title", "Description", "Duration (sec)", "Publish time",
    "Caption type", "Permalink", "Is crosspost", "Is share", "Post type", "Languages",
    "Custom labels", "Funded content status", "Data comment", "Date", "Views", "Reach",
    "Reactions, Comments and Shares", "Reactions", "Comments", "Shares", "Total clicks",
    "Other Clicks", "Link clicks",
)  # fmt: skip
GA4_HEADER = (
    "Session primary channel group (Default Channel Group)", "Sessions", "Engaged sessions",
    "Engagement rate", "Average engagement time per session", "Events per session",
    "Event count", "Key events", "Session key event rate", "Total revenue",
)  # fmt: skip
GA4_GROUPS = ("Direct", "Organic Social", "Paid Social", "Organic Search", "Email")
POST_TOPICS = (
    ("Trail shoes, tested on the Ridge Loop", "Photo"),
    ("Five-minute pack check before a hike", "Reel"),
    ("Meet the Trail Crew: Ana from Leeds", "Photo"),
    ("Rain shell, re-waxed: how and why", "Link"),
)


def _months(today: date, count: int) -> list[tuple[date, date]]:
    """The last ``count`` whole calendar months before today, oldest first."""
    months = []
    end = today.replace(day=1) - timedelta(days=1)
    for _ in range(count):
        start = end.replace(day=1)
        months.append((start, end))
        end = start - timedelta(days=1)
    return list(reversed(months))


def _user(session: Session, email: str) -> Actor:
    user = session.exec(select(User).where(User.email == email)).one()
    return actor_for(session, user)


def _engagement(session: Session, actor: Actor, name: str) -> EngagementAccess | None:
    for summary in engagements.list_engagements(session, actor, limit=200)[0]:
        if summary.engagement.name == name:
            return engagements.access(session, actor, summary.engagement.id)
    return None


def meta_export(months: list[tuple[date, date]], rng: random.Random) -> bytes:
    """A Meta Business Suite Facebook content export: UTF-8 with a byte-order mark."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(META_HEADER)
    number = 0
    for start, _end in months:
        for week, (title, kind) in enumerate(POST_TOPICS):
            number += 1
            published = start + timedelta(days=2 + week * 7)
            post = f"88273645{number:04d}"
            views = rng.randint(9_000, 52_000)
            reach = int(views * rng.uniform(0.55, 0.8))
            reactions, comments, shares = (
                rng.randint(150, 900), rng.randint(10, 160), rng.randint(5, 90),
            )  # fmt: skip
            link_clicks = rng.randint(80, 1400)
            other = rng.randint(40, 900)
            writer.writerow((
                f"{PAGE_ID}_{post}", PAGE_ID, "Acme Outdoors", title, title + " #acmeoutdoors",
                "45" if kind == "Reel" else "", published.strftime("%m/%d/%Y") + " 09:30", "",
                f"https://www.facebook.com/{PAGE_ID}/posts/{post}", "No", "No", kind, "en",
                "trail-season", "", "", "Lifetime", views, reach, reactions + comments + shares,
                reactions, comments, shares, link_clicks + other, other, link_clicks,
            ))  # fmt: skip
    return ("\ufeff" + buffer.getvalue()).encode()


def ga4_export(start: date, end: date, rng: random.Random) -> bytes:
    """A Google Analytics 4 traffic acquisition report for one month."""
    lines = [
        "# ----------------------------------------",
        "# Traffic acquisition: Session primary channel group (Default Channel Group)",
        "# Account: Acme Outdoors",
        "# Property: acme.example - GA4",
        "# ----------------------------------------",
        "#",
        "# All Users",
        f"# Start date: {start:%Y%m%d}",
        f"# End date: {end:%Y%m%d}",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(GA4_HEADER)
    rows = []
    for group in GA4_GROUPS:
        sessions = rng.randint(600, 4200)
        engaged = int(sessions * rng.uniform(0.5, 0.75))
        key_events = rng.randint(20, 160)
        revenue = round(key_events * rng.uniform(70, 140), 2)
        events = sessions * rng.randint(5, 8)
        rows.append((group, sessions, engaged, round(engaged / sessions, 4),
                     round(rng.uniform(35, 70), 1), round(events / sessions, 1), events,
                     key_events, round(key_events / sessions, 4), f"{revenue:.2f}"))  # fmt: skip
    totals = [sum(int(row[i]) for row in rows) for i in (1, 2, 6, 7)]
    revenue_total = sum(Decimal(row[9]) for row in rows)
    writer.writerow(("Grand total", totals[0], totals[1], round(totals[1] / totals[0], 4), 52.3,
                     round(totals[2] / totals[0], 1), totals[2], totals[3],
                     round(totals[3] / totals[0], 4), f"{revenue_total:.2f}"))  # fmt: skip
    for row in rows:
        writer.writerow(row)
    return ("\n".join(lines) + "\n" + buffer.getvalue()).encode()


def _business_rows(months: list[tuple[date, date]], rng: random.Random) -> list[service.ApiRow]:
    rows = []
    for start, end in months:
        orders = rng.randint(260, 420)
        rows += [
            service.ApiRow("", "coupon_redemptions", start, end, Decimal(rng.randint(90, 240))),
            service.ApiRow("", "far_frequency", start, end, Decimal(rng.randint(110, 160)) / 100),
            service.ApiRow("", "far_reach", start, end, Decimal(rng.randint(40, 120))),
            service.ApiRow("", "transactions", start, end, Decimal(orders)),
            service.ApiRow("", "far_yield", start, end, Decimal(rng.randint(5200, 7400))),
            service.ApiRow("", "nps", start, end, Decimal(rng.randint(28, 46))),
        ]  # fmt: skip
    return rows


def load(session: Session) -> None:
    lead = _user(session, "lead@acme.example")
    northwind = _engagement(session, lead, "Social media 2026")
    if northwind is not None and not repository.has_rows(session, northwind.engagement):
        _northwind(session, northwind.engagement.id)
    bluepeak = _engagement(session, lead, "Community launch")
    if bluepeak is not None and not repository.has_rows(session, bluepeak.engagement):
        _bluepeak(session, bluepeak.engagement.id)


def _northwind(session: Session, engagement_id: uuid.UUID) -> None:
    settings = get_settings()
    rng = random.Random(20260)  # noqa: S311 - made-up numbers, the same demo every time
    today = utcnow().date()
    months = _months(today, 6)
    manager = _user(session, "manager@northwind.example")
    agency = engagements.access(session, manager, engagement_id)
    # Where three of the engagement's posts went out: their rows match them.
    posts = repository.posts_of(session, agency.engagement)
    for number, post in enumerate(posts[:3], start=1):
        service.record_publication(
            session, agency, post.id,
            f"https://www.facebook.com/{PAGE_ID}/posts/88273645{number:04d}", None,
        )  # fmt: skip
    imports.import_now(
        session, settings, agency, io.BytesIO(meta_export(months, rng)),
        "Acme-Outdoors-content-export.csv",
    )  # fmt: skip
    for start, end in months:
        imports.import_now(
            session, settings, agency, io.BytesIO(ga4_export(start, end, rng)),
            f"Traffic_acquisition_Session_primary_channel_group_{start:%Y%m}.csv",
        )  # fmt: skip
    business = _business_rows(months, rng)
    service.report(session, agency, business, source="api")
    # A correction: the shop re-counted last-but-one month's coupons; the first figure stays.
    last_start, last_end = months[-2]
    corrected = [
        row if not (row.metric == "coupon_redemptions" and row.period_start == last_start)
        else service.ApiRow("", "coupon_redemptions", last_start, last_end, row.value + 17)
        for row in business
    ]  # fmt: skip
    service.report(session, agency, corrected, source="api")
    start, end = months[-1]
    service.report(
        session, agency,
        [service.ApiRow("", "positive_sentiment", start, end, Decimal("0.64")),
         service.ApiRow("", "first_response_time", start, end, Decimal(42))],
        source="form",
    )  # fmt: skip
    _brand_checks(session, engagement_id, months)


def _brand_checks(
    session: Session, engagement_id: uuid.UUID, months: list[tuple[date, date]]
) -> None:
    reviewer = _user(session, "reviewer@acme.example")
    granted = engagements.access(session, reviewer, engagement_id)
    rows, _total = repository.current_rows(session, granted.engagement, limit=2000, offset=0)

    def decide(row: ResultRow, status: ResultStatus, reason: str = "") -> None:
        service.set_status(session, service.ResultAccess(row, granted), status, reason)

    revenue = [r for r in rows if r.metric == "revenue" and r.period_start <= months[2][0]]
    for row in revenue:
        decide(row, ResultStatus.verified)
    views = sorted(
        (r for r in rows if r.metric == "impressions" and r.source == "import:meta"),
        key=lambda r: r.value, reverse=True,
    )  # fmt: skip
    if views:
        decide(
            views[0], ResultStatus.disputed,
            "Meta shows far fewer views for this post since it re-counted reel replays.",
        )  # fmt: skip
    coupons = [r for r in rows if r.metric == "coupon_redemptions" and r.source == "api"]
    if coupons:
        decide(
            coupons[0], ResultStatus.disputed,
            "Our shop system has 41 fewer redemptions for this month: two codes were staff codes.",
        )  # fmt: skip


def _bluepeak(session: Session, engagement_id: uuid.UUID) -> None:
    rng = random.Random(4242)  # noqa: S311 - made-up numbers
    manager = _user(session, "manager@bluepeak.example")
    agency = engagements.access(session, manager, engagement_id)
    channel = agency.engagement.channels[0] if agency.engagement.channels else ""
    rows = []
    for start, end in _months(utcnow().date(), 2):
        impressions = rng.randint(20_000, 60_000)
        reach = int(impressions * 0.6)
        rows += [
            service.ApiRow(channel, "impressions", start, end, Decimal(impressions)),
            service.ApiRow(channel, "reach", start, end, Decimal(reach)),
            service.ApiRow(channel, "engagement_rate_reach", start, end,
                           Decimal(str(round(rng.uniform(0.02, 0.05), 4)))),
        ]  # fmt: skip
    service.report(session, agency, rows, source="api")
