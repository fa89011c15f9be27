"""A post's thread: shared comments, each side's internal notes, mentions, the record.

Internal comments are a wall between the brand and the agency, tested like a tenant
wall: through the API, through the pages, and (on PostgreSQL) under row-level
security with the application's filter left out.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.content.comments_models import PostComment, Visibility
from app.db import Database, set_tenant_context
from app.notifications.models import Notification
from app.tenancy.models import OrgKind, Role
from tests.conftest import csrf_of
from tests.engagement_factories import Parties, accepted_engagement, make_parties, person
from tests.factories import bearer, create_org, create_token, sign_in
from tests.post_factories import API, draft


@dataclass
class Thread:
    parties: Parties
    engagement_id: uuid.UUID
    post: dict[str, Any]
    tokens: dict[str, str]  # by role: lead, reviewer, manager, creator

    @property
    def url(self) -> str:
        return f"{API}/posts/{self.post['id']}/comments"


@pytest.fixture
def thread(client: TestClient, db: Session) -> Thread:
    parties = make_parties(db, signs_in=True)
    engagement = accepted_engagement(db, parties)
    tokens = {
        "lead": create_token(db, parties.lead, parties.brand),
        "reviewer": create_token(db, parties.reviewer, parties.brand),
        "manager": create_token(db, parties.manager, parties.agency),
        "creator": create_token(db, parties.creator, parties.agency),
    }
    post = draft(client, tokens["creator"], engagement.id)
    return Thread(parties, engagement.id, post, tokens)


def comment(client: TestClient, thread: Thread, who: str, **fields: Any) -> Any:
    return client.post(thread.url, json=fields, headers=bearer(thread.tokens[who]))


def bodies(client: TestClient, thread: Thread, who: str) -> list[str]:
    response = client.get(thread.url, headers=bearer(thread.tokens[who]))
    assert response.status_code == 200, response.text
    return [item["body"] for item in response.json()]


def test_a_shared_comment_names_its_version_and_both_sides_read_it(
    client: TestClient, thread: Thread
) -> None:
    created = comment(client, thread, "creator", body="  Draft one: is the tone right?  ")
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["body"] == "Draft one: is the tone right?"
    assert answer["version"] == 1
    assert answer["visibility"] == "shared"
    assert answer["side"] == "agency"
    assert answer["author_name"] == thread.parties.creator.name
    # A new version: later comments are about it, earlier ones stay on version 1.
    edited = client.patch(
        f"{API}/posts/{thread.post['id']}",
        json={"body": "Our spring collection lands on Saturday."},
        headers={**bearer(thread.tokens["creator"]), "If-Match": f'"{thread.post["version"]}"'},
    )
    assert edited.status_code == 200, edited.text
    later = comment(client, thread, "reviewer", body="Saturday works.")
    assert later.json()["version"] == 2 and later.json()["side"] == "brand"
    earlier = comment(client, thread, "reviewer", body="About the first draft", version=1)
    assert earlier.json()["version"] == 1
    listed = client.get(thread.url, headers=bearer(thread.tokens["manager"])).json()
    assert [(item["body"], item["version"]) for item in listed] == [
        ("Draft one: is the tone right?", 1),
        ("Saturday works.", 2),
        ("About the first draft", 1),
    ]


def test_internal_comments_stay_on_their_side_in_the_api(
    client: TestClient, thread: Thread
) -> None:
    assert (
        comment(client, thread, "manager", body="Agency only", visibility="internal").status_code
        == 201
    )
    assert (
        comment(client, thread, "lead", body="Brand only", visibility="internal").status_code == 201
    )
    assert comment(client, thread, "reviewer", body="For everyone").status_code == 201

    assert bodies(client, thread, "creator") == ["Agency only", "For everyone"]
    assert bodies(client, thread, "manager") == ["Agency only", "For everyone"]
    assert bodies(client, thread, "reviewer") == ["Brand only", "For everyone"]
    assert bodies(client, thread, "lead") == ["Brand only", "For everyone"]


def test_internal_comments_stay_on_their_side_in_the_pages(
    client: TestClient, thread: Thread
) -> None:
    comment(client, thread, "manager", body="Agency whisper 7f3", visibility="internal")
    comment(client, thread, "lead", body="Brand whisper 9c1", visibility="internal")
    page_of = f"/posts/{thread.post['id']}"

    sign_in(client, thread.parties.creator.email)
    agency_page = client.get(page_of)
    assert agency_page.status_code == 200, agency_page.text
    assert "Agency whisper 7f3" in agency_page.text
    assert "Brand whisper 9c1" not in agency_page.text
    # The thread alone (the partial HTMX refreshes) keeps the same wall.
    assert "Brand whisper 9c1" not in client.get(f"{page_of}/thread").text

    client.cookies.clear()
    sign_in(client, thread.parties.reviewer.email)
    brand_page = client.get(page_of)
    assert "Brand whisper 9c1" in brand_page.text
    assert "Agency whisper 7f3" not in brand_page.text
    assert "Agency whisper 7f3" not in client.get(f"{page_of}/thread").text


def test_a_mention_notifies_people_of_either_side(
    client: TestClient, thread: Thread, db: Session
) -> None:
    parties = thread.parties
    created = comment(
        client,
        thread,
        "creator",
        body=f"Over to you, @{parties.lead.email}!",
        mentions=[str(parties.reviewer.id)],
    )
    assert created.status_code == 201, created.text
    assert {item["email"] for item in created.json()["mentions"]} == {
        parties.reviewer.email,
        parties.lead.email,
    }
    told = db.exec(
        select(Notification.user_id, Notification.kind).where(
            Notification.post_id == uuid.UUID(thread.post["id"])
        )
    ).all()
    assert sorted(told) == sorted(
        [(parties.reviewer.id, "mentioned"), (parties.lead.id, "mentioned")]
    )


def test_a_mention_of_someone_outside_the_engagement_is_refused(
    client: TestClient, thread: Thread, db: Session
) -> None:
    other_brand = create_org(db, kind=OrgKind.brand, name="Rival Brand")
    stranger = person(db, other_brand, Role.reviewer, label="Rival Reviewer")
    before = db.exec(select(Notification)).all()

    by_list = comment(client, thread, "creator", body="Look", mentions=[stranger.email])
    assert by_list.status_code == 422, by_list.text
    assert [error["field"] for error in by_list.json()["errors"]] == ["mentions"]
    assert stranger.email in by_list.json()["errors"][0]["message"]

    in_text = comment(client, thread, "creator", body=f"Thoughts, @{stranger.email}?")
    assert in_text.status_code == 422
    assert [error["field"] for error in in_text.json()["errors"]] == ["body"]

    by_id = comment(client, thread, "creator", body="Look", mentions=[str(uuid.uuid4())])
    assert by_id.status_code == 422

    assert bodies(client, thread, "creator") == []
    assert db.exec(select(Notification)).all() == before


def test_an_internal_comment_mentions_only_its_own_side(
    client: TestClient, thread: Thread, db: Session
) -> None:
    refused = comment(
        client,
        thread,
        "manager",
        body="Between us",
        visibility="internal",
        mentions=[thread.parties.reviewer.email],
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "mentions"
    accepted = comment(
        client,
        thread,
        "manager",
        body="Between us",
        visibility="internal",
        mentions=[thread.parties.creator.email],
    )
    assert accepted.status_code == 201, accepted.text


def test_bad_input_answers_with_field_errors(client: TestClient, thread: Thread) -> None:
    empty = comment(client, thread, "creator", body="")
    assert empty.status_code == 422
    assert [error["field"] for error in empty.json()["errors"]] == ["body"]
    blank = comment(client, thread, "creator", body="   ")
    assert blank.status_code == 422
    assert [error["field"] for error in blank.json()["errors"]] == ["body"]
    future = comment(client, thread, "creator", body="Hm", version=5)
    assert future.status_code == 422
    assert [error["field"] for error in future.json()["errors"]] == ["version"]
    wrong = comment(client, thread, "creator", body="Hm", visibility="secret")
    assert wrong.status_code == 422
    assert [error["field"] for error in wrong.json()["errors"]] == ["visibility"]
    too_long = comment(client, thread, "creator", body="x" * 4001)
    assert too_long.status_code == 422


def test_a_foreign_post_is_404_whatever_the_body(
    client: TestClient, thread: Thread, db: Session
) -> None:
    outsiders = make_parties(db)
    token = create_token(db, outsiders.lead, outsiders.brand)
    assert client.get(thread.url, headers=bearer(token)).status_code == 404
    assert client.post(thread.url, json={"body": "hi"}, headers=bearer(token)).status_code == 404
    assert client.post(thread.url, json={}, headers=bearer(token)).status_code == 404
    missing = f"{API}/posts/{uuid.uuid4()}/comments"
    assert client.get(missing, headers=bearer(thread.tokens["lead"])).status_code == 404


def test_every_comment_is_on_the_engagements_chain_without_its_words(
    client: TestClient, thread: Thread, db: Session
) -> None:
    comment(client, thread, "manager", body="Secret agency note", visibility="internal")
    comment(client, thread, "reviewer", body="Shared remark")
    entries = db.exec(
        select(AuditEntry)
        .where(AuditEntry.chain_id == thread.engagement_id, AuditEntry.kind == "comment_added")
        .order_by(col(AuditEntry.seq))
    ).all()
    assert [(entry.data["visibility"], entry.data["side"]) for entry in entries] == [
        ("internal", "agency"),
        ("shared", "brand"),
    ]
    assert all("Secret agency note" not in str(entry.data) for entry in entries)
    assert audit.verify_chain(db, thread.engagement_id).ok


def test_the_page_adds_a_comment_in_place_with_htmx(
    client: TestClient, thread: Thread, db: Session
) -> None:
    csrf = sign_in(client, thread.parties.reviewer.email)
    page = client.get(f"/posts/{thread.post['id']}")
    assert 'id="post-thread"' in page.text
    assert thread.parties.creator.name in page.text  # the mention picker lists both sides
    form = {
        "csrf_token": csrf_of(page.text),
        "body": "Can we see it on a phone first?",
        "visibility": "internal",
        "version": "1",
        "mentions": [str(thread.parties.lead.id)],
    }
    answer = client.post(
        f"/posts/{thread.post['id']}/comments",
        data=form,
        headers={"HX-Request": "true", "HX-Target": "post-thread"},
    )
    assert answer.status_code == 200, answer.text
    assert "<html" not in answer.text
    assert "Can we see it on a phone first?" in answer.text
    assert "Internal: the brand only" in answer.text
    assert csrf  # signed in with a session of its own

    # A mistake comes back in place, beside its field, with what was typed kept.
    refused = client.post(
        f"/posts/{thread.post['id']}/comments",
        data={**form, "body": "Ping", "mentions": [str(thread.parties.creator.id)]},
        headers={"HX-Request": "true", "HX-Target": "post-thread"},
    )
    assert refused.status_code == 422
    assert "field-error" in refused.text and ">Ping</textarea>" in refused.text

    # Without JavaScript: back to the page, at the thread.
    plain = client.post(
        f"/posts/{thread.post['id']}/comments",
        data={**form, "body": "Plain form", "mentions": []},
    )
    assert plain.status_code == 303
    assert plain.headers["location"].endswith("#post-thread")
    stored = db.exec(
        select(PostComment.body).where(PostComment.post_id == uuid.UUID(thread.post["id"]))
    ).all()
    assert sorted(stored) == ["Can we see it on a phone first?", "Plain form"]


def test_a_comment_without_the_csrf_token_is_refused(client: TestClient, thread: Thread) -> None:
    sign_in(client, thread.parties.reviewer.email)
    answer = client.post(f"/posts/{thread.post['id']}/comments", data={"body": "Hi"})
    assert answer.status_code == 403


# --- row-level security (PostgreSQL) -------------------------------------------------

needs_postgres = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level security is PostgreSQL's (set TEST_DATABASE_URL to run this)",
)


@pytest.fixture
def runtime(database_url: str) -> Iterator[Database]:
    """The app's Database as a role like production's runtime role (no BYPASSRLS)."""
    role = f"brandkeep_comments_{secrets.token_hex(4)}"
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


@needs_postgres
def test_row_level_security_keeps_internal_comments_on_their_side(
    client: TestClient, thread: Thread, runtime: Database
) -> None:
    comment(client, thread, "manager", body="Agency internal", visibility="internal")
    comment(client, thread, "lead", body="Brand internal", visibility="internal")
    comment(client, thread, "creator", body="Shared")
    parties = thread.parties

    def seen_by(org_id: uuid.UUID) -> set[str]:
        session = runtime.session_factory()
        try:
            set_tenant_context(session, org_ids=[org_id])
            # No filter on purpose: the policy alone decides.
            return set(session.execute(sa.text("SELECT body FROM post_comment")).scalars())
        finally:
            session.close()

    assert seen_by(parties.agency.id) == {"Agency internal", "Shared"}
    assert seen_by(parties.brand.id) == {"Brand internal", "Shared"}
    assert seen_by(uuid.uuid4()) == set()

    # Nor can one side write a note into the other's side.
    session = runtime.session_factory()
    try:
        set_tenant_context(session, org_ids=[parties.agency.id])
        session.add(
            PostComment(
                brand_id=parties.brand.id,
                engagement_id=thread.engagement_id,
                post_id=uuid.UUID(thread.post["id"]),
                version_number=1,
                visibility=Visibility.internal,
                author_org_id=parties.brand.id,
                author_name="Impostor",
                body="Pretending to be the brand",
            )
        )
        with pytest.raises(sa.exc.DBAPIError, match="row-level security"):
            session.flush()
    finally:
        session.rollback()
        session.close()
