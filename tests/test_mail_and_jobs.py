"""E-mail leaves through the outbox: after commit, by a background job, retried, never lost.

Mail is delivered to a real SMTP server started here (aiosmtpd on 127.0.0.1), and
the tests read what arrived.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from huey import MemoryHuey, RedisHuey
from sqlmodel import Session, func, select

from app.cli import build_parser
from app.config import Settings
from app.db import Database, utcnow
from app.deps import SessionDep
from app.jobs import service as jobs
from app.jobs.models import DevMail, OutboxJob
from app.jobs.runner import JobRunner
from app.mail.service import queue_mail, render_mail
from app.main import create_app
from tests.conftest import TEST_SECRET
from tests.smtp import Inbox, SmtpServer, free_port, smtp_settings


def wait_until(check: Callable[[], object], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def job_row(db: Session, job_id: uuid.UUID) -> OutboxJob:
    db.expire_all()
    row = db.get(OutboxJob, job_id)
    assert row is not None
    return row


def queue_test_mail(session: Session, to: str = "ana@example.com") -> OutboxJob:
    return queue_mail(
        session,
        to=to,
        template="password_reset",
        context={"name": "Ana", "link": "http://testserver/password-reset/abc", "minutes": 60},
        language="en",
    )


# --- the tests -------------------------------------------------------------------------


class TestDelivery:
    def test_a_queued_mail_arrives_by_smtp_with_both_parts(
        self, mail_client: TestClient, database: Database, smtp: SmtpServer, db: Session
    ) -> None:
        with database.session_scope() as session:
            job = queue_test_mail(session, to="ana@example.com")
        [mail] = smtp.inbox.wait_for(1)
        assert mail.recipients == ["ana@example.com"]
        assert mail.message["To"] == "ana@example.com"
        assert mail.message["From"] == "Brandkeep <no-reply@brandkeep.example>"
        assert mail.subject == "Reset your Brandkeep password"
        assert mail.message.get_content_type() == "multipart/alternative"
        assert "Hello Ana," in mail.part("plain")
        assert "<p>Hello Ana,</p>" in mail.part("html")
        assert "http://testserver/password-reset/abc" in mail.part("plain")
        assert 'href="http://testserver/password-reset/abc"' in mail.part("html")
        wait_until(lambda: job_row(db, job.id).state == "done", what="the job to be done")
        row = job_row(db, job.id)
        assert row.attempts == 1 and row.done_at is not None
        # Once sent, the outbox keeps who and what, not the body with its link.
        assert set(row.payload) == {"to", "template", "subject"}

    def test_nothing_is_sent_before_the_transaction_commits(
        self, mail_client: TestClient, database: Database, smtp: SmtpServer
    ) -> None:
        with database.session_scope() as session:
            queue_test_mail(session)
            assert smtp.inbox.stays_empty(1.0)
        smtp.inbox.wait_for(1)

    def test_a_request_that_rolls_back_sends_nothing(
        self, settings: Settings, database: Database, smtp: SmtpServer, db: Session
    ) -> None:
        app = create_app(smtp_settings(settings, smtp.port), database)

        @app.post("/test/queue-then-fail")
        def queue_then_fail(session: SessionDep) -> None:
            queue_test_mail(session, to="never@example.com")
            raise RuntimeError("the change fails after the mail was queued")

        @app.post("/test/queue")
        def queue(session: SessionDep) -> dict[str, str]:
            return {"id": str(queue_test_mail(session, to="sent@example.com").id)}

        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.post("/test/queue-then-fail").status_code == 500
            assert client.post("/test/queue").status_code == 200
            delivered = smtp.inbox.wait_for(1)
            time.sleep(1.0)  # time enough for a wrongly handed-over job to arrive too
        assert [mail.recipients for mail in smtp.inbox.delivered] == [["sent@example.com"]]
        assert delivered[0].recipients == ["sent@example.com"]
        assert db.exec(select(func.count()).select_from(OutboxJob)).one() == 1

    def test_a_failed_send_is_recorded_retried_with_back_off_and_then_delivered(
        self, settings: Settings, database: Database, db: Session
    ) -> None:
        down = SmtpServer(port=free_port(), inbox=Inbox())  # nothing listens there yet
        app = create_app(smtp_settings(settings, down.port), database)
        with TestClient(app):
            with database.session_scope() as session:
                job = queue_test_mail(session)

            def failed_twice() -> bool:
                row = job_row(db, job.id)
                # Claimed twice, and the second failure recorded: no longer under its
                # attempt's lease (minutes), but waiting a few seconds for the next.
                return row.attempts >= 2 and row.run_after < utcnow() + timedelta(minutes=1)

            wait_until(failed_twice, what="two failed attempts")
            row = job_row(db, job.id)
            assert row.state == "pending"
            assert row.last_error and "ConnectionRefusedError" in row.last_error
            assert row.run_after > row.created_at  # waiting for its next attempt
            down.start()
            try:
                [mail] = down.inbox.wait_for(1)
                wait_until(lambda: job_row(db, job.id).state == "done", what="done")
            finally:
                down.stop()
        assert mail.recipients == ["ana@example.com"]
        assert job_row(db, job.id).attempts >= 3

    def test_a_hand_over_lost_in_a_crash_is_swept_up_when_the_runner_starts(
        self, mail_app: FastAPI, db: Session, smtp: SmtpServer
    ) -> None:
        # Written and committed with no runner listening: as if the process died right after.
        job = queue_test_mail(db, to="swept@example.com")
        db.commit()
        time.sleep(0.5)
        assert not smtp.inbox.delivered
        with TestClient(mail_app):
            [mail] = smtp.inbox.wait_for(1)
        assert mail.recipients == ["swept@example.com"]
        assert job_row(db, job.id).state == "done"


class TestRetries:
    """``run_job`` attempt by attempt, with no consumer: the retry rules themselves."""

    def test_back_off_grows_and_the_last_attempt_marks_the_job_failed_and_logs_it(
        self,
        settings: Settings,
        database: Database,
        db: Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        nowhere = smtp_settings(settings, free_port(), job_max_attempts=3, job_retry_seconds=30)
        assert [jobs.retry_delay(nowhere, n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
        with database.session_scope() as session:
            job = queue_test_mail(session)
        first = jobs.run_job(database, nowhere, job.id)
        assert (first.state, first.retry_in) == ("retry", 30)
        row = job_row(db, job.id)
        assert row.attempts == 1 and row.state == "pending"
        waited = (row.run_after - utcnow()).total_seconds()
        assert 25 < waited <= 30
        # Not due yet: a second runner (or an early hand-over) leaves it alone.
        assert jobs.run_job(database, nowhere, job.id).state == "skipped"
        second = jobs.run_job(database, nowhere, job.id, now=row.run_after + timedelta(seconds=1))
        assert (second.state, second.retry_in) == ("retry", 60)
        row = job_row(db, job.id)
        with caplog.at_level(logging.ERROR, logger="brandkeep.jobs"):
            third = jobs.run_job(
                database, nowhere, job.id, now=row.run_after + timedelta(seconds=1)
            )
        assert third.state == "failed"
        row = job_row(db, job.id)
        assert (row.state, row.attempts) == ("failed", 3)
        assert row.last_error and "ConnectionRefusedError" in row.last_error
        assert "text" not in row.payload and "html" not in row.payload
        assert any("FAILED for good after 3 attempt(s)" in r.getMessage() for r in caplog.records)
        # A failed job is never run again.
        far_later = utcnow() + timedelta(days=30)
        assert jobs.run_job(database, nowhere, job.id, now=far_later).state == "skipped"

    def test_in_production_without_a_mail_server_the_job_fails_at_once_and_says_why(
        self,
        settings: Settings,
        database: Database,
        db: Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        production = settings.model_copy(update={"env": "production", "smtp_host": ""})
        with database.session_scope() as session:
            job = queue_test_mail(session)
        with caplog.at_level(logging.ERROR, logger="brandkeep.jobs"):
            assert jobs.run_job(database, production, job.id).state == "failed"
        row = job_row(db, job.id)
        assert row.state == "failed" and row.attempts == 1
        assert row.last_error and "BRANDKEEP_SMTP_HOST" in row.last_error
        assert any("FAILED" in record.getMessage() for record in caplog.records)
        assert db.exec(select(func.count()).select_from(DevMail)).one() == 0

    def test_a_job_that_is_done_is_never_run_again(
        self, settings: Settings, database: Database, smtp: SmtpServer
    ) -> None:
        configured = smtp_settings(settings, smtp.port)
        with database.session_scope() as session:
            job = queue_test_mail(session)
        assert jobs.run_job(database, configured, job.id).state == "done"
        assert jobs.run_job(database, configured, job.id).state == "skipped"
        assert jobs.run_job(database, configured, uuid.uuid4()).state == "skipped"
        time.sleep(0.3)
        assert len(smtp.inbox.delivered) == 1

    def test_a_handler_s_database_writes_commit_with_done_or_not_at_all(
        self, settings: Settings, database: Database, db: Session
    ) -> None:
        calls: list[int] = []

        @jobs.handler("test_dev_mail_then_fail")
        def store_then_maybe_fail(session: Session, _settings: Settings, job: jobs.Job) -> None:
            session.add(DevMail(to="x@example.com", subject="s", text="t", html="h"))
            session.flush()
            calls.append(job.attempt)
            if job.attempt == 1:
                raise RuntimeError("fails after writing")

        no_wait = settings.model_copy(update={"job_retry_seconds": 0})
        with database.session_scope() as session:
            job = jobs.enqueue(session, "test_dev_mail_then_fail", {})
        assert jobs.run_job(database, no_wait, job.id).state == "retry"
        assert db.exec(select(func.count()).select_from(DevMail)).one() == 0
        assert jobs.run_job(database, no_wait, job.id).state == "done"
        assert db.exec(select(func.count()).select_from(DevMail)).one() == 1
        assert calls == [1, 2]


class TestDevelopmentOutbox:
    def test_without_a_mail_server_development_keeps_mail_on_the_outbox_page(
        self, client: TestClient, database: Database, db: Session
    ) -> None:
        with database.session_scope() as session:
            queue_mail(
                session,
                to="ana@example.com",
                template="invitation",
                context={
                    "inviter_name": "<script>alert(1)</script> Olga",
                    "org_name": "Cumbre & Co",
                    "role_name": "Reviewer",
                    "link": "http://testserver/invitations/tok",
                    "expires_on": utcnow().date(),
                },
                language="en",
            )
        wait_until(lambda: db.exec(select(DevMail)).first() is not None, what="the dev mail")
        page = client.get("/dev/outbox")
        assert page.status_code == 200
        assert "Cumbre &amp; Co" in page.text
        # Tenant content is escaped in the subject, the text and the sandboxed HTML preview.
        assert "<script>" not in page.text
        assert '<iframe sandbox="" srcdoc="' in page.text
        assert "&lt;script&gt;" in page.text
        assert '<a href="http://testserver/invitations/tok">' in page.text

    def test_the_outbox_page_lists_newest_first(self, client: TestClient, db: Session) -> None:
        for subject in ("older", "newer"):
            db.add(DevMail(to="a@example.com", subject=subject, text="t", html="<p>h</p>"))
            db.commit()
            time.sleep(0.01)
        page = client.get("/dev/outbox").text
        assert page.index("newer") < page.index("older")

    def test_the_outbox_page_does_not_exist_in_production(
        self, settings: Settings, database: Database
    ) -> None:
        production = settings.model_copy(update={"env": "production", "secret_key": TEST_SECRET})
        with TestClient(create_app(production, database), base_url="https://testserver") as client:
            assert client.get("/dev/outbox").status_code == 404


class TestRunnerSetup:
    def test_embedded_default_runs_jobs_in_memory_and_redis_hands_them_to_workers(
        self, settings: Settings, database: Database
    ) -> None:
        embedded = JobRunner(settings, database)
        assert isinstance(embedded.huey, MemoryHuey) and embedded.in_process
        with_redis = JobRunner(
            settings.model_copy(update={"redis_url": "redis://127.0.0.1:6399/0"}), database
        )
        assert isinstance(with_redis.huey, RedisHuey) and not with_redis.in_process
        with_redis.start()  # the app process only listens for commits: no consumer
        try:
            assert with_redis._consumer is None
        finally:
            with_redis.stop()

    def test_brandkeep_worker_is_a_command(self) -> None:
        assert build_parser().parse_args(["worker"]).command == "worker"

    def test_mail_renders_in_spanish_from_the_same_templates(self) -> None:
        english = render_mail(
            "password_reset", {"name": "Ana", "link": "http://x/y", "minutes": 60}, "en"
        )
        spanish = render_mail(
            "password_reset", {"name": "Ana", "link": "http://x/y", "minutes": 60}, "es"
        )
        assert english.subject == "Reset your Brandkeep password"
        assert "&amp;" not in english.text  # the plain-text part is not HTML-escaped
        assert spanish.html.startswith('<!doctype html>\n<html lang="es">')
