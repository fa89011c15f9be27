"""Reviewers deciding and editors saving at the same moment, on PostgreSQL: nothing is
lost, nothing is counted twice, and the post ends in a state its rows account for.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.content.models import Decision, PostVersion
from app.db import Database
from app.engagements.schemas import PolicyStepIn
from app.tenancy.models import Role
from tests.engagement_factories import accepted_engagement, make_parties, person
from tests.factories import bearer, create_token
from tests.post_factories import API, draft, read, set_policy, submit

REVIEWERS = 20
EDITORS = 5
QUORUM = 15


@pytest.fixture
def postgresql_only(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip(
            "SQLite serialises writers (BEGIN IMMEDIATE), so requests cannot race there; "
            "set TEST_DATABASE_URL to a PostgreSQL server to run this"
        )


def race(senders: list[Callable[[], Response]]) -> list[Response]:
    """Run every sender in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(senders))
    answers: list[Response | None] = [None] * len(senders)
    failures: list[BaseException] = []

    def run(index: int, send: Callable[[], Response]) -> None:
        try:
            barrier.wait(timeout=30)
            answers[index] = send()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    return [answer for answer in answers if answer is not None]


@pytest.mark.usefixtures("postgresql_only")
@pytest.mark.parametrize("editor_count", [EDITORS, 0], ids=["with-editors", "reviewers-only"])
def test_twenty_reviewers_and_five_editors_at_once_lose_nothing_and_count_nothing_twice(
    make_client: Callable[[], TestClient], client: TestClient, db: Session, editor_count: int
) -> None:
    parties = make_parties(db)
    engagement = accepted_engagement(db, parties)
    reviewers = [
        create_token(
            db, person(db, parties.brand, Role.reviewer, label=f"Reviewer {i}"), parties.brand
        )
        for i in range(REVIEWERS)
    ]
    editors = [
        create_token(
            db, person(db, parties.agency, Role.creator, label=f"Editor {i}"), parties.agency
        )
        for i in range(editor_count)
    ]
    set_policy(
        db,
        parties.lead,
        engagement.id,
        PolicyStepIn(name="Marketing", roles=["reviewer"], quorum=QUORUM),
    )
    creator = create_token(db, parties.creator, parties.agency)
    post = submit(client, creator, draft(client, creator, engagement.id)["id"])
    read_hash, etag = post["current"]["content_hash"], f'"{post["version"]}"'

    def reviewer(token: str) -> Callable[[], Response]:
        http = make_client()
        body = {"decision": "approve", "version_hash": read_hash, "comment": ""}
        return lambda: http.post(
            f"{API}/posts/{post['id']}/decisions", json=body, headers=bearer(token)
        )

    def editor(index: int, token: str) -> Callable[[], Response]:
        http = make_client()
        headers = {**bearer(token), "If-Match": etag}
        body = {"body": f"Saved by editor {index}"}
        return lambda: http.patch(f"{API}/posts/{post['id']}", json=body, headers=headers)

    answers = race(
        [reviewer(token) for token in reviewers]
        + [editor(index, token) for index, token in enumerate(editors)]
    )
    decided, saved = answers[:REVIEWERS], answers[REVIEWERS:]
    assert {a.status_code for a in decided} <= {201, 409}, [a.text for a in decided]
    assert {a.status_code for a in saved} <= {200, 412}, [a.text for a in saved]
    accepted = {uuid.UUID(a.json()["id"]) for a in decided if a.status_code == 201}
    edits = [a.json() for a in saved if a.status_code == 200]

    db.expire_all()
    post_id = uuid.UUID(post["id"])
    rows = db.exec(select(Decision).where(Decision.post_id == post_id)).all()
    # Nothing lost, nothing extra: every decision answered 201 is stored, once.
    assert {row.id for row in rows} == accepted
    deciders = [(row.round, row.step, row.decider_id) for row in rows]
    assert len(deciders) == len(set(deciders))
    assert len(accepted) <= QUORUM  # the step closes at its quorum

    # Versions are numbered without gaps; every save that answered 200 is one of them.
    versions = db.exec(
        select(PostVersion).where(PostVersion.post_id == post_id).order_by(col(PostVersion.number))
    ).all()
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    assert len(versions) == 1 + len(edits)
    assert len(edits) <= 1  # all five sent the same ETag
    assert {e["current"]["body"] for e in edits} <= {v.body for v in versions}

    final = read(client, creator, post["id"])
    live = [row for row in rows if row.voided_at is None]
    if edits:
        # The save came before the quorum: what was decided before it no longer holds,
        # and nobody could decide on the old hash after it.
        assert (final["status"], final["rounds"]) == ("in_review", 2)
        assert live == []
        assert final["review"]["approvals"] == 0
    else:
        # The quorum came first (or nobody edited): exactly the quorum counted, once each;
        # the approval froze the post, and every save was refused.
        assert len(accepted) == QUORUM
        assert final["status"] == "approved"
        assert len(live) == QUORUM
        assert final["approved_hash"] == read_hash == final["current"]["content_hash"]
    assert all(row.version_hash == read_hash for row in rows)

    assert audit.verify_chain(db, engagement.id).ok
    approvals_recorded = db.exec(
        select(AuditEntry).where(
            AuditEntry.chain_id == engagement.id, AuditEntry.kind == "decision_approve"
        )
    ).all()
    assert len(approvals_recorded) == len(accepted)
