"""Posts and their review (issue #5): the agency drafts, the brand approves exactly what
goes out, every decision is bound to a version hash, and every step lands on the audit chain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.content.models import Decision, PostVersion
from app.content.service import hash_of
from app.engagements.models import Engagement
from app.engagements.schemas import PolicyStepIn
from app.tenancy.models import Role
from tests.engagement_factories import Parties, accepted_engagement, make_parties, person
from tests.factories import bearer, create_token, sign_in
from tests.post_factories import API, decide, draft, edit, read, set_policy, submit


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    lead: str
    reviewer: str
    creator: str
    manager: str


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db)
    return World(
        parties=parties,
        engagement=accepted_engagement(db, parties),
        lead=create_token(db, parties.lead, parties.brand),
        reviewer=create_token(db, parties.reviewer, parties.brand),
        creator=create_token(db, parties.creator, parties.agency),
        manager=create_token(db, parties.manager, parties.agency),
    )


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def submitted(client: TestClient, world: World) -> dict[str, Any]:
    """A post the creator drafted and submitted."""
    return submit(client, world.creator, draft(client, world.creator, world.engagement.id)["id"])


def versions_in_db(db: Session, post_id: str) -> list[PostVersion]:
    db.expire_all()
    return list(
        db.exec(
            select(PostVersion)
            .where(PostVersion.post_id == uuid.UUID(post_id))
            .order_by(col(PostVersion.number))
        ).all()
    )


def decisions_in_db(db: Session, post_id: str) -> list[Decision]:
    db.expire_all()
    return list(
        db.exec(
            select(Decision)
            .where(Decision.post_id == uuid.UUID(post_id))
            .order_by(col(Decision.created_at))
        ).all()
    )


class TestLifecycle:
    def test_draft_submit_request_changes_edit_and_approve_the_new_version(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        assert (post["status"], post["current"]["number"], post["rounds"]) == ("draft", 1, 0)
        assert post["current"]["planned_at"].startswith("2027-03-01T08:00:00")  # stored in UTC
        assert post["current"]["timezone"] == "Europe/Madrid"

        posted = submit(client, world.creator, post["id"])
        assert (posted["status"], posted["rounds"]) == ("in_review", 1)
        assert posted["review"]["step_name"] == "Brand review"
        assert set(posted["review"]["waiting_on"]) == {
            world.parties.lead.name,
            world.parties.reviewer.name,
        }

        problem(decide(client, world.reviewer, posted, "request_changes"), 422)
        asked = decide(client, world.reviewer, posted, "request_changes", "Say 'Friday 10am'.")
        assert asked.status_code == 201, asked.text
        changed = read(client, world.creator, post["id"])
        assert changed["status"] == "changes_requested"
        assert changed["review"] is None

        edited = edit(client, world.creator, changed, body="Our spring collection: Friday 10am.")
        assert edited.status_code == 200, edited.text
        second = submit(client, world.creator, post["id"])
        assert (second["status"], second["rounds"], second["current"]["number"]) == (
            "in_review",
            2,
            2,
        )

        approved = decide(client, world.reviewer, second)
        assert approved.status_code == 201, approved.text
        assert approved.json()["version_hash"] == second["current"]["content_hash"]
        final = read(client, world.lead, post["id"])
        assert final["status"] == "approved"
        assert final["approved_hash"] == final["current"]["content_hash"]
        assert final["approved_hash"] == hash_of(versions_in_db(db, post["id"])[-1])

        numbers = client.get(f"{API}/posts/{post['id']}/versions", headers=bearer(world.lead))
        assert [v["number"] for v in numbers.json()] == [1, 2]
        first = client.get(f"{API}/posts/{post['id']}/versions/1", headers=bearer(world.lead))
        assert first.json()["body"] == "Our spring collection lands on Friday."
        problem(client.get(f"{API}/posts/{post['id']}/versions/9", headers=bearer(world.lead)), 404)

    def test_every_save_makes_an_immutable_version_and_needs_if_match(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        url = f"{API}/posts/{post['id']}"
        problem(client.patch(url, json={"body": "x"}, headers=bearer(world.creator)), 428)
        stale = {**bearer(world.creator), "If-Match": '"7"'}
        problem(client.patch(url, json={"body": "x"}, headers=stale), 412)
        saved = edit(client, world.creator, post, body="Second words")
        assert saved.status_code == 200, saved.text
        assert saved.headers["ETag"] == f'"{saved.json()["version"]}"'
        problem(edit(client, world.creator, post, body="Lost update"), 412)  # the old ETag
        rows = versions_in_db(db, post["id"])
        assert [(v.number, v.body) for v in rows] == [
            (1, "Our spring collection lands on Friday."),
            (2, "Second words"),
        ]
        assert rows[0].content_hash != rows[1].content_hash
        assert all(v.content_hash == hash_of(v) for v in rows)

    def test_the_brand_cannot_draft_and_bad_input_is_refused(
        self, client: TestClient, world: World
    ) -> None:
        url = f"{API}/engagements/{world.engagement.id}/posts"
        refused = client.post(url, json={"title": "Ours"}, headers=bearer(world.lead))
        problem(refused, 403)
        bad = client.post(
            url, json={"title": "T", "timezone": "Mars/Base"}, headers=bearer(world.creator)
        )
        errors = {e["field"]: e["message"] for e in problem(bad, 422)["errors"]}
        # Our validator's own message, not pydantic's generic one.
        assert errors["timezone"] == "Use an IANA time zone, such as Europe/Madrid."

    def test_reject_needs_a_reason_and_ends_the_round(
        self, client: TestClient, world: World
    ) -> None:
        post = submitted(client, world)
        errors = problem(decide(client, world.lead, post, "reject"), 422)["errors"]
        assert [e["field"] for e in errors] == ["comment"]
        assert decide(client, world.lead, post, "reject", "Off brand").status_code == 201
        assert read(client, world.creator, post["id"])["status"] == "rejected"
        problem(decide(client, world.reviewer, post), 409)  # not in review any more
        problem(edit(client, world.creator, read(client, world.creator, post["id"]), body="x"), 409)

    def test_the_agency_withdraws_a_post(self, client: TestClient, world: World) -> None:
        post = submitted(client, world)
        url = f"{API}/posts/{post['id']}/withdraw"
        problem(client.post(url, headers=bearer(world.lead)), 403)
        problem(client.post(url, headers={**bearer(world.manager), "If-Match": '"99"'}), 412)
        withdrawn = client.post(url, headers=bearer(world.manager))
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "withdrawn"
        problem(decide(client, world.reviewer, post), 409)
        problem(client.post(url, headers=bearer(world.manager)), 409)

    def test_the_list_filters_by_status(self, client: TestClient, world: World) -> None:
        first = draft(client, world.creator, world.engagement.id, title="One")
        draft(client, world.creator, world.engagement.id, title="Two")
        submit(client, world.creator, first["id"])
        url = f"{API}/engagements/{world.engagement.id}/posts"
        everything = client.get(url, headers=bearer(world.reviewer)).json()
        assert sorted(p["title"] for p in everything) == ["One", "Two"]
        waiting = client.get(url, params={"status": "in_review"}, headers=bearer(world.reviewer))
        assert [p["title"] for p in waiting.json()] == ["One"]


class TestDecisionsAreBoundToTheVersion:
    def test_a_decision_on_a_stale_hash_is_refused_with_409(
        self, client: TestClient, world: World
    ) -> None:
        post = submitted(client, world)
        assert edit(client, world.creator, post, body="Changed under review").status_code == 200
        body = problem(decide(client, world.reviewer, post), 409)
        assert "version 2" in body["detail"]
        current = read(client, world.reviewer, post["id"])
        assert body["current_hash"] == current["current"]["content_hash"]
        assert (current["status"], current["rounds"]) == ("in_review", 2)
        assert decide(client, world.reviewer, current).status_code == 201

    def test_someone_not_eligible_for_the_open_step_gets_403_with_the_reason(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        viewer = person(db, world.parties.brand, Role.viewer, label="Brand Viewer")
        viewer_token = create_token(db, viewer, world.parties.brand)
        post = submitted(client, world)
        reason = problem(decide(client, viewer_token, post), 403)["detail"]
        assert "Brand review" in reason
        agency = problem(decide(client, world.creator, post), 403)["detail"]
        assert "brand" in agency
        assert decisions_in_db(db, post["id"]) == []

    def test_a_foreign_organization_gets_404_on_every_post_route(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        other = make_parties(db)
        accepted_engagement(db, other)
        outsider = create_token(db, other.lead, other.brand)
        rival = create_token(db, other.manager, other.agency)
        post = submitted(client, world)
        base = f"{API}/posts/{post['id']}"
        for token in (outsider, rival):
            headers = bearer(token)
            problem(client.get(base, headers=headers), 404)
            problem(client.get(f"{base}/versions", headers=headers), 404)
            problem(client.get(f"{base}/versions/1", headers=headers), 404)
            problem(client.patch(base, json={"body": 1}, headers=headers), 404)  # before 422/428
            problem(client.post(f"{base}/submit", headers=headers), 404)
            problem(client.post(f"{base}/withdraw", headers=headers), 404)
            problem(client.post(f"{base}/decisions", json={}, headers=headers), 404)
            problem(
                client.get(f"{API}/engagements/{world.engagement.id}/posts", headers=headers), 404
            )
            assert client.get(f"{API}/me/review-queue", headers=headers).json() == []

    def test_each_person_counts_once(self, client: TestClient, db: Session, world: World) -> None:
        set_policy(
            db,
            world.parties.lead,
            world.engagement.id,
            PolicyStepIn(name="Marketing", roles=["lead", "reviewer"], quorum="all"),
        )
        post = submitted(client, world)
        assert decide(client, world.reviewer, post).status_code == 201
        assert "already decided" in problem(decide(client, world.reviewer, post), 409)["detail"]
        review = read(client, world.creator, post["id"])["review"]
        assert (review["approvals"], review["needed"]) == (1, 2)
        assert len(decisions_in_db(db, post["id"])) == 1


class TestEditAfterApproval:
    def test_edit_after_approval_voids_it(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        post = submitted(client, world)
        approval = decide(client, world.reviewer, post).json()
        approved = read(client, world.creator, post["id"])
        assert approved["status"] == "approved"

        edited = edit(client, world.creator, approved, body="One more exclamation mark!")
        assert edited.status_code == 200, edited.text
        after = edited.json()
        assert after["status"] == "draft"
        assert after["approved_hash"] is None
        assert "approved" in after["voided_reason"]
        assert after["current"]["content_hash"] != approval["version_hash"]
        assert [d["voided"] for d in after["decisions"]] == [True]
        assert all(d.voided_at is not None for d in decisions_in_db(db, post["id"]))

        again = submit(client, world.creator, post["id"])
        assert (again["status"], again["rounds"]) == ("in_review", 2)
        assert again["review"]["approvals"] == 0

    def test_edit_in_review_voids_the_decisions_so_far_and_starts_a_new_round(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        set_policy(
            db,
            world.parties.lead,
            world.engagement.id,
            PolicyStepIn(name="Marketing", roles=["lead", "reviewer"], quorum="all"),
        )
        post = submitted(client, world)
        assert decide(client, world.reviewer, post).status_code == 201
        edited = edit(client, world.creator, read(client, world.creator, post["id"]), body="New")
        after = edited.json()
        assert (after["status"], after["rounds"], after["review"]["approvals"]) == (
            "in_review",
            2,
            0,
        )
        assert "review starts again" in after["voided_reason"]
        assert [d.voided_at is not None for d in decisions_in_db(db, post["id"])] == [True]


class TestPolicies:
    def test_a_two_step_policy_with_a_quorum(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        parties = world.parties
        second = person(db, parties.brand, Role.reviewer, label="Second Reviewer")
        second_token = create_token(db, second, parties.brand)
        set_policy(
            db,
            parties.lead,
            world.engagement.id,
            PolicyStepIn(name="Marketing", roles=["reviewer"], quorum=2),
            PolicyStepIn(name="Legal", people=[str(parties.lead.id)], quorum="all"),
        )
        post = submitted(client, world)
        assert post["review"]["step_name"] == "Marketing"
        assert post["review"]["needed"] == 2
        problem(decide(client, world.lead, post), 403)  # Legal's turn has not come
        queue = client.get(f"{API}/me/review-queue", headers=bearer(second_token)).json()
        assert [item["post_id"] for item in queue] == [post["id"]]
        assert client.get(f"{API}/me/review-queue", headers=bearer(world.lead)).json() == []

        assert decide(client, world.reviewer, post).status_code == 201
        halfway = read(client, world.creator, post["id"])
        assert (halfway["review"]["step"], halfway["review"]["approvals"]) == (0, 1)
        assert halfway["review"]["waiting_on"] == [second.name]
        assert client.get(f"{API}/me/review-queue", headers=bearer(world.reviewer)).json() == []
        assert decide(client, second_token, post).status_code == 201

        legal = read(client, world.creator, post["id"])
        assert (legal["status"], legal["review"]["step_name"]) == ("in_review", "Legal")
        assert legal["review"]["waiting_on"] == [parties.lead.name]
        problem(decide(client, world.reviewer, post), 403)
        queue = client.get(f"{API}/me/review-queue", headers=bearer(world.lead)).json()
        assert [item["step_name"] for item in queue] == ["Legal"]
        assert decide(client, world.lead, post).status_code == 201
        assert read(client, world.creator, post["id"])["status"] == "approved"

    def test_request_changes_at_a_later_step_ends_the_round(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        set_policy(
            db,
            world.parties.lead,
            world.engagement.id,
            PolicyStepIn(name="Marketing", roles=["reviewer"], quorum="any"),
            PolicyStepIn(name="Legal", roles=["lead"], quorum="any"),
        )
        post = submitted(client, world)
        assert decide(client, world.reviewer, post).status_code == 201
        asked = decide(client, world.lead, post, "request_changes", "Add the legal line.")
        assert asked.status_code == 201
        assert asked.json()["step"] == 1
        assert read(client, world.creator, post["id"])["status"] == "changes_requested"

    def test_the_queue_is_oldest_first(self, client: TestClient, world: World) -> None:
        first = draft(client, world.creator, world.engagement.id, title="First")
        second = draft(client, world.creator, world.engagement.id, title="Second")
        submit(client, world.creator, second["id"])
        submit(client, world.creator, first["id"])
        queue = client.get(f"{API}/me/review-queue", headers=bearer(world.reviewer)).json()
        assert [item["title"] for item in queue] == ["Second", "First"]
        assert queue[0]["version_hash"] == second["current"]["content_hash"]


class TestAuditRecord:
    def test_the_chain_verifies_and_the_approval_names_the_approved_hash(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        post = submitted(client, world)
        assert decide(client, world.reviewer, post).status_code == 201
        approved = read(client, world.lead, post["id"])
        db.expire_all()
        assert audit.verify_chain(db, world.engagement.id).ok
        entries = db.exec(
            select(AuditEntry)
            .where(AuditEntry.chain_id == world.engagement.id, AuditEntry.subject_id == post["id"])
            .order_by(col(AuditEntry.seq))
        ).all()
        kinds = [entry.kind for entry in entries]
        assert kinds == ["post_created", "post_submitted", "decision_approve", "post_approved"]
        approval = entries[-1]
        assert approval.data["sha256"] == approved["approved_hash"]
        assert approval.actor.startswith(world.parties.reviewer.name)
        exported = client.get(
            f"{API}/engagements/{world.engagement.id}/audit", headers=bearer(world.lead)
        ).json()
        assert exported["verified"] is True


HX = {"HX-Request": "true", "HX-Target": "post-main"}


class TestPages:
    @pytest.fixture
    def people(self, db: Session) -> World:
        parties = make_parties(db, signs_in=True)
        return World(
            parties=parties,
            engagement=accepted_engagement(db, parties),
            lead=create_token(db, parties.lead, parties.brand),
            reviewer=create_token(db, parties.reviewer, parties.brand),
            creator=create_token(db, parties.creator, parties.agency),
            manager=create_token(db, parties.manager, parties.agency),
        )

    @pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
    def test_the_posts_page_lists_posts_by_status(
        self, make_client: Any, people: World, htmx: bool
    ) -> None:
        browser: TestClient = make_client()
        api: TestClient = make_client()
        submitted(api, people)
        draft(api, people.creator, people.engagement.id, title="Still a draft")
        sign_in(browser, people.parties.creator.email)
        headers = {"HX-Request": "true"} if htmx else {}
        page = browser.get(f"/engagements/{people.engagement.id}/posts", headers=headers)
        assert page.status_code == 200, page.text
        in_review = page.text.index("In review")
        assert (
            page.text.index("Still a draft") < in_review < page.text.index("Spring launch teaser")
        )

    def test_a_reviewer_approves_from_the_review_page_in_place(
        self, make_client: Any, people: World
    ) -> None:
        browser: TestClient = make_client()
        api: TestClient = make_client()
        post = submitted(api, people)
        csrf = sign_in(browser, people.parties.reviewer.email)
        page = browser.get(f"/posts/{post['id']}")
        assert page.status_code == 200, page.text
        assert "Our spring collection lands on Friday." in page.text
        assert people.parties.reviewer.name in page.text  # still has to decide
        assert 'value="approve"' in page.text
        form = {
            "csrf_token": csrf,
            "decision": "approve",
            "version_hash": post["current"]["content_hash"],
        }
        unsigned = browser.post(f"/posts/{post['id']}/decisions", data={**form, "csrf_token": "x"})
        assert unsigned.status_code == 403
        answer = browser.post(f"/posts/{post['id']}/decisions", data=form, headers=HX)
        assert answer.status_code == 200, answer.text
        assert "<html" not in answer.text  # only the block
        assert "Approved" in answer.text
        assert 'value="approve"' not in answer.text
        assert read(api, people.lead, post["id"])["status"] == "approved"

    def test_a_stale_version_on_the_page_says_so_and_decides_nothing(
        self, make_client: Any, db: Session, people: World
    ) -> None:
        browser: TestClient = make_client()
        api: TestClient = make_client()
        post = submitted(api, people)
        assert edit(api, people.creator, post, body="Changed").status_code == 200
        csrf = sign_in(browser, people.parties.reviewer.email)
        form = {
            "csrf_token": csrf,
            "decision": "approve",
            "version_hash": post["current"]["content_hash"],
        }
        answer = browser.post(f"/posts/{post['id']}/decisions", data=form, headers=HX)
        assert answer.status_code == 409
        assert "version 2" in answer.text
        without_comment = browser.post(
            f"/posts/{post['id']}/decisions",
            data={
                **form,
                "decision": "reject",
                "version_hash": read(api, people.lead, post["id"])["current"]["content_hash"],
            },
            headers=HX,
        )
        assert without_comment.status_code == 422
        assert decisions_in_db(db, post["id"]) == []

    def test_someone_else_gets_404_and_the_agency_sees_who_holds_it_up_without_buttons(
        self, make_client: Any, db: Session, people: World
    ) -> None:
        browser: TestClient = make_client()
        api: TestClient = make_client()
        post = submitted(api, people)
        other = make_parties(db, signs_in=True)
        sign_in(browser, other.lead.email)
        assert browser.get(f"/posts/{post['id']}").status_code == 404
        creator = make_client()
        sign_in(creator, people.parties.creator.email)
        page = creator.get(f"/posts/{post['id']}")
        assert page.status_code == 200
        assert 'value="approve"' not in page.text
        assert people.parties.lead.name in page.text  # the agency sees who holds it up
