"""The content calendar (issue #5, item 8): planned posts by day, month and week, by status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.content import queue, schedule
from app.content.schedule import CalendarSpan, CalendarZone
from app.db import utcnow
from app.engagements.models import Engagement
from app.tenancy.service import actor_for
from tests.engagement_factories import Parties, accepted_engagement, make_parties
from tests.factories import create_token, sign_in
from tests.post_factories import draft, submit


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    other: Engagement
    creator: str


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db, signs_in=True)
    return World(
        parties=parties,
        engagement=accepted_engagement(db, parties),
        other=accepted_engagement(db, parties, name="Community 2027"),
        creator=create_token(db, parties.creator, parties.agency),
    )


def planned(client: TestClient, world: World, when: str, **fields: Any) -> dict[str, Any]:
    engagement = fields.pop("engagement", world.engagement)
    return draft(client, world.creator, engagement.id, planned_at=when, **fields)


def browser_for(make_client: Any, email: str) -> TestClient:
    browser: TestClient = make_client()
    sign_in(browser, email)
    return browser


def days_with(html: str, title: str) -> list[str]:
    """The day numbers of the grid cells that hold a post with this title."""
    cells = re.findall(r"<td class=\"[^\"]*\">(.*?)</td>", html, flags=re.S)
    found = []
    for cell in cells:
        if title in cell:
            number = re.search(r'<span aria-hidden="true">(\d+)</span>', cell)
            assert number
            found.append(number.group(1))
    return found


class TestFrames:
    def test_a_month_grid_covers_whole_weeks_from_the_locales_first_day(self) -> None:
        monday_first = schedule.frame(
            CalendarSpan.month, date(2027, 3, 17), today=date(2027, 3, 17), first_weekday=0
        )
        assert (monday_first.first, monday_first.last) == (date(2027, 3, 1), date(2027, 4, 4))
        assert (monday_first.previous, monday_first.next) == (date(2027, 2, 1), date(2027, 4, 1))
        sunday_first = schedule.frame(
            CalendarSpan.month, date(2027, 3, 17), today=date(2027, 3, 17), first_weekday=6
        )
        assert sunday_first.first == date(2027, 2, 28)
        assert all(len(week) == 7 for week in sunday_first.weeks)
        assert [day.day for day in sunday_first.days if day.is_today] == [date(2027, 3, 17)]

    def test_a_week_steps_by_seven_days(self) -> None:
        week = schedule.frame(
            CalendarSpan.week, date(2027, 3, 17), today=date(2027, 1, 1), first_weekday=0
        )
        assert (week.first, week.last) == (date(2027, 3, 15), date(2027, 3, 21))
        assert (week.previous, week.next) == (date(2027, 3, 8), date(2027, 3, 22))
        assert all(day.in_span for day in week.days)


class TestPlacing:
    def test_a_post_falls_on_the_viewers_day_or_on_its_own(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        # 03:00 UTC on 2 March: 1 March in New York, 2 March in Madrid (the post's zone).
        planned(client, world, "2027-03-02T03:00:00+00:00", title="Night owl")
        actor = actor_for(db, world.parties.reviewer)

        def day_of(zone: CalendarZone) -> list[date]:
            result = queue.calendar(
                db,
                actor,
                span=CalendarSpan.month,
                anchor=date(2027, 3, 1),
                calendar_zone=zone,
                viewer_zone=ZoneInfo("America/New_York"),
                now=datetime(2027, 1, 1, tzinfo=UTC),
                first_weekday=0,
            )
            return [day.day for day in result.frame.days if day.entries]

        assert day_of(CalendarZone.mine) == [date(2027, 3, 1)]
        assert day_of(CalendarZone.post) == [date(2027, 3, 2)]


class TestCalendarPage:
    def test_the_engagement_month_shows_posts_by_status_with_text_labels(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        planned(client, world, "2027-03-04T10:00:00+01:00", title="Still a draft")
        in_review = planned(client, world, "2027-03-09T10:00:00+01:00", title="Under review")
        submit(client, world.creator, in_review["id"])
        planned(client, world, "2027-04-09T10:00:00+01:00", title="April post")
        browser = browser_for(make_client, world.parties.reviewer.email)
        page = browser.get(f"/engagements/{world.engagement.id}/calendar?date=2027-03-15")
        assert page.status_code == 200, page.text
        assert "March 2027" in page.text
        assert days_with(page.text, "Still a draft") == ["4"]
        assert days_with(page.text, "Under review") == ["9"]
        assert "April post" not in page.text
        assert '<span class="cal-status">Draft</span>' in page.text
        assert '<span class="cal-status">In review</span>' in page.text
        # Previous and next are plain links (keyboard and no-JS), kept in the same view.
        assert re.search(r'rel="prev" href="[^"]*date=2027-02-01', page.text)
        assert re.search(r'rel="next" href="[^"]*date=2027-04-01', page.text)
        # On a phone the same posts read as a list of days.
        listing = page.text.split('class="calendar-list"')[1]
        assert "Under review" in listing and "Still a draft" in listing

    def test_the_week_view_and_the_in_place_update(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        planned(client, world, "2027-03-09T10:00:00+01:00", title="Tuesday post")
        planned(client, world, "2027-03-20T10:00:00+01:00", title="Later post")
        browser = browser_for(make_client, world.parties.creator.email)
        path = f"/engagements/{world.engagement.id}/calendar?view=week&date=2027-03-10"
        page = browser.get(path)
        assert "Tuesday post" in page.text and "Later post" not in page.text
        assert re.search(r'rel="next" href="[^"]*date=2027-03-15', page.text)
        partial = browser.get(path, headers={"HX-Request": "true", "HX-Target": "calendar-main"})
        assert "<html" not in partial.text and "Tuesday post" in partial.text

    def test_a_missed_slot_shows_as_missed(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        gone = (utcnow() - timedelta(hours=3)).replace(microsecond=0)
        post = planned(client, world, gone.isoformat(), title="Too late")
        submit(client, world.creator, post["id"])
        browser = browser_for(make_client, world.parties.reviewer.email)
        page = browser.get(f"/engagements/{world.engagement.id}/calendar?date={gone.date()}")
        assert '<span class="cal-status">Missed slot</span>' in page.text

    def test_the_cross_engagement_calendar_shows_every_engagement_of_mine_only(
        self, client: TestClient, make_client: Any, db: Session, world: World
    ) -> None:
        planned(client, world, "2027-03-04T10:00:00+01:00", title="From the first")
        planned(
            client,
            world,
            "2027-03-05T10:00:00+01:00",
            title="From the other",
            engagement=world.other,
        )
        stranger = make_parties(db)
        foreign = accepted_engagement(db, stranger)
        draft(
            client,
            create_token(db, stranger.creator, stranger.agency),
            foreign.id,
            title="Not yours",
            planned_at="2027-03-06T10:00:00+01:00",
        )
        browser = browser_for(make_client, world.parties.lead.email)
        page = browser.get("/calendar?date=2027-03-01")
        assert "From the first" in page.text and "From the other" in page.text
        assert "Not yours" not in page.text
        assert "Community 2027" in page.text  # each entry names its engagement
        only = browser.get(f"/calendar?date=2027-03-01&engagement_id={world.other.id}").text
        assert "From the other" in only and "From the first" not in only
        assert browser.get(f"/calendar?engagement_id={foreign.id}").status_code == 404

    def test_the_calendar_reads_in_spanish(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        planned(client, world, "2027-03-04T10:00:00+01:00", title="Primavera")
        browser = browser_for(make_client, world.parties.reviewer.email)
        page = browser.get(
            f"/engagements/{world.engagement.id}/calendar?date=2027-03-01",
            headers={"Accept-Language": "es"},
        )
        assert page.headers["Content-Language"] == "es"
        assert "marzo de 2027" in page.text
        # Spanish weeks start on Monday.
        assert re.search(r"<thead><tr><th scope=\"col\">lun", page.text)
