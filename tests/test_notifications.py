"""Notifications: who is told of what, in the app and by (real) e-mail, as they chose."""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.config import Settings
from app.content.models import Post
from app.db import Database, set_tenant_context
from app.engagements.schemas import PolicyStepIn
from app.jobs.models import OutboxJob
from app.notifications.models import Notification, NotificationKind
from app.notifications.service import notify
from tests.conftest import csrf_of
from tests.engagement_factories import Parties, accepted_engagement, make_parties
from tests.factories import bearer, create_token, sign_in
from tests.post_factories import API, decide, draft, read, set_policy, submit
from tests.smtp import SmtpServer


@dataclass
class Flow:
    parties: Parties
    engagement_id: uuid.UUID
    post: dict[str, Any]
    tokens: dict[str, str]


def arrange(client: TestClient, db: Session) -> Flow:
    parties = make_parties(db, signs_in=True)
    engagement = accepted_engagement(db, parties)
    tokens = {
        "lead": create_token(db, parties.lead, parties.brand),
        "reviewer": create_token(db, parties.reviewer, parties.brand),
        "manager": create_token(db, parties.manager, parties.agency),
        "creator": create_token(db, parties.creator, parties.agency),
    }
    post = draft(client, tokens["creator"], engagement.id, title="Trail teaser")
    return Flow(parties, engagement.id, post, tokens)


@pytest.fixture
def flow(client: TestClient, db: Session) -> Flow:
    return arrange(client, db)


def ticked(html: str, name: str) -> bool:
    box = re.search(rf'<input type="checkbox" name="{re.escape(name)}"[^>]*>', html)
    assert box, name
    return "checked" in box.group(0)


def told(db: Session, post_id: Any) -> list[tuple[uuid.UUID, str]]:
    return sorted(
        db.exec(
            select(Notification.user_id, Notification.kind).where(
                Notification.post_id == uuid.UUID(str(post_id))
            )
        ).all()
    )


def test_submitting_tells_the_open_steps_deciders_and_not_the_submitter(
    client: TestClient, db: Session, flow: Flow
) -> None:
    submit(client, flow.tokens["creator"], flow.post["id"])
    parties = flow.parties
    # The default policy: the brand's owners, leads and reviewers decide.
    assert told(db, flow.post["id"]) == sorted(
        [(parties.lead.id, "submitted"), (parties.reviewer.id, "submitted")]
    )


def test_each_step_tells_its_own_deciders_when_it_opens(client: TestClient, db: Session) -> None:
    parties = make_parties(db, signs_in=True)
    engagement = accepted_engagement(db, parties)
    set_policy(
        db,
        parties.lead,
        engagement.id,
        PolicyStepIn(name="Marketing", roles=["reviewer"]),
        PolicyStepIn(name="Legal", people=[str(parties.lead.id)]),
    )
    creator = create_token(db, parties.creator, parties.agency)
    reviewer = create_token(db, parties.reviewer, parties.brand)
    post = draft(client, creator, engagement.id)
    submit(client, creator, post["id"])
    assert told(db, post["id"]) == [(parties.reviewer.id, "submitted")]
    assert decide(client, reviewer, read(client, reviewer, post["id"])).status_code == 201
    assert told(db, post["id"]) == sorted(
        [(parties.reviewer.id, "submitted"), (parties.lead.id, "submitted")]
    )


def test_decisions_tell_the_posts_makers_with_the_reviewers_words(
    client: TestClient, db: Session, flow: Flow
) -> None:
    parties = flow.parties
    submit(client, flow.tokens["creator"], flow.post["id"])
    asked = decide(
        client,
        flow.tokens["reviewer"],
        read(client, flow.tokens["reviewer"], flow.post["id"]),
        "request_changes",
        "Shorter, please.",
    )
    assert asked.status_code == 201, asked.text
    rows = db.exec(
        select(Notification).where(
            Notification.user_id == parties.creator.id,
            Notification.kind == NotificationKind.changes_requested,
        )
    ).all()
    assert [(row.note, row.actor_name, row.post_title) for row in rows] == [
        ("Shorter, please.", parties.reviewer.name, "Trail teaser")
    ]
    # The manager edits and resubmits; the approval tells both makers.
    current = read(client, flow.tokens["manager"], flow.post["id"])
    edited = client.patch(
        f"{API}/posts/{flow.post['id']}",
        json={"body": "Spring lands Friday."},
        headers={**bearer(flow.tokens["manager"]), "If-Match": f'"{current["version"]}"'},
    )
    assert edited.status_code == 200, edited.text
    submit(client, flow.tokens["manager"], flow.post["id"])
    approved = decide(
        client, flow.tokens["lead"], read(client, flow.tokens["lead"], flow.post["id"])
    )
    assert approved.status_code == 201, approved.text
    approvals = db.exec(
        select(Notification.user_id).where(
            Notification.post_id == uuid.UUID(flow.post["id"]),
            Notification.kind == NotificationKind.approved,
        )
    ).all()
    assert sorted(approvals) == sorted([parties.creator.id, parties.manager.id])


def test_e_mail_goes_out_through_the_mailer_in_the_readers_words(
    mail_client: TestClient, db: Session, smtp: SmtpServer
) -> None:
    flow = arrange(mail_client, db)
    parties = flow.parties
    submit(mail_client, flow.tokens["creator"], flow.post["id"])
    mails = smtp.inbox.wait_for(2)
    assert sorted(mail.recipients[0] for mail in mails) == sorted(
        [parties.lead.email, parties.reviewer.email]
    )
    first = mails[0]
    assert first.subject == "For your review: Trail teaser"
    assert f"{parties.creator.name} sent “Trail teaser” for your review." in first.part("plain")
    assert first.link("/posts/") == f"/posts/{flow.post['id']}"
    assert "/account/notifications" in first.part("plain")
    assert "Trail teaser" in first.part("html")


def test_choices_per_kind_and_channel_are_respected(
    mail_client: TestClient, db: Session, smtp: SmtpServer
) -> None:
    flow = arrange(mail_client, db)
    parties = flow.parties
    # The creator wants changes requested in the app only, and rejections by e-mail only.
    sign_in(mail_client, parties.creator.email)
    page = mail_client.get("/account/notifications")
    assert page.status_code == 200
    choices = {
        f"{kind.value}.{channel}": "1"
        for kind in NotificationKind
        for channel in ("in_app", "email")
    }
    del choices["changes_requested.email"]
    del choices["rejected.in_app"]
    saved = mail_client.post(
        "/account/notifications",
        data={"csrf_token": csrf_of(page.text), **choices},
        headers={"HX-Request": "true", "HX-Target": "notification-settings"},
    )
    assert saved.status_code == 200
    assert "<html" not in saved.text and "Saved." in saved.text
    shown = mail_client.get("/account/notifications").text
    assert ticked(shown, "changes_requested.in_app")
    assert not ticked(shown, "changes_requested.email")
    assert not ticked(shown, "rejected.in_app")
    assert ticked(shown, "rejected.email")

    # The brand's reviewers turn off e-mail for submissions, so only the creator's mail counts.
    for reviewer in (parties.lead, parties.reviewer):
        mail_client.cookies.clear()
        sign_in(mail_client, reviewer.email)
        form = mail_client.get("/account/notifications")
        mail_client.post(
            "/account/notifications",
            data={"csrf_token": csrf_of(form.text), "submitted.in_app": "1"},
        )

    submit(mail_client, flow.tokens["creator"], flow.post["id"])
    asked = decide(
        mail_client,
        flow.tokens["reviewer"],
        read(mail_client, flow.tokens["reviewer"], flow.post["id"]),
        "request_changes",
        "Shorter.",
    )
    assert asked.status_code == 201
    assert smtp.inbox.stays_empty(1.5)  # nothing by e-mail: nobody wanted it
    assert (parties.creator.id, "changes_requested") in told(db, flow.post["id"])

    # A second post, rejected: e-mail only.
    second = draft(mail_client, flow.tokens["creator"], flow.engagement_id, title="Second")
    submit(mail_client, flow.tokens["creator"], second["id"])
    rejected = decide(
        mail_client,
        flow.tokens["reviewer"],
        read(mail_client, flow.tokens["reviewer"], second["id"]),
        "reject",
        "Off brand.",
    )
    assert rejected.status_code == 201
    [mail] = smtp.inbox.wait_for(1)
    assert mail.recipients == [parties.creator.email]
    assert mail.subject == "Rejected: Second"
    assert "Off brand." in mail.part("plain")
    assert (parties.creator.id, "rejected") not in told(db, second["id"])


def test_nothing_is_told_when_the_change_rolls_back(
    database: Database, db: Session, client: TestClient, settings: Settings
) -> None:
    flow = arrange(client, db)
    post = db.get(Post, uuid.UUID(flow.post["id"]))
    assert post is not None
    jobs_before = len(db.exec(select(OutboxJob.id)).all())
    session = database.session_factory()
    try:
        # As a reminder job runs: working for the engagement's organizations.
        set_tenant_context(session, org_ids=[flow.parties.brand.id, flow.parties.agency.id])
        notify(
            session,
            kind=NotificationKind.overdue,
            recipient_ids=[flow.parties.reviewer.id],
            post=post,
            actor_name="",
            settings=settings,
        )
        assert session.exec(select(Notification)).all()  # written, in this transaction
        session.rollback()
    finally:
        session.close()
    assert told(db, post.id) == []
    assert len(db.exec(select(OutboxJob.id)).all()) == jobs_before


def test_the_actor_and_strangers_are_never_told(
    client: TestClient, db: Session, flow: Flow, settings: Settings
) -> None:
    outsiders = make_parties(db)
    post = db.get(Post, uuid.UUID(flow.post["id"]))
    assert post is not None
    session = Database(str(settings.database_url)).session_factory()
    try:
        set_tenant_context(session, org_ids=[flow.parties.brand.id])
        notify(
            session,
            kind=NotificationKind.overdue,
            recipient_ids=[flow.parties.reviewer.id, flow.parties.lead.id, outsiders.lead.id],
            post=post,
            actor_name="Reminder",
            settings=settings,
            actor_id=flow.parties.lead.id,
        )
        session.commit()
    finally:
        session.close()
    assert told(db, post.id) == [(flow.parties.reviewer.id, "overdue")]


def test_the_bell_and_the_list_mark_read_in_place(
    client: TestClient, db: Session, flow: Flow
) -> None:
    submit(client, flow.tokens["creator"], flow.post["id"])
    second = draft(client, flow.tokens["creator"], flow.engagement_id, title="Second post")
    submit(client, flow.tokens["creator"], second["id"])
    sign_in(client, flow.parties.reviewer.email)
    home = client.get("/home")
    assert 'id="notification-bell"' in home.text
    bell = client.get(
        "/notifications/bell", headers={"HX-Request": "true", "HX-Target": "notification-bell"}
    )
    assert ">2</span>" in bell.text and "2 unread notifications" in bell.text

    page = client.get("/notifications")
    assert "sent “Trail teaser” for your review." in page.text
    assert "Second post" in page.text
    mine = db.exec(
        select(Notification)
        .where(Notification.user_id == flow.parties.reviewer.id)
        .order_by(col(Notification.created_at))
    ).all()
    marked = client.post(
        "/notifications/read",
        data={"csrf_token": csrf_of(page.text), "notification": str(mine[0].id)},
        headers={"HX-Request": "true", "HX-Target": "notification-list"},
    )
    assert marked.status_code == 200
    assert "<html" not in marked.text and "1 unread" in marked.text
    assert ">1</span>" in client.get("/notifications/bell").text

    opened = client.post(
        "/notifications/open",
        data={"csrf_token": csrf_of(page.text), "notification": str(mine[1].id)},
    )
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/posts/{second['id']}"
    db.expire_all()
    assert all(
        row.read_at is not None
        for row in db.exec(
            select(Notification).where(Notification.user_id == flow.parties.reviewer.id)
        )
    )


def test_mark_all_read_and_nobody_elses(client: TestClient, db: Session, flow: Flow) -> None:
    submit(client, flow.tokens["creator"], flow.post["id"])
    lead_note = db.exec(
        select(Notification).where(Notification.user_id == flow.parties.lead.id)
    ).one()
    sign_in(client, flow.parties.reviewer.email)
    page = client.get("/notifications")
    assert page.status_code == 200
    # The lead's notification is not the reviewer's to read, nor to mark.
    refused = client.post(
        "/notifications/read",
        data={"csrf_token": csrf_of(page.text), "notification": str(lead_note.id)},
    )
    assert refused.status_code == 404
    bad = client.post(
        "/notifications/read", data={"csrf_token": csrf_of(page.text), "notification": "x"}
    )
    assert bad.status_code == 404
    all_read = client.post(
        "/notifications/read-all",
        data={"csrf_token": csrf_of(page.text)},
        headers={"HX-Request": "true", "HX-Target": "notification-list"},
    )
    assert all_read.status_code == 200 and "All read." in all_read.text
    db.expire_all()
    assert db.get(Notification, lead_note.id).read_at is None  # type: ignore[union-attr]
    assert "Notifications: none unread" in client.get("/notifications/bell").text


def test_the_account_page_links_to_the_choices(client: TestClient, db: Session) -> None:
    parties = make_parties(db, signs_in=True)
    sign_in(client, parties.creator.email)
    assert "/account/notifications" in client.get("/account").text
    assert client.post("/account/notifications", data={}).status_code == 403  # no CSRF token


# --- row-level security (PostgreSQL) -------------------------------------------------


@pytest.fixture
def runtime(database_url: str) -> Iterator[Database]:
    """The app's Database as a role like production's runtime role (no BYPASSRLS)."""
    role = f"brandkeep_notify_{secrets.token_hex(4)}"
    url = sa.make_url(database_url)
    owner = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with owner.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        connection.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{url.database}" TO {role}')
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
        connection.exec_driver_sql(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
    database = Database(
        url.set(username=role, password=None).render_as_string(hide_password=False),
        pool_size=1,
        max_overflow=0,
    )
    try:
        yield database
    finally:
        database.dispose()
        with owner.connect() as connection:
            connection.exec_driver_sql(f"DROP OWNED BY {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level security is PostgreSQL's (set TEST_DATABASE_URL to run this)",
)
def test_under_row_level_security_each_person_reads_only_their_own(
    client: TestClient, db: Session, runtime: Database, settings: Settings
) -> None:
    flow = arrange(client, db)
    parties = flow.parties
    # The agency's creator, as the runtime role, tells the brand's people: the write passes
    # because the engagement is theirs, though the rows are the brand's people's.
    session = runtime.session_factory()
    try:
        set_tenant_context(session, user_id=parties.creator.id, org_ids=[parties.agency.id])
        post = session.get(Post, uuid.UUID(flow.post["id"]))
        assert post is not None
        notify(
            session,
            kind=NotificationKind.submitted,
            recipient_ids=[parties.reviewer.id, parties.lead.id],
            post=post,
            actor_name=parties.creator.name,
            settings=settings,
        )
        session.commit()
        # The creator cannot read what they wrote for others.
        assert session.execute(sa.text("SELECT count(*) FROM notification")).scalar() == 0
    finally:
        session.close()

    def seen_by(user_id: uuid.UUID, org_id: uuid.UUID) -> set[uuid.UUID]:
        reader = runtime.session_factory()
        try:
            set_tenant_context(reader, user_id=user_id, org_ids=[org_id])
            return set(reader.execute(sa.text("SELECT user_id FROM notification")).scalars())
        finally:
            reader.close()

    assert seen_by(parties.reviewer.id, parties.brand.id) == {parties.reviewer.id}
    assert seen_by(parties.lead.id, parties.brand.id) == {parties.lead.id}
    assert seen_by(parties.manager.id, parties.agency.id) == set()

    # The real app as the runtime role: the bell counts the reviewer's own.
    from app.main import create_app

    with TestClient(create_app(settings, runtime), follow_redirects=False) as app_client:
        sign_in(app_client, parties.reviewer.email)
        assert ">1</span>" in app_client.get("/notifications/bell").text
        # Mentioning across sides works under RLS too (the people come from both sides),
        # and the brand, which sees none of the agency's memberships, mentions its creator.
        token = flow.tokens["creator"]
        mentioned = app_client.post(
            f"{API}/posts/{flow.post['id']}/comments",
            json={"body": "See the new caption", "mentions": [parties.reviewer.email]},
            headers=bearer(token),
        )
        assert mentioned.status_code == 201, mentioned.text
        assert ">2</span>" in app_client.get("/notifications/bell").text
        back = app_client.post(
            f"{API}/posts/{flow.post['id']}/comments",
            json={"body": "Thanks", "mentions": [parties.creator.email]},
            headers=bearer(flow.tokens["reviewer"]),
        )
        assert back.status_code == 201, back.text
    with runtime.session_factory() as check:
        set_tenant_context(check, user_id=parties.creator.id, org_ids=[parties.agency.id])
        kinds = check.execute(sa.text("SELECT kind FROM notification")).scalars().all()
        assert kinds == ["mentioned"]
