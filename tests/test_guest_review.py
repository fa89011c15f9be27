"""Guest review (issue #5, item 10): a brand reviewer sends one step of one post to someone
without an account; the guest decides in the reviewer's seat through a single-use link.

The "done when" of the issue: a two-step policy (marketing, then legal as a guest link)
works end to end. Also here, as PostgreSQL's runtime role: the guest's request under
row-level security, and the agency seeing who still has to decide.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.accounts.service import secret_hash
from app.audit import service as audit
from app.audit.models import AuditEntry
from app.config import Settings
from app.content.models import Decision, GuestReviewLink, Post
from app.db import Database, utcnow
from app.engagements.models import Engagement
from app.engagements.schemas import PolicyStepIn
from app.logs import RedactSecretPaths
from app.main import create_app
from app.tenancy.models import Role
from tests.conftest import csrf_of
from tests.engagement_factories import Parties, accepted_engagement, make_parties, person
from tests.factories import create_token, sign_in
from tests.post_factories import decide, draft, read, set_policy, submit
from tests.smtp import Delivered, SmtpServer
from tests.test_row_level_security import app_role_url, runtime  # noqa: F401 - fixtures

LEGAL = "legal@brand.example"


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    reviewer: str  # API tokens
    creator: str


def two_steps(db: Session, parties: Parties, engagement_id: uuid.UUID) -> None:
    """Marketing (the brand's reviewers), then Legal (the lead, who sends it to legal)."""
    set_policy(
        db,
        parties.lead,
        engagement_id,
        PolicyStepIn(name="Marketing", roles=["reviewer"], quorum="any"),
        PolicyStepIn(name="Legal", people=[str(parties.lead.id)], quorum="any"),
    )


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db, signs_in=True)
    engagement = accepted_engagement(db, parties)
    two_steps(db, parties, engagement.id)
    return World(
        parties=parties,
        engagement=engagement,
        reviewer=create_token(db, parties.reviewer, parties.brand),
        creator=create_token(db, parties.creator, parties.agency),
    )


def at_legal_step(client: TestClient, world: World, **fields: Any) -> dict[str, Any]:
    """A post the creator submitted and marketing approved: the legal step is open."""
    post = submit(
        client, world.creator, draft(client, world.creator, world.engagement.id, **fields)["id"]
    )
    approved = decide(client, world.reviewer, post)
    assert approved.status_code in (200, 201), approved.text
    post = read(client, world.creator, post["id"])
    assert post["status"] == "in_review" and post["review"]["step_name"] == "Legal"
    return post


def mail_to(smtp: SmtpServer, address: str) -> Delivered:
    """The mail sent to ``address`` (others, such as notifications, may arrive around it)."""
    for count in range(1, 20):
        for delivered in smtp.inbox.wait_for(count):
            if delivered.recipients == [address]:
                return delivered
    raise AssertionError(f"no mail to {address}")


def send_link(client: TestClient, csrf: str, post_id: str, email: str = LEGAL) -> Any:
    return client.post(
        f"/posts/{post_id}/guest-links",
        data={"email": email, "note": "Please check the claims.", "csrf_token": csrf},
    )


def links_in_db(db: Session, post_id: str) -> list[GuestReviewLink]:
    db.expire_all()
    return list(
        db.exec(
            select(GuestReviewLink)
            .where(GuestReviewLink.post_id == uuid.UUID(post_id))
            .order_by(col(GuestReviewLink.created_at))
        ).all()
    )


def guest_decides(
    guest: TestClient, path: str, post: dict[str, Any], decision: str, comment: str = ""
) -> Any:
    page = guest.get(path)
    assert page.status_code == 200, page.text
    return guest.post(
        path,
        data={
            "decision": decision,
            "comment": comment,
            "version_hash": post["current"]["content_hash"],
            "csrf_token": csrf_of(page.text),
        },
    )


class TestTwoStepPolicyWithALegalGuest:
    def test_marketing_then_legal_as_a_guest_link_works_end_to_end(
        self,
        db: Session,
        world: World,
        mail_client: TestClient,
        smtp: SmtpServer,
        make_client: Callable[[], TestClient],
    ) -> None:
        post = at_legal_step(mail_client, world)
        csrf = sign_in(mail_client, world.parties.lead.email)
        page = mail_client.get(f"/posts/{post['id']}")
        assert "Send a review link" in page.text

        sent = send_link(mail_client, csrf, post["id"])
        assert sent.status_code == 303, sent.text
        mail = mail_to(smtp, LEGAL)
        assert world.parties.lead.name in mail.subject
        path = mail.link("/guest-review/")
        [link] = links_in_db(db, post["id"])
        # Only the hash is stored: the database alone opens nothing.
        assert link.token_hash == secret_hash(path.rsplit("/", 1)[1])
        assert path.rsplit("/", 1)[1] not in str(link.model_dump())
        assert (link.round, link.step, link.step_name) == (1, 1, "Legal")
        assert link.expires_at - link.created_at == timedelta(days=7)
        listed = mail_client.get(f"/posts/{post['id']}")
        assert LEGAL in listed.text and "Withdraw" in listed.text

        guest = make_client()  # a browser nobody signed in to
        shown = guest.get(path)
        assert shown.status_code == 200
        assert post["current"]["body"] in shown.text
        assert "https://brand.example/spring" in shown.text
        assert "Instagram" in shown.text
        assert post["current"]["content_hash"] in shown.text
        assert world.parties.lead.name in shown.text

        decided = guest_decides(guest, path, post, "approve")
        assert decided.status_code == 200, decided.text
        assert "Decision recorded" in decided.text

        after = read(mail_client, world.creator, post["id"])
        assert after["status"] == "approved"
        assert after["approved_hash"] == post["current"]["content_hash"]
        db.expire_all()
        legal = db.exec(
            select(Decision).where(Decision.post_id == uuid.UUID(post["id"]), Decision.step == 1)
        ).one()
        assert legal.decider_name == LEGAL
        assert legal.guest_link_id == link.id
        assert legal.decider_id == world.parties.lead.id  # the seat it was delegated from
        assert legal.version_hash == post["current"]["content_hash"]
        entries = db.exec(
            select(AuditEntry)
            .where(AuditEntry.chain_id == world.engagement.id)
            .order_by(col(AuditEntry.seq))
        ).all()
        approval = next(
            e for e in entries if e.kind == "decision_approve" and e.data.get("step") == 1
        )
        assert approval.data["guest_email"] == LEGAL
        assert approval.data["guest_link_id"] == str(link.id)
        assert approval.data["sha256"] == post["current"]["content_hash"]
        assert LEGAL in approval.actor and approval.actor_id is None
        assert [e.kind for e in entries][-2:] == ["decision_approve", "post_approved"]
        assert "guest_link_sent" in [e.kind for e in entries]
        assert audit.verify_chain(db, world.engagement.id).ok

        # The link died with its use, and says whom to ask.
        again = guest.get(path)
        assert again.status_code == 410
        assert "used already" in again.text
        assert world.parties.lead.email in again.text

    def test_a_guest_asking_for_changes_must_say_what_and_ends_the_round(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        post = at_legal_step(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        assert send_link(client, csrf, post["id"]).status_code == 303
        path = _link_path(db, client, post["id"])
        guest = make_client()
        refused = guest_decides(guest, path, post, "request_changes")
        assert refused.status_code == 422
        assert "Say what should change." in refused.text
        assert links_in_db(db, post["id"])[0].used_at is None  # still usable
        asked = guest_decides(guest, path, post, "request_changes", "Drop the word 'best'.")
        assert asked.status_code == 200, asked.text
        assert read(client, world.creator, post["id"])["status"] == "changes_requested"
        assert links_in_db(db, post["id"])[0].used_at is not None


def _link_path(db: Session, client: TestClient, post_id: str) -> str:
    """Send-and-capture without a mail server: re-issue the token the test knows."""
    [link] = links_in_db(db, post_id)[-1:]
    raw = f"test-{uuid.uuid4().hex}"
    db.execute(
        sa.update(GuestReviewLink)
        .where(col(GuestReviewLink.id) == link.id)
        .values(token_hash=secret_hash(raw))
    )
    db.commit()
    return f"/guest-review/{raw}"


class TestWhatTheGuestSees:
    def test_the_guest_sees_the_versions_media_and_nothing_else(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        png = (Path(__file__).parent / "fixtures" / "media" / "square.png").read_bytes()
        uploaded = client.post(
            f"/api/v1/posts/{post['id']}/media",
            files={"file": ("square.png", png, "image/png")},
            headers={
                "Authorization": f"Bearer {world.creator}",
                "If-Match": f'"{post["version"]}"',
            },
        )
        assert uploaded.status_code in (200, 201), uploaded.text
        submit(client, world.creator, post["id"])
        post = read(client, world.creator, post["id"])
        assert decide(client, world.reviewer, post).status_code in (200, 201)
        csrf = sign_in(client, world.parties.lead.email)
        send_link(client, csrf, post["id"])
        path = _link_path(db, client, post["id"])
        guest = make_client()
        page = guest.get(path)
        digest = hashlib.sha256(png).hexdigest()
        assert f"{path}/media/{digest}" in page.text
        image = guest.get(f"{path}/media/{digest}")
        assert image.status_code == 200
        assert image.content == png and image.headers["content-type"] == "image/png"
        assert guest.get(f"{path}/media/{'0' * 64}").status_code == 404
        assert guest.get(f"/guest-review/wrong-token/media/{digest}").status_code == 404


class TestDeadLinks:
    def test_an_expired_link_says_so_and_whom_to_ask(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        post = at_legal_step(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        send_link(client, csrf, post["id"])
        path = _link_path(db, client, post["id"])
        link = links_in_db(db, post["id"])[0]
        db.execute(
            sa.update(GuestReviewLink)
            .where(col(GuestReviewLink.id) == link.id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        db.commit()
        page = make_client().get(path)
        assert page.status_code == 410
        assert "has expired" in page.text
        assert world.parties.lead.name in page.text
        assert f"mailto:{world.parties.lead.email}" in page.text

    def test_a_withdrawn_link_is_dead_at_once(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        post = at_legal_step(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        send_link(client, csrf, post["id"])
        path = _link_path(db, client, post["id"])
        guest = make_client()
        page = guest.get(path)
        assert page.status_code == 200
        link = links_in_db(db, post["id"])[0]
        revoked = client.post(
            f"/posts/{post['id']}/guest-links/{link.id}/revoke", data={"csrf_token": csrf}
        )
        assert revoked.status_code == 303
        assert "withdrawn" in client.get(f"/posts/{post['id']}").text.lower()
        late = guest.post(
            path,
            data={
                "decision": "approve",
                "version_hash": post["current"]["content_hash"],
                "csrf_token": csrf_of(page.text),
            },
        )
        assert late.status_code == 410
        assert "withdrawn by the brand" in late.text
        assert read(client, world.creator, post["id"])["status"] == "in_review"
        kinds = db.exec(
            select(AuditEntry.kind).where(AuditEntry.chain_id == world.engagement.id)
        ).all()
        assert "guest_link_revoked" in kinds

    def test_a_link_dies_when_the_review_moves_on(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        post = at_legal_step(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        send_link(client, csrf, post["id"])
        path = _link_path(db, client, post["id"])
        edited = client.patch(
            f"/api/v1/posts/{post['id']}",
            json={"body": "A new text."},
            headers={
                "Authorization": f"Bearer {world.creator}",
                "If-Match": f'"{post["version"]}"',
            },
        )
        assert edited.status_code == 200, edited.text
        page = make_client().get(path)
        assert page.status_code == 410
        assert "has moved on" in page.text

    def test_an_unknown_token_is_a_404_page(self, client: TestClient) -> None:
        page = client.get("/guest-review/not-a-real-token")
        assert page.status_code == 404
        assert "not valid" in page.text

    def test_the_access_log_never_shows_the_token(self) -> None:
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            "",
            0,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1", "GET", "/guest-review/s3cr3t-token/media/abc", "1.1", 200),
            None,
        )
        RedactSecretPaths().filter(record)
        assert "s3cr3t" not in record.getMessage()
        assert "/guest-review/[redacted]" in record.getMessage()


class TestWhoMaySend:
    def test_only_a_reviewer_who_may_decide_the_open_step_sends_it(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        post = at_legal_step(client, world)
        # The marketing reviewer is not a decider of the legal step.
        csrf = sign_in(client, world.parties.reviewer.email)
        refused = send_link(client, csrf, post["id"])
        assert refused.status_code == 403
        # Nor is anyone on the agency's side.
        agency = make_client()
        agency_csrf = sign_in(agency, world.parties.creator.email)
        assert send_link(agency, agency_csrf, post["id"]).status_code == 403
        assert "Guest reviewers" not in agency.get(f"/posts/{post['id']}").text
        assert links_in_db(db, post["id"]) == []

    def test_nothing_is_sent_for_a_post_no_longer_in_review(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        post = at_legal_step(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        lead_token = create_token(db, world.parties.lead, world.parties.brand)
        assert decide(client, lead_token, post, "approve").status_code in (200, 201)
        assert read(client, world.creator, post["id"])["status"] == "approved"
        refused = send_link(client, csrf, post["id"])
        assert refused.status_code == 303  # back to the post, which says why
        assert "not waiting for a decision" in client.get(f"/posts/{post['id']}").text
        assert links_in_db(db, post["id"]) == []

    def test_a_guest_decision_counts_once_in_the_senders_seat(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        second = person(db, world.parties.brand, Role.lead, label="Second Lead", signs_in=True)
        set_policy(
            db,
            world.parties.lead,
            world.engagement.id,
            PolicyStepIn(name="Marketing", roles=["reviewer"], quorum="any"),
            PolicyStepIn(
                name="Legal", people=[str(world.parties.lead.id), str(second.id)], quorum="all"
            ),
        )
        post = at_legal_step(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        send_link(client, csrf, post["id"])
        path = _link_path(db, client, post["id"])
        assert guest_decides(make_client(), path, post, "approve").status_code == 200
        after = read(client, world.creator, post["id"])
        assert after["status"] == "in_review"  # the second lead's seat is still open
        # The lead's seat is taken by the guest: the lead cannot decide it again.
        lead_token = create_token(db, world.parties.lead, world.parties.brand)
        again = decide(client, lead_token, after)
        assert again.status_code == 409
        second_token = create_token(db, second, world.parties.brand)
        assert decide(client, second_token, after).status_code in (200, 201)
        assert read(client, world.creator, post["id"])["status"] == "approved"


class TestWhoMayWithdraw:
    def test_the_withdraw_button_shows_only_to_those_who_may_withdraw(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        post = at_legal_step(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        assert send_link(client, csrf, post["id"]).status_code == 303
        [link] = links_in_db(db, post["id"])
        revoke = f"/posts/{post['id']}/guest-links/{link.id}/revoke"
        # The sender sees the button.
        assert revoke in client.get(f"/posts/{post['id']}").text
        # So does another lead of the brand (leads and owners change the engagement).
        other_lead = person(db, world.parties.brand, Role.lead, label="Other Lead", signs_in=True)
        lead_browser = make_client()
        sign_in(lead_browser, other_lead.email)
        assert revoke in lead_browser.get(f"/posts/{post['id']}").text
        # A brand reviewer sees the link listed, without the button, and may not withdraw it.
        reviewer = make_client()
        reviewer_csrf = sign_in(reviewer, world.parties.reviewer.email)
        page = reviewer.get(f"/posts/{post['id']}")
        assert page.status_code == 200
        assert LEGAL in page.text
        assert revoke not in page.text
        refused = reviewer.post(revoke, data={"csrf_token": reviewer_csrf})
        assert refused.status_code == 403
        assert links_in_db(db, post["id"])[0].revoked_at is None
        # The sender still may.
        assert client.post(revoke, data={"csrf_token": csrf}).status_code == 303
        assert links_in_db(db, post["id"])[0].revoked_at is not None


# --- PostgreSQL row-level security, as the runtime role -------------------------------

needs_postgres = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level security is PostgreSQL's (set TEST_DATABASE_URL to run these)",
)


@pytest.fixture
def runtime_client(settings: Settings, runtime: Database) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(settings, runtime), follow_redirects=False) as client:
        yield client


@pytest.fixture
def runtime_mail_client(
    mail_app: FastAPI,
    runtime: Database,  # noqa: F811 - the fixture imported above
) -> Iterator[TestClient]:
    app = create_app(mail_app.state.settings, runtime)
    with TestClient(app, follow_redirects=False) as client:
        yield client


@needs_postgres
class TestUnderRowLevelSecurity:
    def test_the_agency_sees_who_still_has_to_decide(
        self,
        db: Session,
        world: World,
        runtime: Database,  # noqa: F811
        runtime_client: TestClient,
    ) -> None:
        viewer = person(db, world.parties.brand, Role.viewer, label="Brand Viewer")
        client = runtime_client
        post = submit(
            client, world.creator, draft(client, world.creator, world.engagement.id)["id"]
        )
        sign_in(client, world.parties.creator.email)
        page = client.get(f"/posts/{post['id']}")
        assert page.status_code == 200, page.text
        waiting = page.text.split("Still to decide:", 1)[1].split("</ul>", 1)[0]
        assert world.parties.reviewer.name in waiting
        assert world.parties.lead.name not in waiting  # the lead decides the next step
        # At the database: the agency reads the brand's deciders, never its viewers, and
        # an agency with no engagement with the brand reads none of its memberships.
        rival = make_parties(db)
        with runtime.engine.begin() as connection:
            connection.execute(
                sa.text("SELECT set_config('brandkeep.org_ids', :o, true)"),
                {"o": str(world.parties.agency.id)},
            )
            users = set(
                connection.execute(
                    sa.text("SELECT user_id FROM membership WHERE organization_id = :b"),
                    {"b": world.parties.brand.id},
                ).scalars()
            )
            assert {world.parties.lead.id, world.parties.reviewer.id} <= users
            assert viewer.id not in users
        with runtime.engine.begin() as connection:
            connection.execute(
                sa.text("SELECT set_config('brandkeep.org_ids', :o, true)"),
                {"o": str(rival.agency.id)},
            )
            rows = connection.execute(
                sa.text("SELECT count(*) FROM membership WHERE organization_id = :b"),
                {"b": world.parties.brand.id},
            ).scalar()
            assert rows == 0

    def test_a_guest_decides_as_the_runtime_role(
        self,
        db: Session,
        world: World,
        runtime_mail_client: TestClient,
        smtp: SmtpServer,
        make_client: Callable[[], TestClient],
    ) -> None:
        client = runtime_mail_client
        post = at_legal_step(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        assert send_link(client, csrf, post["id"]).status_code == 303
        path = mail_to(smtp, LEGAL).link("/guest-review/")
        guest = TestClient(client.app, follow_redirects=False)
        with guest:
            decided = guest_decides(guest, path, post, "approve")
            assert decided.status_code == 200, decided.text
            assert guest.get(path).status_code == 410
        db.expire_all()
        found = db.get(Post, uuid.UUID(post["id"]))
        assert found is not None and found.status == "approved"
        assert audit.verify_chain(db, world.engagement.id).ok
