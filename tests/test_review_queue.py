"""The reviewer's queue, bulk approval and what waits on the brand (issue #5, item 8)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.content.models import Post
from app.db import utcnow
from app.engagements.models import Engagement
from app.engagements.schemas import PolicyStepIn
from tests.engagement_factories import Parties, accepted_engagement, make_parties
from tests.factories import bearer, create_token, sign_in
from tests.post_factories import API, draft, edit, read, set_policy, submit


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    other: Engagement  # a second engagement of the same brand and agency
    reviewer: str
    creator: str


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db, signs_in=True)
    engagement = accepted_engagement(db, parties)
    other = accepted_engagement(db, parties, name="Community 2027")
    return World(
        parties=parties,
        engagement=engagement,
        other=other,
        reviewer=create_token(db, parties.reviewer, parties.brand),
        creator=create_token(db, parties.creator, parties.agency),
    )


def submitted(
    client: TestClient, world: World, engagement: Engagement | None = None, **fields: Any
) -> dict[str, Any]:
    created = draft(client, world.creator, (engagement or world.engagement).id, **fields)
    return submit(client, world.creator, created["id"])


def overdue(db: Session, post_id: str, hours: int = 3) -> None:
    """As if the brand had sat on it: its due time is behind us."""
    db.expire_all()
    row = db.get(Post, uuid.UUID(post_id))
    assert row is not None
    row.review_due_at = utcnow() - timedelta(hours=hours)
    db.add(row)
    db.commit()


def queue_titles(html: str) -> list[str]:
    return re.findall(r'<a href="[^"]*/posts/[0-9a-f-]+">([^<]+)</a>', html)


def signed_in(make_client: Any, email: str) -> tuple[TestClient, str]:
    browser: TestClient = make_client()
    return browser, sign_in(browser, email)


class TestQueuePage:
    def test_what_waits_for_me_oldest_first_with_due_times_and_overdue_flags(
        self, client: TestClient, make_client: Any, db: Session, world: World
    ) -> None:
        first = submitted(client, world, title="First in")
        submitted(client, world, title="Second in")
        overdue(db, first["id"])
        browser, _csrf = signed_in(make_client, world.parties.reviewer.email)
        page = browser.get("/review-queue")
        assert page.status_code == 200
        assert queue_titles(page.text) == ["First in", "Second in"]
        assert page.text.count('<span class="flag">Overdue</span>') == 1
        assert "2 posts wait for you" in page.text

    def test_filters_narrow_the_list_and_htmx_gets_only_the_list(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        submitted(client, world, title="Instagram spring", channels=["instagram"])
        submitted(client, world, title="Forum autumn", channels=["forums"], campaign="Autumn")
        submitted(client, world, world.other, title="Other engagement")
        browser, _csrf = signed_in(make_client, world.parties.reviewer.email)
        assert queue_titles(browser.get("/review-queue?channel=forums").text) == ["Forum autumn"]
        assert queue_titles(browser.get("/review-queue?campaign=Autumn").text) == ["Forum autumn"]
        only_other = browser.get(f"/review-queue?engagement_id={world.other.id}")
        assert queue_titles(only_other.text) == ["Other engagement"]
        partial = browser.get(
            "/review-queue?channel=instagram",
            headers={"HX-Request": "true", "HX-Target": "queue-list"},
        )
        assert "<html" not in partial.text
        assert queue_titles(partial.text) == ["Instagram spring", "Other engagement"]

    def test_filtering_by_someone_elses_engagement_is_404(
        self, client: TestClient, make_client: Any, db: Session, world: World
    ) -> None:
        stranger = make_parties(db)
        foreign = accepted_engagement(db, stranger)
        browser, _csrf = signed_in(make_client, world.parties.reviewer.email)
        assert browser.get(f"/review-queue?engagement_id={foreign.id}").status_code == 404
        api = client.get(
            f"{API}/me/review-queue?engagement_id={foreign.id}", headers=bearer(world.reviewer)
        )
        assert api.status_code == 404


class TestBulkApprove:
    def test_each_post_is_approved_on_the_hash_seen_and_a_changed_one_is_stale(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        posts = [submitted(client, world, title=f"Post {n}") for n in range(3)]
        browser, csrf = signed_in(make_client, world.parties.reviewer.email)
        page = browser.get("/review-queue").text
        picks = re.findall(r'name="post" value="([^"]+)"', page)
        assert len(picks) == 3
        # The agency changes the second post after the reviewer loaded the queue.
        changed = edit(
            client, world.creator, read(client, world.creator, posts[1]["id"]), body="New"
        )
        assert changed.status_code == 200

        answer = browser.post(
            "/review-queue/approve",
            data={"csrf_token": csrf, "post": picks},
            headers={"HX-Request": "true", "HX-Target": "queue-list"},
        )
        assert answer.status_code == 200, answer.text
        assert "<html" not in answer.text
        statuses = [read(client, world.creator, post["id"])["status"] for post in posts]
        assert statuses == ["approved", "in_review", "approved"]
        assert "Changed since you loaded the queue: not approved" in answer.text
        assert answer.text.count('class="outcome-approved"') == 2
        # What is left in the queue is the changed post, to be read again.
        assert queue_titles(answer.text.split("bulk-report")[-1])[-1] == "Post 1"

    def test_a_missed_slot_is_refused_in_bulk_and_the_others_go_through(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        gone = (utcnow() - timedelta(hours=2)).replace(microsecond=0).isoformat()
        late = submitted(client, world, title="Too late", planned_at=gone)
        fine = submitted(client, world, title="In time")
        browser, csrf = signed_in(make_client, world.parties.reviewer.email)
        page = browser.get("/review-queue").text
        assert "Missed slot: needs a new time before approval" in page
        # Its checkbox is disabled; a hand-made request for it is refused all the same.
        late_hash = read(client, world.reviewer, late["id"])["current"]["content_hash"]
        fine_hash = read(client, world.reviewer, fine["id"])["current"]["content_hash"]
        answer = browser.post(
            "/review-queue/approve",
            data={
                "csrf_token": csrf,
                "post": [f"{late['id']}:{late_hash}", f"{fine['id']}:{fine_hash}"],
            },
        )
        assert answer.status_code == 200
        assert "choose a new time" in answer.text
        assert read(client, world.creator, late["id"])["status"] == "in_review"
        assert read(client, world.creator, fine["id"])["status"] == "approved"

    def test_bulk_approval_needs_the_csrf_token(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        post = submitted(client, world)
        browser, _csrf = signed_in(make_client, world.parties.reviewer.email)
        pick = f"{post['id']}:{post['current']['content_hash']}"
        assert browser.post("/review-queue/approve", data={"post": pick}).status_code == 403
        assert read(client, world.creator, post["id"])["status"] == "in_review"

    def test_an_agency_user_cannot_approve_in_bulk(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        post = submitted(client, world)
        browser, csrf = signed_in(make_client, world.parties.creator.email)
        pick = f"{post['id']}:{post['current']['content_hash']}"
        answer = browser.post("/review-queue/approve", data={"csrf_token": csrf, "post": pick})
        assert answer.status_code == 200
        assert "Only the brand&#39;s reviewers decide on posts." in answer.text
        assert read(client, world.creator, post["id"])["status"] == "in_review"


class TestQueueApi:
    def test_the_api_queue_carries_due_times_and_takes_the_same_filters(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        first = submitted(client, world, title="Spring", channels=["instagram"])
        submitted(client, world, world.other, title="Forum", channels=["forums"], campaign="Q3")
        overdue(db, first["id"])
        everything = client.get(f"{API}/me/review-queue", headers=bearer(world.reviewer)).json()
        assert [(item["title"], item["overdue"]) for item in everything] == [
            ("Spring", True),
            ("Forum", False),
        ]
        assert all(item["review_due_at"] for item in everything)
        by_channel = client.get(
            f"{API}/me/review-queue?channel=forums", headers=bearer(world.reviewer)
        ).json()
        assert [item["title"] for item in by_channel] == ["Forum"]
        by_engagement = client.get(
            f"{API}/me/review-queue?engagement_id={world.engagement.id}",
            headers=bearer(world.reviewer),
        ).json()
        assert [item["title"] for item in by_engagement] == ["Spring"]
        by_campaign = client.get(
            f"{API}/me/review-queue?campaign=Q3", headers=bearer(world.reviewer)
        ).json()
        assert [item["title"] for item in by_campaign] == ["Forum"]


class TestWaitingOnTheBrand:
    def test_the_agency_sees_its_posts_in_review_overdue_first_with_the_step(
        self, client: TestClient, make_client: Any, db: Session, world: World
    ) -> None:
        set_policy(
            db,
            world.parties.lead,
            world.engagement.id,
            PolicyStepIn(name="Marketing", roles=["reviewer"]),
            PolicyStepIn(name="Legal", roles=["lead"]),
        )
        submitted(client, world, title="Recent")
        late = submitted(client, world, title="Sat on")
        overdue(db, late["id"], hours=30)
        browser, _csrf = signed_in(make_client, world.parties.creator.email)
        page = browser.get("/waiting-on-brand")
        assert page.status_code == 200
        assert queue_titles(page.text) == ["Sat on", "Recent"]
        assert "Step 1 of 2: Marketing" in page.text
        assert page.text.count('<span class="flag">Overdue</span>') == 1
        # The agency is told which step decides, never who the brand's people are.
        assert world.parties.reviewer.name not in page.text

    def test_the_brand_side_sees_who_still_has_to_decide(
        self, client: TestClient, make_client: Any, world: World
    ) -> None:
        submitted(client, world, title="Waiting")
        browser, _csrf = signed_in(make_client, world.parties.lead.email)
        page = browser.get("/waiting-on-brand").text
        assert world.parties.reviewer.name in page

    def test_the_engagement_page_counts_overdue_reviews(
        self, client: TestClient, make_client: Any, db: Session, world: World
    ) -> None:
        browser, _csrf = signed_in(make_client, world.parties.creator.email)
        path = f"/engagements/{world.engagement.id}"
        assert "past its due time" not in browser.get(path).text
        post = submitted(client, world)
        overdue(db, post["id"])
        page = browser.get(path).text
        assert "1 post has waited for the brand's review past its due time." in page
        assert f"/waiting-on-brand?engagement_id={world.engagement.id}" in page
