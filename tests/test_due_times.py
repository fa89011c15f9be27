"""Due times and accountability both ways (issue #5, item 9).

The brand's answer is due by the policy's hours; overdue reviews remind the people
the step waits for, then escalate to the brand's leads, from the job runner's sweep
(called here with explicit times: no sleeping); a post whose planned time passes
before approval has missed its slot and is never approved for a time already gone.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.config import Settings
from app.content import reminders
from app.content.models import Post
from app.db import Database, utcnow
from app.engagements import service as engagements
from app.engagements.models import Engagement
from app.engagements.schemas import PolicyIn, PolicyStepIn
from app.jobs.models import OutboxJob
from app.notifications.models import Notification, NotificationKind
from app.tenancy.models import Role
from tests.engagement_factories import Parties, accepted_engagement, grant, make_parties, person
from tests.factories import bearer, create_token
from tests.post_factories import API, decide, draft, edit, read, submit
from tests.smtp import SmtpServer


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    reviewer: str
    creator: str


def set_review_policy(
    db: Session, parties: Parties, engagement_id: uuid.UUID, *, hours: int, roles: list[str]
) -> None:
    granted = grant(db, parties.lead, engagement_id)
    engagements.set_policy(
        db,
        granted,
        expected_version=granted.engagement.version,
        data=PolicyIn(steps=[PolicyStepIn(name="Marketing", roles=roles)], review_hours=hours),
    )
    db.commit()


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db)
    engagement = accepted_engagement(db, parties)
    # Only reviewers decide, so that reminders (to them) and escalation (to the lead) differ.
    set_review_policy(db, parties, engagement.id, hours=24, roles=["reviewer"])
    return World(
        parties=parties,
        engagement=engagement,
        reviewer=create_token(db, parties.reviewer, parties.brand),
        creator=create_token(db, parties.creator, parties.agency),
    )


def submitted(client: TestClient, world: World, **fields: Any) -> dict[str, Any]:
    return submit(
        client, world.creator, draft(client, world.creator, world.engagement.id, **fields)["id"]
    )


def post_row(db: Session, post_id: str) -> Post:
    db.expire_all()
    row = db.get(Post, uuid.UUID(post_id))
    assert row is not None
    return row


def at(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def audit_kinds(db: Session, engagement_id: uuid.UUID, post_id: str) -> list[str]:
    db.expire_all()
    rows = db.exec(
        select(AuditEntry)
        .where(AuditEntry.engagement_id == engagement_id, AuditEntry.subject_id == post_id)
        .order_by(col(AuditEntry.seq))
    ).all()
    return [row.kind for row in rows]


def notified(db: Session, post_id: str) -> list[tuple[uuid.UUID, str]]:
    db.expire_all()
    rows = db.exec(
        select(Notification)
        .where(Notification.post_id == uuid.UUID(post_id))
        .order_by(col(Notification.created_at))
    ).all()
    return [(row.user_id, str(row.kind)) for row in rows]


def mails_to(db: Session, email: str) -> int:
    db.expire_all()
    return sum(1 for job in db.exec(select(OutboxJob)).all() if job.payload.get("to") == email)


class TestDueTime:
    def test_submitting_sets_the_due_time_from_the_policy(
        self, client: TestClient, world: World
    ) -> None:
        post = submitted(client, world)
        submitted_at = at(post["submitted_at"])
        assert at(post["review_due_at"]) == submitted_at + timedelta(hours=24)
        assert post["first_submitted_at"] == post["submitted_at"]

    def test_without_review_hours_the_stage_default_of_48_applies(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        engagement = db.get(Engagement, world.engagement.id)
        assert engagement is not None
        policy = dict(engagement.approval_policy)
        policy.pop("review_hours")
        engagement.approval_policy = policy
        db.add(engagement)
        db.commit()
        post = submitted(client, world)
        assert at(post["review_due_at"]) == at(post["submitted_at"]) + timedelta(hours=48)

    def test_a_new_round_starts_a_new_clock_and_a_new_series_of_reminders(
        self, client: TestClient, db: Session, database: Database, settings: Settings, world: World
    ) -> None:
        post = submitted(client, world)
        first_due = at(post["review_due_at"])
        report = reminders.sweep(database, settings, now=first_due + timedelta(minutes=1))
        assert report.reminded == [uuid.UUID(post["id"])]
        assert post_row(db, post["id"]).reminders_sent == 1

        response = edit(
            client, world.creator, read(client, world.creator, post["id"]), body="New words."
        )
        assert response.status_code == 200, response.text
        edited = response.json()
        assert edited["rounds"] == 2
        assert at(edited["review_due_at"]) > first_due
        row = post_row(db, post["id"])
        assert (row.reminders_sent, row.last_reminder_at, row.escalated_at) == (0, None, None)
        assert row.first_submitted_at == at(post["first_submitted_at"])

    def test_the_queue_shows_the_due_time_and_the_overdue_flag(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        post = submitted(client, world)
        queue = client.get(f"{API}/me/review-queue", headers=bearer(world.reviewer)).json()
        assert [(item["post_id"], item["overdue"]) for item in queue] == [(post["id"], False)]
        assert at(queue[0]["review_due_at"]) == at(post["review_due_at"])
        # The brand sat on it: move the clock of the row back past its due time.
        row = post_row(db, post["id"])
        row.review_due_at = utcnow() - timedelta(minutes=5)
        db.add(row)
        db.commit()
        queue = client.get(f"{API}/me/review-queue", headers=bearer(world.reviewer)).json()
        assert queue[0]["overdue"] is True


class TestReminders:
    def test_overdue_reviews_remind_the_reviewers_then_escalate_to_the_lead(
        self, client: TestClient, db: Session, database: Database, settings: Settings, world: World
    ) -> None:
        parties = world.parties
        owner = person(db, parties.brand, Role.owner, label="Brand Owner")
        post = submitted(client, world)
        due = at(post["review_due_at"])
        # What the submission itself sent, so that only the sweep's mails are counted below.
        baseline = {
            who.email: mails_to(db, who.email) for who in (parties.reviewer, parties.lead, owner)
        }
        assert settings.review_reminder_hours == 24
        assert settings.review_reminders_before_escalation == 2

        assert reminders.sweep(database, settings, now=due - timedelta(minutes=1)).reminded == []
        first = reminders.sweep(database, settings, now=due + timedelta(minutes=1))
        assert first.reminded == [uuid.UUID(post["id"])]
        # Within the interval nothing more goes out, however often the sweep runs.
        again = reminders.sweep(database, settings, now=due + timedelta(hours=23))
        assert (again.reminded, again.escalated) == ([], [])
        second = reminders.sweep(database, settings, now=due + timedelta(hours=24, minutes=2))
        assert second.reminded == [uuid.UUID(post["id"])]
        third = reminders.sweep(database, settings, now=due + timedelta(hours=48, minutes=3))
        assert (third.reminded, third.escalated) == ([], [uuid.UUID(post["id"])])
        later = reminders.sweep(database, settings, now=due + timedelta(days=10))
        assert (later.reminded, later.escalated) == ([], [])

        overdue = NotificationKind.overdue.value
        told = [entry for entry in notified(db, post["id"]) if entry[1] == overdue]
        assert told[:2] == [(parties.reviewer.id, overdue)] * 2
        assert sorted(told[2:]) == sorted([(parties.lead.id, overdue), (owner.id, overdue)])
        sent = {email: mails_to(db, email) - count for email, count in baseline.items()}
        assert sent == {parties.reviewer.email: 2, parties.lead.email: 1, owner.email: 1}
        assert mails_to(db, parties.creator.email) == 0

        kinds = audit_kinds(db, world.engagement.id, post["id"])
        assert kinds.count("review_reminder_sent") == 2
        assert kinds.count("review_escalated") == 1
        assert audit.verify_chain(db, world.engagement.id).ok
        row = post_row(db, post["id"])
        assert row.reminders_sent == 2
        assert row.escalated_at == due + timedelta(hours=48, minutes=3)

    def test_a_decided_post_is_not_chased(
        self, client: TestClient, db: Session, database: Database, settings: Settings, world: World
    ) -> None:
        post = submitted(client, world)
        assert decide(client, world.reviewer, post).status_code == 201
        report = reminders.sweep(
            database, settings, now=at(post["review_due_at"]) + timedelta(hours=1)
        )
        assert report.reminded == []
        assert all(
            kind != NotificationKind.overdue.value for _user, kind in notified(db, post["id"])
        )
        assert "review_reminder_sent" not in audit_kinds(db, world.engagement.id, post["id"])

    def test_concurrent_sweeps_send_each_reminder_once(
        self, client: TestClient, db: Session, database: Database, settings: Settings, world: World
    ) -> None:
        post = submitted(client, world)
        now = at(post["review_due_at"]) + timedelta(minutes=1)
        barrier = threading.Barrier(4)
        reports: list[reminders.SweepReport] = []

        def run() -> None:
            barrier.wait()
            reports.append(reminders.sweep(database, settings, now=now))

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(len(report.reminded) for report in reports) == 1
        assert [kind for _user, kind in notified(db, post["id"])].count("overdue") == 1
        assert audit_kinds(db, world.engagement.id, post["id"]).count("review_reminder_sent") == 1
        assert audit.verify_chain(db, world.engagement.id).ok

    def test_the_reminder_reaches_the_reviewer_by_mail(
        self,
        mail_app: FastAPI,
        mail_client: TestClient,
        smtp: SmtpServer,
        database: Database,
        world: World,
    ) -> None:
        post = submitted(mail_client, world)
        # The submission told the reviewer once already; the reminder is the next mail.
        before = len(smtp.inbox.delivered)
        settings: Settings = mail_app.state.settings
        reminders.sweep(database, settings, now=at(post["review_due_at"]) + timedelta(minutes=1))
        delivered = smtp.inbox.wait_for(before + 1)
        reminder = [
            mail for mail in delivered[before:] if world.parties.reviewer.email in mail.recipients
        ]
        assert reminder, [mail.recipients for mail in delivered]
        assert f"/posts/{post['id']}" in reminder[0].part("plain")


class TestMissedSlot:
    def test_the_sweep_marks_a_missed_slot_once_and_records_it(
        self, client: TestClient, db: Session, database: Database, settings: Settings, world: World
    ) -> None:
        planned = (utcnow() + timedelta(days=2)).replace(microsecond=0)
        post = submitted(client, world, planned_at=planned.isoformat())
        assert reminders.sweep(database, settings, now=planned - timedelta(minutes=1)).missed == []
        report = reminders.sweep(database, settings, now=planned + timedelta(minutes=1))
        assert report.missed == [uuid.UUID(post["id"])]
        assert reminders.sweep(database, settings, now=planned + timedelta(hours=1)).missed == []
        row = post_row(db, post["id"])
        assert row.missed_slot_at == planned + timedelta(minutes=1)
        assert row.version == post["version"]  # bookkeeping: nobody's ETag goes stale
        assert audit_kinds(db, world.engagement.id, post["id"]).count("post_slot_missed") == 1
        assert audit.verify_chain(db, world.engagement.id).ok

    def test_approval_is_refused_after_the_slot_until_a_new_time_is_chosen(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        gone = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
        post = submitted(client, world, planned_at=gone.isoformat())
        queue = client.get(f"{API}/me/review-queue", headers=bearer(world.reviewer)).json()
        assert queue[0]["missed_slot"] is True

        refused = decide(client, world.reviewer, post)
        assert refused.status_code == 409, refused.text
        assert "choose a new time" in refused.json()["detail"]
        assert refused.json()["missed_slot"] is True
        assert read(client, world.creator, post["id"])["status"] == "in_review"

        # The agency chooses a new time: a new version, a new round, and it can be approved.
        later = (utcnow() + timedelta(days=3)).replace(microsecond=0)
        moved = edit(
            client,
            world.creator,
            read(client, world.creator, post["id"]),
            planned_at=later.isoformat(),
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["missed_slot_at"] is None
        approved = decide(client, world.reviewer, read(client, world.reviewer, post["id"]))
        assert approved.status_code == 201, approved.text
        assert read(client, world.creator, post["id"])["status"] == "approved"

    def test_changes_can_still_be_requested_on_a_missed_slot(
        self, client: TestClient, world: World
    ) -> None:
        gone = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
        post = submitted(client, world, planned_at=gone.isoformat())
        response = decide(client, world.reviewer, post, "request_changes", "Pick next Tuesday.")
        assert response.status_code == 201, response.text
        assert read(client, world.creator, post["id"])["status"] == "changes_requested"
