"""Security events go on the organization's own audit chain, next to the engagements' chains.

An organization's events (members, single sign-on, its API tokens) chain in that
organization; a person's events (sign-ins, passwords) in each organization they belong
to; a failed sign-in stays in the security log only (chaining it for real accounts
alone would tell, by time, which addresses have one). Also here, on PostgreSQL as the
runtime role: the chain is written when the person is not (yet) a member, as when
accepting an invitation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.accounts.models import SecurityEvent, User
from app.accounts.service import secret_hash
from app.audit import service as audit
from app.audit.models import AuditEntry
from app.config import Settings
from app.db import Database, utcnow
from app.invitations import service as invitations
from app.main import create_app
from app.tenancy.models import Invitation, InvitationKind, Organization, OrgKind, Role
from tests.conftest import csrf_of
from tests.factories import (
    PASSWORD,
    add_member,
    create_org,
    create_token,
    create_user,
    sign_in,
)
from tests.test_row_level_security import app_role_url, runtime  # noqa: F401 - fixtures

BRANDKEEP = Path(sys.executable).parent / "brandkeep"


def chain_of(db: Session, org: Organization) -> list[AuditEntry]:
    db.expire_all()
    return list(
        db.exec(
            select(AuditEntry).where(AuditEntry.chain_id == org.id).order_by(col(AuditEntry.seq))
        )
    )


def kinds(db: Session, org: Organization) -> list[str]:
    return [entry.kind for entry in chain_of(db, org)]


@pytest.fixture
def acme(db: Session) -> Organization:
    return create_org(db, kind=OrgKind.brand, name="Acme Outdoor")


@pytest.fixture
def northwind(db: Session) -> Organization:
    return create_org(db, kind=OrgKind.agency, name="Northwind Social")


@pytest.fixture
def owner(db: Session, acme: Organization) -> User:
    user = create_user(db, email="owner@acme.example", name="Olga Owner")
    add_member(db, acme, user, Role.owner)
    return user


def test_a_sign_in_is_chained_in_each_of_the_persons_organizations(
    db: Session, database: Database, client: TestClient, acme: Organization, northwind: Organization
) -> None:
    both = create_user(db, email="both@example.com", name="Bo Both")
    add_member(db, acme, both, Role.reviewer)
    add_member(db, northwind, both, Role.creator)
    outsider_org = create_org(db, kind=OrgKind.brand, name="Elsewhere")
    before = {org.id: len(chain_of(db, org)) for org in (acme, northwind, outsider_org)}

    sign_in(client, "both@example.com")

    event = db.exec(select(SecurityEvent).where(SecurityEvent.kind == "sign_in")).one()
    for org in (acme, northwind):
        entries = chain_of(db, org)
        assert len(entries) == before[org.id] + 1
        newest = entries[-1]
        assert newest.kind == "security.sign_in"
        assert newest.engagement_id is None and newest.organization_id == org.id
        assert newest.subject_id == str(event.id)
        assert newest.actor == "Bo Both <both@example.com>"
        assert newest.data["user_agent"] == event.user_agent
        with database.session_scope() as session:
            assert audit.verify_chain(session, org.id).ok
    assert len(chain_of(db, outsider_org)) == before[outsider_org.id]


def test_a_failed_sign_in_stays_in_the_security_log_only(
    db: Session, client: TestClient, acme: Organization, owner: User
) -> None:
    before = kinds(db, acme)
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={
            "email": owner.email,
            "password": "not the password",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert response.status_code == 422
    assert db.exec(select(SecurityEvent).where(SecurityEvent.kind == "sign_in_failed")).first()
    assert kinds(db, acme) == before


def test_an_organizations_own_event_goes_on_its_chain_only(
    db: Session, acme: Organization, northwind: Organization
) -> None:
    both = create_user(db, email="both@example.com")
    add_member(db, acme, both, Role.owner)
    add_member(db, northwind, both, Role.owner)
    northwind_before = kinds(db, northwind)

    create_token(db, both, acme)

    assert kinds(db, acme)[-1] == "security.api_token_created"
    assert kinds(db, northwind) == northwind_before
    # Membership changes were chained too, each in its own organization.
    assert "security.membership_added" in kinds(db, acme)
    assert "security.membership_added" in kinds(db, northwind)


def test_owners_see_the_chain_verified_and_download_it_others_cannot(  # type: ignore[no-untyped-def]
    db: Session, make_client, acme: Organization, owner: User
) -> None:
    rita = create_user(db, email="rita@acme.example")
    add_member(db, acme, rita, Role.reviewer)
    browser = make_client()
    sign_in(browser, owner.email)

    page = browser.get(f"/orgs/{acme.slug}/security")
    assert page.status_code == 200
    length = len(chain_of(db, acme))
    assert f"which verifies: {length} entries" in page.text

    csv = browser.get(f"/orgs/{acme.slug}/security/audit.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "security.sign_in" in csv.text and "security.membership_added" in csv.text
    checkpoint = browser.get(f"/orgs/{acme.slug}/security/checkpoint").json()
    assert checkpoint["chain_id"] == str(acme.id) and checkpoint["length"] == length
    assert checkpoint["signature"]

    reviewer = make_client()
    sign_in(reviewer, "rita@acme.example")
    assert reviewer.get(f"/orgs/{acme.slug}/security/audit.csv").status_code == 403
    assert reviewer.get(f"/orgs/{acme.slug}/security/checkpoint").status_code == 403
    stranger_org = create_org(db, kind=OrgKind.brand, name="Stranger Brand")
    assert browser.get(f"/orgs/{stranger_org.slug}/security/audit.csv").status_code == 404


def _tamper(database_url: str, chain_id: uuid.UUID, seq: int) -> None:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.execute(
            sa.text("UPDATE audit_entry SET data = '{}' WHERE chain_id = :c AND seq = :s"),
            {"c": chain_id.hex if connection.dialect.name == "sqlite" else chain_id, "s": seq},
        )
    engine.dispose()


def test_the_command_line_verifies_an_organizations_chain_and_names_a_tampered_entry(
    db: Session, database_url: str, tmp_path: Path, acme: Organization, owner: User
) -> None:
    create_token(db, owner, acme)
    env = {"BRANDKEEP_DATABASE_URL": database_url, "BRANDKEEP_DATA_DIR": str(tmp_path), "PATH": ""}

    def brandkeep(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BRANDKEEP), "audit", *args], env=env, capture_output=True, text=True, timeout=60
        )

    good = brandkeep("verify", "--organization", acme.slug)
    assert good.returncode == 0, good.stderr
    assert f"ok      {acme.id}" in good.stdout
    checkpoint = brandkeep("checkpoint", "--organization", acme.slug)
    assert checkpoint.returncode == 0, checkpoint.stderr
    assert json.loads(checkpoint.stdout)["chain_id"] == str(acme.id)

    _tamper(database_url, acme.id, 2)
    bad = brandkeep("verify", "--organization", acme.slug)
    assert bad.returncode == 1
    assert f"BROKEN  {acme.id}  entry 2" in bad.stdout
    unknown = brandkeep("verify", "--organization", "no-such-org")
    assert unknown.returncode == 2
    assert "no organization with the slug 'no-such-org'" in unknown.stderr


# --- PostgreSQL row-level security, as the runtime role -------------------------------


@pytest.fixture
def runtime_client(settings: Settings, runtime: Database) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(settings, runtime), follow_redirects=False) as client:
        yield client


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level security is PostgreSQL's (set TEST_DATABASE_URL to run these)",
)
class TestAsTheRuntimeRole:
    def test_a_sign_in_is_chained_under_row_level_security(
        self, db: Session, runtime_client: TestClient, acme: Organization, owner: User
    ) -> None:
        sign_in(runtime_client, owner.email, PASSWORD)
        assert kinds(db, acme)[-1] == "security.sign_in"

    def test_accepting_an_invitation_chains_the_new_membership_before_it_exists(
        self,
        db: Session,
        database: Database,
        runtime: Database,  # noqa: F811
        acme: Organization,
        owner: User,
    ) -> None:
        newcomer = create_user(db, email="nuno@acme.example", name="Nuno New")
        raw = "invitation-" + uuid.uuid4().hex
        db.add(
            Invitation(
                organization_id=acme.id,
                kind=InvitationKind.member,
                email=newcomer.email,
                role=Role.reviewer,
                invited_by_id=owner.id,
                token_hash=secret_hash(raw),
                expires_at=utcnow() + timedelta(days=1),
            )
        )
        db.commit()
        with runtime.session_scope() as session:
            invitations.accept(session, raw, session.get(User, newcomer.id))  # type: ignore[arg-type]
        newest = chain_of(db, acme)[-1]
        assert newest.kind == "security.membership_added"
        assert newest.data["user_id"] == str(newcomer.id)
        with database.session_scope() as session:
            assert audit.verify_chain(session, acme.id).ok
