"""The audit record: every engagement change lands on a hash chain that detects tampering."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.models import User
from app.audit import service as audit
from app.audit.models import AuditEntry
from app.db import Database
from app.engagements import service as engagements
from app.engagements.schemas import EngagementCreate, ObjectiveIn, ScopeLineIn
from app.tenancy.models import Organization
from app.tenancy.service import actor_for
from tests.factories import bearer, create_org, create_token, person_in, sign_in


def _engagement_with_history(db: Session) -> uuid.UUID:
    brand = create_org(db, kind="brand", name="Cumbre")
    agency = create_org(db, kind="agency", name="Sierra Social")
    lead = person_in(db, brand, "lead")
    actor = actor_for(db, lead)
    engagement = engagements.open_engagement(
        db,
        actor,
        brand_slug=brand.slug,
        data=EngagementCreate(
            name="Launch", agency=agency.slug, start_date=date(2026, 1, 1), currency="EUR"
        ),
    )
    granted = engagements.access(db, actor, engagement.id)
    engagements.add_scope_line(db, granted, ScopeLineIn(kind="posts", quantity=8))
    engagements.add_objective(db, granted, ObjectiveIn(text="Sell more"))
    db.commit()
    return engagement.id


def test_each_change_appends_a_linked_entry(db: Session, database: Database) -> None:
    engagement_id = _engagement_with_history(db)
    entries = db.exec(
        select(AuditEntry).where(AuditEntry.chain_id == engagement_id).order_by(AuditEntry.seq)
    ).all()
    kinds = [entry.kind for entry in entries]
    # The scope line also plans one deliverable per month since the start, each on record.
    assert kinds[0] == "proposed" and kinds.count("scope_line_added") == 1
    assert set(kinds[1:]) == {"scope_line_added", "deliverable_planned"}
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    with database.session_scope() as session:
        result = audit.verify_chain(session, engagement_id)
    assert result.ok and result.length == len(entries)


def _tamper(database_url: str, engagement_id: uuid.UUID, seq: int) -> None:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # The trigger refuses edits; only a superuser switching triggers off gets past it.
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.execute(
            sa.text(
                "UPDATE audit_entry SET actor = 'someone else' WHERE chain_id = :c AND seq = :s"
            ),
            {
                "c": engagement_id.hex if connection.dialect.name == "sqlite" else engagement_id,
                "s": seq,
            },
        )
    engine.dispose()


def test_an_edited_entry_is_named_by_verify(
    db: Session, database: Database, database_url: str
) -> None:
    engagement_id = _engagement_with_history(db)
    _tamper(database_url, engagement_id, 1)
    with database.session_scope() as session:
        result = audit.verify_chain(session, engagement_id)
    assert not result.ok
    assert result.broken_at == 1
    assert "changed" in (result.reason or "")


def test_the_command_line_verify_fails_and_names_the_entry(
    db: Session, database_url: str, tmp_path: Path
) -> None:
    engagement_id = _engagement_with_history(db)
    command = [str(Path(sys.executable).parent / "brandkeep"), "audit", "verify"]
    env = {"BRANDKEEP_DATABASE_URL": database_url, "BRANDKEEP_DATA_DIR": str(tmp_path), "PATH": ""}
    good = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert str(engagement_id) in good.stdout
    _tamper(database_url, engagement_id, 2)
    bad = subprocess.run(
        [*command, "--engagement", str(engagement_id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert f"{engagement_id}" in bad.stdout + bad.stderr
    assert "entry 2" in bad.stdout + bad.stderr


def test_removing_the_newest_entries_is_caught_by_a_checkpoint(
    db: Session, database: Database, database_url: str
) -> None:
    engagement_id = _engagement_with_history(db)
    secret = "a-test-secret-of-enough-length-for-hmac"
    with database.session_scope() as session:
        saved = audit.checkpoint(audit.verify_chain(session, engagement_id), secret)
        assert audit.check_checkpoint(session, saved, secret) is None
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.execute(
            # The newest entries, as someone covering their tracks would delete them.
            sa.text(
                "DELETE FROM audit_entry WHERE chain_id = :c "
                "AND seq > (SELECT max(seq) - 2 FROM audit_entry WHERE chain_id = :c)"
            ),
            {"c": engagement_id.hex if connection.dialect.name == "sqlite" else engagement_id},
        )
    engine.dispose()
    with database.session_scope() as session:
        # What is left still links up; only the checkpoint knows something is gone.
        assert audit.verify_chain(session, engagement_id).ok
        problem = audit.check_checkpoint(session, saved, secret)
    assert problem is not None and "removed" in problem
    forged = dict(saved, length=1)
    with database.session_scope() as session:
        assert "signature" in (audit.check_checkpoint(session, forged, secret) or "")
    assert json.dumps(saved)  # a checkpoint is plain JSON the brand can keep


def test_postgresql_refuses_to_edit_or_delete_entries(db: Session, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the refusing trigger is PostgreSQL's; SQLite relies on the chain alone")
    engagement_id = _engagement_with_history(db)
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    for statement in (
        "UPDATE audit_entry SET actor = 'x' WHERE chain_id = :c",
        "DELETE FROM audit_entry WHERE chain_id = :c",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text(statement), {"c": engagement_id})
    engine.dispose()


def test_the_record_is_exported_and_shown_verified(client: TestClient, db: Session) -> None:
    engagement_id = _engagement_with_history(db)
    lead = db.exec(select(AuditEntry).where(AuditEntry.chain_id == engagement_id)).first()
    assert lead is not None and lead.actor_id is not None
    user = db.get(User, lead.actor_id)
    brand = db.get(Organization, lead.organization_id)
    assert user is not None and brand is not None
    token = create_token(db, user, brand, scope="read")
    as_json = client.get(f"/api/v1/engagements/{engagement_id}/audit", headers=bearer(token))
    assert as_json.status_code == 200
    body = as_json.json()
    length = len(db.exec(select(AuditEntry).where(AuditEntry.chain_id == engagement_id)).all())
    assert length > 2  # proposed, the scope line, the deliverables it planned
    assert body["verified"] is True and body["length"] == length
    assert [entry["kind"] for entry in body["entries"]][:2] == ["proposed", "scope_line_added"]
    as_csv = client.get(
        f"/api/v1/engagements/{engagement_id}/audit?format=csv", headers=bearer(token)
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0].startswith("seq,at,actor,kind")
    assert len(as_csv.text.splitlines()) == length + 1
    bad = client.get(f"/api/v1/engagements/{engagement_id}/audit?format=xml", headers=bearer(token))
    assert bad.status_code == 422
    checkpoint = client.get(
        f"/api/v1/engagements/{engagement_id}/audit/checkpoint", headers=bearer(token)
    )
    assert checkpoint.json()["length"] == length and checkpoint.json()["signature"]
    sign_in(client, user.email)
    page = client.get(f"/engagements/{engagement_id}/audit")
    assert page.status_code == 200
    assert "The chain verifies" in page.text
