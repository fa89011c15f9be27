"""The periodic sweeps work as production's runtime role (PostgreSQL row-level security).

Workers connect as the runtime role (``NOSUPERUSER NOBYPASSRLS``, README
"Production"), not as the superuser the rest of the suite uses. A sweep first lists
every brand outside any tenant context, then works in each brand's tenant scope; it
swallows a brand's failure (and logs it) so that the other brands go on. So these
tests assert what the sweeps did, in the database, and that nothing was logged as
failed: a sweep that quietly did nothing under row-level security fails them.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.config import Settings
from app.content import reminders
from app.content.models import Post
from app.db import Database, utcnow
from app.deliverables import tasks
from app.deliverables.models import Deliverable
from app.engagements import service as engagements
from app.engagements.schemas import ScopeLineIn
from app.jobs.models import OutboxJob
from app.notifications.models import Notification, NotificationKind
from app.tenancy import sweeps
from app.tenancy.models import OrgKind, Role
from tests.engagement_factories import accepted_engagement, grant, make_parties, person
from tests.factories import create_org, create_token
from tests.post_factories import draft, submit
from tests.test_due_times import set_review_policy
from tests.test_row_level_security import app_role_url, runtime  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level security is PostgreSQL's (set TEST_DATABASE_URL to run these)",
)


def at(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def no_failures(caplog: pytest.LogCaptureFixture) -> None:
    failed = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert not failed, failed


def test_the_runtime_role_lists_every_brand_and_no_agency(
    db: Session,
    runtime: Database,  # noqa: F811 - the fixture imported above
) -> None:
    brands = {make_parties(db).brand.id for _ in range(2)}
    lone = create_org(db, name="Brand Without Engagements", kind=OrgKind.brand)
    with runtime.session_scope() as session:
        assert set(sweeps.brand_ids(session)) == brands | {lone.id}


class TestReviewSweepAsTheRuntimeRole:
    def test_reminders_escalation_and_missed_slots_happen(
        self,
        db: Session,
        client: TestClient,
        settings: Settings,
        runtime: Database,  # noqa: F811
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        parties = make_parties(db)
        engagement = accepted_engagement(db, parties)
        set_review_policy(db, parties, engagement.id, hours=24, roles=["reviewer"])
        owner = person(db, parties.brand, Role.owner, label="Brand Owner")
        creator = create_token(db, parties.creator, parties.agency)
        planned = (utcnow() + timedelta(days=5)).replace(microsecond=0)

        def submitted(**fields: Any) -> dict[str, Any]:
            return submit(client, creator, draft(client, creator, engagement.id, **fields)["id"])

        late = submitted()
        slot = submitted(planned_at=planned.isoformat())
        due = at(late["review_due_at"])
        jobs_before = {job.id for job in db.exec(select(OutboxJob)).all()}

        first = reminders.sweep(runtime, settings, now=due + timedelta(minutes=1))
        assert set(first.reminded) == {uuid.UUID(late["id"]), uuid.UUID(slot["id"])}
        reminders.sweep(runtime, settings, now=due + timedelta(hours=24, minutes=2))
        third = reminders.sweep(runtime, settings, now=due + timedelta(hours=48, minutes=3))
        assert uuid.UUID(late["id"]) in third.escalated
        missed = reminders.sweep(runtime, settings, now=planned + timedelta(minutes=1))
        assert missed.missed == [uuid.UUID(slot["id"])]
        no_failures(caplog)

        db.expire_all()
        told = db.exec(
            select(Notification.user_id).where(
                Notification.post_id == uuid.UUID(late["id"]),
                Notification.kind == NotificationKind.overdue.value,
            )
        ).all()
        assert sorted(map(str, told)) == sorted(
            map(str, [parties.reviewer.id, parties.reviewer.id, parties.lead.id, owner.id])
        )
        mailed = [
            job.payload.get("to")
            for job in db.exec(select(OutboxJob)).all()
            if job.id not in jobs_before
        ]
        assert mailed.count(parties.reviewer.email) >= 2
        assert parties.lead.email in mailed and owner.email in mailed
        row = db.get(Post, uuid.UUID(slot["id"]))
        assert row is not None and row.missed_slot_at == planned + timedelta(minutes=1)
        kinds = db.exec(
            select(AuditEntry.kind)
            .where(AuditEntry.engagement_id == engagement.id)
            .order_by(col(AuditEntry.seq))
        ).all()
        assert kinds.count("review_reminder_sent") >= 2
        assert "review_escalated" in kinds and "post_slot_missed" in kinds
        assert audit.verify_chain(db, engagement.id).ok


class TestDeliverablesPlannerAsTheRuntimeRole:
    def test_the_planner_plans_each_brands_deliverables(
        self,
        db: Session,
        runtime: Database,  # noqa: F811
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        parties = make_parties(db)
        engagement = accepted_engagement(
            db, parties, start_date=utcnow().date() - timedelta(days=70)
        )
        engagements.add_scope_line(
            db,
            grant(db, parties.lead, engagement.id),
            ScopeLineIn(kind="posts", quantity=12, cadence="monthly", due_day=0),
        )
        db.commit()
        planned = db.exec(
            select(Deliverable).where(Deliverable.engagement_id == engagement.id)
        ).all()
        assert planned
        # Forget the plan, as if time had passed without a planner, then let it run.
        for row in planned:
            db.delete(row)
        db.commit()
        written = tasks.plan_every_engagement(runtime)
        no_failures(caplog)
        assert written == len(planned)
        db.expire_all()
        again = db.exec(select(Deliverable).where(Deliverable.engagement_id == engagement.id)).all()
        assert sorted(row.period_start for row in again) == sorted(
            row.period_start for row in planned
        )
        assert audit.verify_chain(db, engagement.id).ok
