"""PostgreSQL row-level security backs up the scoped query layer (DESIGN.md, tenancy rule 4).

These tests connect as a runtime role like production's (``NOSUPERUSER NOBYPASSRLS``,
not the tables' owner) and leave the application's tenant filter out on purpose:
raw ``SELECT * FROM engagement`` must still show only the tenants named in the
transaction's context, and nothing at all without one. The suite itself runs as
the database owner (a superuser), which row-level security does not restrict.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, col, select

from app.accounts.service import secret_hash
from app.config import Settings
from app.db import Database, set_tenant_context
from app.engagements.models import Engagement, EngagementEvent, Kpi
from app.main import create_app
from app.models import metadata
from app.tenancy.models import Membership, Organization, OrgKind, Role
from tests.conftest import csrf_of
from tests.engagement_factories import (
    Parties,
    accepted_engagement,
    add_kpi,
    make_parties,
    open_engagement,
    person,
    set_up_fully,
)
from tests.factories import bearer, create_org, create_token, sign_in
from tests.test_schema import classes_by_table

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level security is PostgreSQL's; on SQLite the application layer alone applies "
    "(set TEST_DATABASE_URL to run these)",
)


def tenant_tables() -> dict[str, str]:
    """Every table whose model declares a tenant key, with that key."""
    classes = classes_by_table(SQLModel._sa_registry)
    return {
        name: key
        for name in metadata.tables
        if (key := getattr(classes.get(name), "__tenant_key__", None))
    }


# --- the runtime role -------------------------------------------------------


@pytest.fixture(scope="module")
def app_role_url(database_url: str) -> Iterator[str]:
    """A login role like production's runtime role, granted only plain DML."""
    role = f"brandkeep_app_{secrets.token_hex(4)}"
    url = sa.make_url(database_url)
    owner = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with owner.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        connection.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{url.database}" TO {role}')
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
        connection.exec_driver_sql(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
    try:
        # Trust authentication on 127.0.0.1: no password needed.
        yield url.set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        with owner.connect() as connection:
            connection.exec_driver_sql(f"DROP OWNED BY {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()


@pytest.fixture
def runtime(app_role_url: str) -> Iterator[Database]:
    """The app's Database as the runtime role, with one pooled connection (reused)."""
    database = Database(app_role_url, pool_size=1, max_overflow=0)
    yield database
    database.dispose()


def test_the_runtime_role_is_neither_superuser_nor_bypasses_rls(runtime: Database) -> None:
    with runtime.engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
        owners = connection.execute(
            sa.text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        assert tuple(row) == (False, False)
        assert connection.execute(sa.text("SELECT current_user")).scalar() not in set(owners)


# --- every tenant table is covered ------------------------------------------


def test_every_tenant_table_has_a_forced_policy(database: Database) -> None:
    """Fails for a new tenant table whose migration forgot its policy."""
    tables = tenant_tables()
    assert {"engagement", "kpi", "membership", "api_token"} <= set(tables)
    with database.engine.connect() as connection:
        secured = {
            name: (rls, forced)
            for name, rls, forced in connection.execute(
                sa.text(
                    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
                )
            )
        }
        policies: dict[str, list[str]] = {}
        for table, qual in connection.execute(
            sa.text("SELECT tablename, qual FROM pg_policies WHERE schemaname = 'public'")
        ):
            policies.setdefault(table, []).append(qual or "")
    problems = []
    for table, key in sorted(tables.items()):
        if secured.get(table) != (True, True):
            problems.append(f"{table}: row-level security is not enabled and forced")
        if not any(key in qual for qual in policies.get(table, [])):
            problems.append(f"{table}: no policy on its tenant key {key}")
    assert not problems, (
        "add ENABLE/FORCE ROW LEVEL SECURITY and a policy on the tenant key in the "
        "migration that creates the table (see migrations/versions/"
        "2026-11-25-1200_row_level_security.py):\n" + "\n".join(problems)
    )


# --- the data: one brand with two agencies, and an unrelated brand ----------


@dataclass
class World:
    acme: Parties  # Acme (brand) × Northwind (agency)
    rival: Parties  # Acme (same brand) × Bluepeak (a rival agency)
    other: Parties  # Cumbre (another brand) × its own agency
    acme_northwind: Engagement
    acme_bluepeak: Engagement
    cumbre: Engagement


@pytest.fixture
def world(db: Session) -> World:
    acme = make_parties(db, signs_in=True)  # only Acme's people sign in: hashing is slow
    rival = make_parties(db, brand=acme.brand)
    other = make_parties(db)
    engagements = []
    for parties in (acme, rival, other):
        engagement = accepted_engagement(db, parties)
        add_kpi(db, parties, engagement.id)
        engagements.append(engagement)
    set_up_fully(db, acme, engagements[0].id)
    return World(acme, rival, other, *engagements)


def _ids(connection: sa.Connection, table: str, column: str = "id") -> set[uuid.UUID]:
    # Deliberately no tenant filter: only the policies stand in the way.
    return set(connection.execute(sa.text(f"SELECT {column} FROM {table}")).scalars())  # noqa: S608


def _as(connection: sa.Connection, *, user: uuid.UUID | None = None, orgs=()) -> None:  # type: ignore[no-untyped-def]
    connection.execute(
        sa.text(
            "SELECT set_config('brandkeep.user_id', :u, true), "
            "set_config('brandkeep.org_ids', :o, true)"
        ),
        {"u": str(user or ""), "o": ",".join(str(org.id) for org in orgs)},
    )


class TestPolicies:
    def test_no_context_sees_no_tenant_row(self, world: World, runtime: Database) -> None:
        with runtime.engine.begin() as connection:
            for table in tenant_tables():
                count = connection.execute(
                    sa.text(f"SELECT count(*) FROM {table}")  # noqa: S608
                ).scalar()
                assert count == 0, f"{table}: {count} rows visible without a tenant context"

    def test_empty_settings_fail_closed(self, world: World, runtime: Database) -> None:
        with runtime.engine.begin() as connection:
            _as(connection)  # set, but empty: reads '' rather than NULL
            assert (
                connection.execute(
                    sa.text("SELECT current_setting('brandkeep.org_ids', true)")
                ).scalar()
                == ""
            )
            assert _ids(connection, "engagement") == set()
            assert _ids(connection, "membership") == set()

    def test_the_superuser_sees_everything(self, world: World, database: Database) -> None:
        with database.engine.begin() as connection:
            assert len(_ids(connection, "engagement")) == 3
            assert len(_ids(connection, "kpi")) >= 4

    def test_a_brand_sees_its_engagements_with_every_agency_and_nothing_else(
        self, world: World, runtime: Database
    ) -> None:
        with runtime.engine.begin() as connection:
            _as(connection, orgs=[world.acme.brand])
            assert _ids(connection, "engagement") == {
                world.acme_northwind.id,
                world.acme_bluepeak.id,
            }
            assert _ids(connection, "kpi", "engagement_id") == {
                world.acme_northwind.id,
                world.acme_bluepeak.id,
            }
            assert _ids(connection, "membership", "organization_id") == {world.acme.brand.id}
            assert world.cumbre.id not in _ids(connection, "stage_change", "engagement_id")

    def test_an_agency_never_sees_a_rival_agencys_rows_of_the_same_brand(
        self, world: World, runtime: Database
    ) -> None:
        with runtime.engine.begin() as connection:
            _as(connection, orgs=[world.rival.agency])
            assert _ids(connection, "engagement") == {world.acme_bluepeak.id}
            for table in ("kpi", "objective", "campaign", "handover_route", "attestation"):
                assert world.acme_northwind.id not in _ids(connection, table, "engagement_id")
            assert _ids(connection, "kpi", "engagement_id") == {world.acme_bluepeak.id}
        with runtime.engine.begin() as connection:
            _as(connection, orgs=[world.acme.agency])
            assert _ids(connection, "engagement") == {world.acme_northwind.id}
            assert _ids(connection, "attestation", "engagement_id") == {world.acme_northwind.id}

    def test_another_tenants_context_sees_no_foreign_row(
        self, world: World, runtime: Database
    ) -> None:
        with runtime.engine.begin() as connection:
            _as(connection, orgs=[world.other.brand, world.other.agency])
            rows = connection.execute(sa.text("SELECT * FROM engagement")).mappings().all()
            assert [row["id"] for row in rows] == [world.cumbre.id]
            kpis = connection.execute(sa.text("SELECT * FROM kpi")).mappings().all()
            assert {row["brand_id"] for row in kpis} == {world.other.brand.id}
            members = connection.execute(sa.text("SELECT * FROM membership")).mappings().all()
            assert {row["organization_id"] for row in members} == {
                world.other.brand.id,
                world.other.agency.id,
            }

    def test_the_user_alone_reads_only_their_own_memberships(
        self, world: World, runtime: Database
    ) -> None:
        with runtime.engine.begin() as connection:
            _as(connection, user=world.acme.lead.id)
            rows = connection.execute(sa.text("SELECT user_id, organization_id FROM membership"))
            assert set(rows) == {(world.acme.lead.id, world.acme.brand.id)}
            assert _ids(connection, "engagement") == set()

    def test_writing_into_another_tenant_is_refused(self, world: World, runtime: Database) -> None:
        with runtime.engine.begin() as connection:
            _as(connection, orgs=[world.acme.brand])
            # Invisible rows cannot be changed or deleted ...
            changed = connection.execute(
                sa.text("UPDATE engagement SET name = 'taken' WHERE id = :id"),
                {"id": world.cumbre.id},
            )
            assert changed.rowcount == 0  # type: ignore[attr-defined]
            deleted = connection.execute(
                sa.text("DELETE FROM kpi WHERE brand_id = :b"), {"b": world.other.brand.id}
            )
            assert deleted.rowcount == 0  # type: ignore[attr-defined]
        # ... and a row for another tenant cannot be written.
        with (
            pytest.raises(DBAPIError, match="row-level security"),
            runtime.engine.begin() as connection,
        ):
            _as(connection, orgs=[world.acme.brand])
            connection.execute(
                sa.text(
                    "INSERT INTO objective (id, brand_id, engagement_id, text, created_at) "
                    "VALUES (:id, :b, :e, 'planted', now())"
                ),
                {"id": uuid.uuid4(), "b": world.other.brand.id, "e": world.cumbre.id},
            )

    def test_presenting_a_tokens_hash_reads_that_token_only(
        self, world: World, db: Session, runtime: Database
    ) -> None:
        raw = create_token(db, world.acme.lead, world.acme.brand)
        create_token(db, world.other.lead, world.other.brand)
        session = runtime.session_factory()
        try:
            set_tenant_context(session, token_hash=secret_hash(raw))
            rows = session.execute(sa.text("SELECT organization_id FROM api_token")).all()
            assert rows == [(world.acme.brand.id,)]
        finally:
            session.close()


class TestContextPerTransaction:
    def test_the_session_sets_the_context_with_bound_parameters_per_transaction(
        self, world: World, runtime: Database
    ) -> None:
        session = runtime.session_factory()
        try:
            set_tenant_context(session, org_ids=[world.acme.agency.id])
            assert session.get(Engagement, world.acme_northwind.id) is not None
            assert session.get(Engagement, world.cumbre.id) is None
            session.commit()
            # A new transaction of the same session gets the same context again.
            assert session.execute(sa.text("SELECT count(*) FROM engagement")).scalar() == 1
        finally:
            session.close()

    def test_the_context_does_not_leak_to_the_next_transaction_on_a_pooled_connection(
        self, world: World, runtime: Database
    ) -> None:
        first = runtime.session_factory()
        try:
            set_tenant_context(first, user_id=world.acme.lead.id, org_ids=[world.acme.brand.id])
            pid = first.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            assert first.execute(sa.text("SELECT count(*) FROM engagement")).scalar() == 2
            first.commit()
        finally:
            first.close()
        second = runtime.session_factory()  # the pool has one connection: the same one
        try:
            assert second.execute(sa.text("SELECT pg_backend_pid()")).scalar() == pid
            settings = second.execute(
                sa.text(
                    "SELECT current_setting('brandkeep.user_id', true), "
                    "current_setting('brandkeep.org_ids', true)"
                )
            ).one()
            assert tuple(settings) == ("", "")
            assert second.execute(sa.text("SELECT count(*) FROM engagement")).scalar() == 0
            assert second.execute(sa.text("SELECT count(*) FROM membership")).scalar() == 0
        finally:
            second.close()
        # Nor after a rollback.
        third = runtime.session_factory()
        try:
            set_tenant_context(third, org_ids=[world.acme.brand.id])
            assert third.execute(sa.text("SELECT count(*) FROM engagement")).scalar() == 2
            third.rollback()
        finally:
            third.close()
        with runtime.engine.begin() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM kpi")).scalar() == 0

    def test_a_job_sets_its_tenant_per_job(self, world: World, runtime: Database) -> None:
        with runtime.tenant_scope(org_ids=[world.other.brand.id]) as session:
            brands = session.exec(select(Kpi.brand_id)).all()
            assert brands == [world.other.brand.id]
        with runtime.session_scope() as session:
            assert session.execute(sa.text("SELECT count(*) FROM kpi")).scalar() == 0

    def test_a_malformed_org_id_fails_instead_of_matching(self, runtime: Database) -> None:
        session = runtime.session_factory()
        try:
            session.info["brandkeep.tenant_context"] = {
                "user_id": "",
                "org_ids": "x') OR true --",
                "token_hash": "",
            }
            with pytest.raises(DBAPIError, match="uuid"):
                session.execute(sa.text("SELECT count(*) FROM engagement")).scalar()
        finally:
            session.close()


# --- the real app, as the runtime role --------------------------------------


@pytest.fixture
def runtime_client(settings: Settings, runtime: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, runtime), follow_redirects=False) as client:
        yield client


class TestTheAppUnderRowLevelSecurity:
    def test_pages_and_api_work_as_the_runtime_role(
        self, world: World, db: Session, runtime_client: TestClient
    ) -> None:
        client = runtime_client
        sign_in(client, world.acme.lead.email)
        home = client.get("/home")
        assert world.acme.brand.name in home.text
        members = client.get(f"/orgs/{world.acme.brand.slug}/members")
        assert members.status_code == 200
        assert world.acme.reviewer.email in members.text
        page = client.get(f"/engagements/{world.acme_northwind.id}")
        assert page.status_code == 200, page.text
        assert world.acme_northwind.name in page.text
        listing = client.get("/engagements")
        assert world.acme_bluepeak.name in listing.text
        assert world.cumbre.name not in listing.text
        assert client.get(f"/engagements/{world.cumbre.id}").status_code == 404

        raw = create_token(db, world.rival.manager, world.rival.agency, scope="read")
        me = client.get("/api/v1/me", headers=bearer(raw))
        assert me.status_code == 200, me.text
        assert [m["organization_slug"] for m in me.json()["memberships"]] == [
            world.rival.agency.slug
        ]
        mine = client.get(f"/api/v1/engagements/{world.acme_bluepeak.id}", headers=bearer(raw))
        assert mine.status_code == 200, mine.text
        rivals = client.get(f"/api/v1/engagements/{world.acme_northwind.id}", headers=bearer(raw))
        assert rivals.status_code == 404

    def test_an_agency_accepts_a_proposal_as_the_runtime_role(
        self, db: Session, runtime_client: TestClient
    ) -> None:
        """The agency writes rows keyed by the brand (the engagement, its events, its audit)."""
        parties = make_parties(db, signs_in=True, with_reviewer=False)
        proposal = open_engagement(db, parties)
        csrf = sign_in(runtime_client, parties.manager.email)
        response = runtime_client.post(
            f"/engagements/{proposal.id}/accept", data={"csrf_token": csrf}
        )
        assert response.status_code in (200, 303), response.text
        db.expire_all()
        engagement = db.get(Engagement, proposal.id)
        assert engagement is not None and engagement.status == "active"
        events = db.exec(
            select(EngagementEvent.kind).where(EngagementEvent.engagement_id == proposal.id)
        ).all()
        assert "accepted" in events

    def test_owners_change_members_and_newcomers_sign_up_as_the_runtime_role(
        self,
        db: Session,
        runtime_client: TestClient,
        make_client,  # type: ignore[no-untyped-def]
    ) -> None:
        brand = create_org(db, kind=OrgKind.brand, name="Acme RLS")
        owner = person(db, brand, Role.owner, label="Owner", signs_in=True)
        newcomer = person(db, create_org(db, kind=OrgKind.agency), Role.creator, label="New")
        csrf = sign_in(runtime_client, owner.email)
        added = runtime_client.post(
            f"/orgs/{brand.slug}/members",
            data={"email": newcomer.email, "role": "viewer", "csrf_token": csrf},
        )
        assert added.status_code == 200, added.text
        assert newcomer.email in added.text
        security = runtime_client.get(f"/orgs/{brand.slug}/security")
        assert security.status_code == 200
        assert "Member added" in security.text

        page = runtime_client.get("/sign-up")  # signed in: redirected; use a new browser
        assert page.status_code == 303
        sign_up = runtime_client.__class__(runtime_client.app, follow_redirects=False)
        with sign_up:
            form = sign_up.get("/sign-up")
            response = sign_up.post(
                "/sign-up",
                data={
                    "name": "Rita Rls",
                    "email": f"rita-{secrets.token_hex(3)}@example.com",
                    "password": "correct horse battery staple",
                    "org_name": "Rita's Brand",
                    "org_kind": "brand",
                    "csrf_token": csrf_of(form.text),
                },
            )
            assert response.status_code == 303, response.text
            assert "Rita&#39;s Brand" in sign_up.get("/home").text
        created = db.exec(
            select(Membership)
            .join(Organization, col(Organization.id) == Membership.organization_id)
            .where(Organization.name == "Rita's Brand")
        ).one()
        assert created.role == "owner"
