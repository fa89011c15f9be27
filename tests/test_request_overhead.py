"""What one authenticated request costs the database: statements and transactions.

Counted in-process with SQLAlchemy's engine events on the app's own engine, for the
reads every user makes all day (bench/README.md, cause 2). The figures are upper
bounds: a query added per row (an N+1) or a second transaction fails here. On
PostgreSQL an API request sends one more statement than on SQLite: the hash of the
presented token must be in the row-level security context before its row can be
read. The user and their organizations join the context in the same statements that
read them (``app.db.tenant_context_column``), never in a round trip of their own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import event
from sqlmodel import Session

from app.accounts import service as accounts
from app.accounts.models import ApiToken, User
from app.config import Settings
from app.db import Database, set_tenant_context
from app.engagements.models import Engagement
from app.engagements.schemas import PolicyStepIn
from app.main import create_app
from app.tenancy import repository as tenancy_repository
from app.tenancy.models import Membership
from app.tenancy.repository import AccessibleOrganizationID
from app.tenancy.service import actor_for
from tests import test_row_level_security as rls
from tests.engagement_factories import Parties, accepted_engagement, make_parties
from tests.factories import add_member, bearer, create_token, sign_in
from tests.post_factories import API, decide, draft, read, set_policy, submit

ON_POSTGRESQL = bool(os.environ.get("TEST_DATABASE_URL"))
# The statement that sets the whole context at once (app.db._SET_TENANT_CONTEXT).
SEPARATE_SET_CONFIG = "SELECT set_config('brandkeep.user_id'"

# Upper bounds, statements per request (BEGIN and COMMIT not counted).
API_POST_READ = 7  # token+user, memberships, post+engagement, engagement, decisions,
#                    members, current version
API_ENGAGEMENT_READ = 4  # token+user, memberships, engagement, its parties
REVIEW_QUEUE_PAGE = 6  # session+user, memberships, posts, members, own decisions, hashes
ENGAGEMENTS_PAGE = 6  # session+user, memberships, count, page, organizations, brands


def api_bound(statements: int) -> int:
    return statements + (1 if ON_POSTGRESQL else 0)


# --- the counter ------------------------------------------------------------------


def _job_thread() -> bool:
    # The embedded job consumer (app/jobs/runner.py) shares the engine: Huey names its
    # threads "Scheduler" and "Worker-N". What it sends is not the request's cost.
    name = threading.current_thread().name
    return name == "Scheduler" or name.startswith("Worker-")


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0

    def separate_set_configs(self) -> int:
        return sum(1 for statement in self.statements if statement.startswith(SEPARATE_SET_CONFIG))

    def writes(self) -> list[str]:
        return [s for s in self.statements if s.startswith(("INSERT", "UPDATE", "DELETE"))]

    def __str__(self) -> str:
        lines = [" ".join(statement.split())[:140] for statement in self.statements]
        return f"{len(lines)} statements in {self.begins} transaction(s):\n" + "\n".join(lines)


class StatementCounter:
    """Counts what an engine sends for the request made in ``measure``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.current: Counted | None = None
        self._listeners: list[tuple[str, Callable[..., None]]] = [
            ("before_cursor_execute", self._statement),
            ("begin", self._begin),
            ("commit", self._commit),
            ("rollback", self._rollback),
        ]
        for name, listener in self._listeners:
            event.listen(engine, name, listener)

    def close(self) -> None:
        for name, listener in self._listeners:
            event.remove(self.engine, name, listener)

    def _counting(self) -> Counted | None:
        return None if _job_thread() else self.current

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # SQLite's BEGIN IMMEDIATE is sent as a statement: it is counted as the transaction.
        if (counted := self._counting()) is not None and not statement.startswith("BEGIN"):
            counted.statements.append(statement)

    def _begin(self, _conn: Any) -> None:
        if (counted := self._counting()) is not None:
            counted.begins += 1

    def _commit(self, _conn: Any) -> None:
        if (counted := self._counting()) is not None:
            counted.commits += 1

    def _rollback(self, _conn: Any) -> None:
        if (counted := self._counting()) is not None:
            counted.rollbacks += 1

    def measure(self, request: Callable[[], Response]) -> tuple[Response, Counted]:
        self.current = Counted()
        try:
            response = request()
        finally:
            counted, self.current = self.current, None
        return response, counted


@pytest.fixture
def counter(app: FastAPI) -> Iterator[StatementCounter]:
    counting = StatementCounter(app.state.database.engine)
    yield counting
    counting.close()


def assert_one_transaction(counted: Counted) -> None:
    assert (counted.begins, counted.commits, counted.rollbacks) == (1, 1, 0), str(counted)


# --- the data ---------------------------------------------------------------------


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    reviewer_token: str
    creator_token: str


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db, signs_in=True)
    engagement = accepted_engagement(db, parties)
    return World(
        parties=parties,
        engagement=engagement,
        reviewer_token=create_token(db, parties.reviewer, parties.brand, scope="read"),
        creator_token=create_token(db, parties.creator, parties.agency),
    )


def submitted(client: TestClient, world: World, count: int) -> list[dict[str, Any]]:
    return [
        submit(
            client,
            world.creator_token,
            draft(client, world.creator_token, world.engagement.id, title=f"Post {n}")["id"],
        )
        for n in range(count)
    ]


def signed_in(make_client: Callable[[], TestClient], email: str) -> TestClient:
    browser = make_client()
    sign_in(browser, email)
    return browser


# --- the API ------------------------------------------------------------------------


class TestApiReads:
    def test_a_post_in_review_is_read_in_one_transaction_and_a_few_statements(
        self, client: TestClient, db: Session, world: World, counter: StatementCounter
    ) -> None:
        # Two approvals needed, one given: the review state has something to count.
        set_policy(
            db,
            world.parties.lead,
            world.engagement.id,
            PolicyStepIn(name="Brand", roles=["lead", "reviewer"], quorum=2),
        )
        post = submitted(client, world, 1)[0]
        lead_token = create_token(db, world.parties.lead, world.parties.brand)
        assert decide(client, lead_token, post).status_code == 201
        url = f"{API}/posts/{post['id']}"
        headers = bearer(world.reviewer_token)
        assert client.get(url, headers=headers).status_code == 200  # first use of the token

        response, counted = counter.measure(lambda: client.get(url, headers=headers))

        assert response.status_code == 200
        review = response.json()["review"]
        assert (review["needed"], review["approvals"]) == (2, 1)
        assert review["waiting_on"] == [world.parties.reviewer.name]
        assert_one_transaction(counted)
        assert len(counted.statements) <= api_bound(API_POST_READ), str(counted)
        assert counted.separate_set_configs() == (1 if ON_POSTGRESQL else 0), str(counted)
        assert counted.writes() == [], str(counted)

    def test_reading_an_engagement_is_one_transaction_and_a_few_statements(
        self, client: TestClient, world: World, counter: StatementCounter
    ) -> None:
        url = f"{API}/engagements/{world.engagement.id}"
        headers = bearer(world.reviewer_token)
        client.get(url, headers=headers)
        response, counted = counter.measure(lambda: client.get(url, headers=headers))
        assert response.status_code == 200, response.text
        assert_one_transaction(counted)
        assert len(counted.statements) <= api_bound(API_ENGAGEMENT_READ), str(counted)

    def test_a_tokens_last_use_is_written_at_most_once_a_minute(
        self, client: TestClient, db: Session, world: World, counter: StatementCounter
    ) -> None:
        url = f"{API}/engagements/{world.engagement.id}"
        headers = bearer(world.reviewer_token)
        first, counted_first = counter.measure(lambda: client.get(url, headers=headers))
        second, counted_second = counter.measure(lambda: client.get(url, headers=headers))
        assert (first.status_code, second.status_code) == (200, 200)
        assert [w.split()[1] for w in counted_first.writes()] == ["api_token"]
        assert counted_second.writes() == [], str(counted_second)
        db.expire_all()
        token = db.exec(sa.select(ApiToken).where(ApiToken.user_id == world.parties.reviewer.id))
        assert token.one()[0].last_used_at is not None

    def test_revoked_tokens_and_deactivated_owners_are_refused_as_before(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        url = f"{API}/engagements/{world.engagement.id}"
        assert client.get(url, headers=bearer(world.reviewer_token)).status_code == 200
        token = db.exec(
            sa.select(ApiToken).where(ApiToken.user_id == world.parties.reviewer.id)
        ).one()[0]
        token.revoked_at = token.created_at
        db.add(token)
        db.commit()
        assert client.get(url, headers=bearer(world.reviewer_token)).status_code == 401

        creator = db.get(User, world.parties.creator.id)
        assert creator is not None
        assert client.get(url, headers=bearer(world.creator_token)).status_code == 200
        creator.is_active = False
        db.add(creator)
        db.commit()
        refused = client.get(url, headers=bearer(world.creator_token))
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")

    def test_a_read_only_token_still_cannot_write(self, client: TestClient, world: World) -> None:
        response = client.post(
            f"{API}/engagements/{world.engagement.id}/posts",
            json={"title": "Sneaked in", "body": "…"},
            headers=bearer(world.reviewer_token),
        )
        assert response.status_code == 403


# --- pages ----------------------------------------------------------------------------


class TestPages:
    def test_the_review_queue_costs_the_same_statements_for_3_posts_as_for_6(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        world: World,
        counter: StatementCounter,
    ) -> None:
        submitted(client, world, 3)
        browser = signed_in(make_client, world.parties.reviewer.email)
        browser.get("/review-queue")
        short, counted_short = counter.measure(lambda: browser.get("/review-queue"))
        submitted(client, world, 3)
        long, counted_long = counter.measure(lambda: browser.get("/review-queue"))

        assert "3 posts wait for you" in short.text
        assert "6 posts wait for you" in long.text
        for counted in (counted_short, counted_long):
            assert_one_transaction(counted)
            assert len(counted.statements) <= REVIEW_QUEUE_PAGE, str(counted)
            # The session's user and organizations ride on the reads that find them.
            assert counted.separate_set_configs() == 0, str(counted)
            assert counted.writes() == [], str(counted)
        assert len(counted_long.statements) == len(counted_short.statements)

    def test_what_waits_on_the_brand_costs_the_same_statements_for_3_posts_as_for_6(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        world: World,
        counter: StatementCounter,
    ) -> None:
        submitted(client, world, 3)
        for email in (world.parties.creator.email, world.parties.reviewer.email):
            browser = signed_in(make_client, email)
            browser.get("/waiting-on-brand")
            short, counted_short = counter.measure(partial(browser.get, "/waiting-on-brand"))
            submitted(client, world, 3)
            long, counted_long = counter.measure(partial(browser.get, "/waiting-on-brand"))
            assert short.status_code == long.status_code == 200
            assert long.text.count("Post ") > short.text.count("Post ")
            assert_one_transaction(counted_long)
            # Who still has to decide comes for the whole page at once, not per post.
            assert len(counted_long.statements) == len(counted_short.statements), str(counted_long)

    def test_the_engagements_page_is_one_transaction_and_a_few_statements(
        self,
        make_client: Callable[[], TestClient],
        world: World,
        counter: StatementCounter,
    ) -> None:
        browser = signed_in(make_client, world.parties.lead.email)
        response, counted = counter.measure(lambda: browser.get("/engagements"))
        assert response.status_code == 200
        assert world.engagement.name in response.text
        assert_one_transaction(counted)
        assert len(counted.statements) <= ENGAGEMENTS_PAGE, str(counted)
        assert counted.separate_set_configs() == 0, str(counted)

    def test_sign_out_and_deactivation_end_the_session_as_before(
        self, make_client: Callable[[], TestClient], db: Session, world: World
    ) -> None:
        browser = make_client()
        csrf = sign_in(browser, world.parties.lead.email)
        assert browser.post("/sign-out", data={"csrf_token": csrf}).status_code == 303
        assert browser.get("/engagements").status_code == 303  # to the sign-in page

        other = signed_in(make_client, world.parties.reviewer.email)
        assert other.get("/engagements").status_code == 200
        reviewer = db.get(User, world.parties.reviewer.id)
        assert reviewer is not None
        reviewer.is_active = False
        db.add(reviewer)
        db.commit()
        assert other.get("/engagements").status_code == 303


# --- the actor's memberships, read once per transaction ------------------------------


class TestRememberedMemberships:
    def test_roles_come_from_the_memberships_read_for_the_actor(
        self, database: Database, world: World
    ) -> None:
        counting = StatementCounter(database.engine)
        try:
            with database.session_scope() as session:
                user = session.get(User, world.parties.lead.id)
                assert user is not None
                actor = actor_for(session, user)
                brand = AccessibleOrganizationID(world.parties.brand.id)
                assert actor.org_ids == {brand}
                counting.current = Counted()
                membership = tenancy_repository.get_membership(session, brand, user.id)
                assert counting.current.statements == []
                assert membership is not None and membership.role == "lead"
                # Someone else's membership is not the actor's: it is read.
                reviewer = tenancy_repository.get_membership(
                    session, brand, world.parties.reviewer.id
                )
                assert reviewer is not None and reviewer.role == "reviewer"
                assert len(counting.current.statements) == 1
        finally:
            counting.current = None
            counting.close()

    def test_a_membership_removed_in_the_transaction_is_not_remembered(
        self, database: Database, world: World
    ) -> None:
        with database.session_scope() as session:
            user = session.get(User, world.parties.reviewer.id)
            assert user is not None
            actor_for(session, user)
            brand = AccessibleOrganizationID(world.parties.brand.id)
            membership = tenancy_repository.get_membership(session, brand, user.id)
            assert membership is not None
            assert tenancy_repository.delete_if_version(
                session, membership.id, expected_version=membership.version
            )
            session.expunge(membership)  # as tenancy.service.remove_member does
            assert tenancy_repository.get_membership(session, brand, user.id) is None
            session.rollback()

    def test_a_new_transaction_reads_memberships_again(
        self, database: Database, db: Session, world: World
    ) -> None:
        session = database.session_factory()
        try:
            user = session.get(User, world.parties.reviewer.id)
            assert user is not None
            actor_for(session, user)
            session.commit()
            # Removed by someone else between the transactions.
            removed = db.exec(
                sa.select(Membership).where(Membership.user_id == world.parties.reviewer.id)
            ).one()[0]
            db.delete(removed)
            db.commit()
            brand = AccessibleOrganizationID(world.parties.brand.id)
            assert tenancy_repository.get_membership(session, brand, user.id) is None
        finally:
            session.close()


# --- PostgreSQL, as the runtime role that row-level security restricts ---------------

app_role_url = rls.app_role_url
runtime = rls.runtime


@pytest.fixture
def runtime_app(settings: Settings, runtime: Database) -> FastAPI:
    return create_app(settings, runtime)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="row-level security is PostgreSQL's")
class TestUnderRowLevelSecurity:
    def test_the_api_and_the_queue_see_what_they_should_with_the_same_statements(
        self,
        client: TestClient,
        db: Session,
        world: World,
        runtime_app: FastAPI,
        runtime: Database,
    ) -> None:
        post = submitted(client, world, 2)[0]
        stranger = make_parties(db, signs_in=True)
        foreign = accepted_engagement(db, stranger)
        foreign_token = create_token(db, stranger.creator, stranger.agency)
        foreign_post = draft(client, foreign_token, foreign.id)
        counting = StatementCounter(runtime.engine)
        try:
            with TestClient(runtime_app, follow_redirects=False) as app_client:
                read(app_client, world.reviewer_token, post["id"])
                response, counted = counting.measure(
                    lambda: app_client.get(
                        f"{API}/posts/{post['id']}", headers=bearer(world.reviewer_token)
                    )
                )
                assert response.status_code == 200, response.text
                # The brand's members are read under row-level security too.
                assert world.parties.reviewer.name in response.json()["review"]["waiting_on"]
                assert len(counted.statements) <= api_bound(API_POST_READ), str(counted)
                assert_one_transaction(counted)
                # Another tenant's post: not found, whoever asks through this token.
                assert (
                    app_client.get(
                        f"{API}/posts/{foreign_post['id']}", headers=bearer(world.reviewer_token)
                    ).status_code
                    == 404
                )
                sign_in(app_client, world.parties.reviewer.email)
                page, counted = counting.measure(lambda: app_client.get("/review-queue"))
                assert "2 posts wait for you" in page.text
                assert "Post 0" in page.text
                assert len(counted.statements) <= REVIEW_QUEUE_PAGE, str(counted)
        finally:
            counting.close()

    def test_a_member_of_two_organizations_gets_both_in_the_context(
        self, db: Session, world: World, runtime_app: FastAPI
    ) -> None:
        add_member(db, world.parties.agency, world.parties.lead, "manager")
        with TestClient(runtime_app, follow_redirects=False) as app_client:
            sign_in(app_client, world.parties.lead.email)
            for org in (world.parties.brand, world.parties.agency):
                members = app_client.get(f"/orgs/{org.slug}/members")
                assert members.status_code == 200, members.text
                assert world.parties.lead.email in members.text
            assert world.engagement.name in app_client.get("/engagements").text

    def test_a_context_undone_by_a_savepoint_is_sent_again(
        self, world: World, runtime: Database
    ) -> None:
        session = runtime.session_factory()
        try:
            set_tenant_context(session, org_ids=[world.parties.agency.id])
            count = sa.text("SELECT count(*) FROM engagement")
            assert session.execute(count).scalar() == 1
            savepoint = session.begin_nested()
            set_tenant_context(session, org_ids=[])
            assert session.execute(count).scalar() == 0
            savepoint.rollback()  # the connection holds the agency again
            set_tenant_context(session, org_ids=[])  # the same values: sent all the same
            assert session.execute(count).scalar() == 0
        finally:
            session.close()

    def test_a_deactivated_users_session_names_nobody_to_row_level_security(
        self, db: Session, settings: Settings, world: World, runtime: Database
    ) -> None:
        browser_session, raw = accounts.start_session(
            db, settings, user=world.parties.lead, ip=None, user_agent=None
        )
        db.commit()
        user = db.get(User, world.parties.lead.id)
        assert user is not None
        user.is_active = False
        db.add(user)
        db.commit()
        session = runtime.session_factory()
        try:
            found, signed_in_user = accounts.load_session(session, raw)
            assert found is not None and found.id == browser_session.id
            assert signed_in_user is None
            assert session.execute(sa.text("SELECT count(*) FROM membership")).scalar() == 0
        finally:
            session.close()
