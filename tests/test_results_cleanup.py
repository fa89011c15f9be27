"""Uploads nobody went on with are removed after a day, with their files."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from app.config import Settings
from app.db import Database, utcnow
from app.engagements.models import Engagement
from app.jobs.runner import JobRunner
from app.results import tasks
from app.results.imports import imports_dir
from app.results.models import ImportState, ResultImport
from tests.engagement_factories import Parties, accepted_engagement, make_parties


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    return accepted_engagement(db, parties, currency="EUR")


def stored(
    db: Session,
    settings: Settings,
    engagement: Engagement,
    state: ImportState,
    *,
    hours_ago: float,
    with_file: bool = True,
) -> tuple[ResultImport, Path]:
    record = ResultImport(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        file_name="export.csv",
        sha256=uuid.uuid4().hex * 2,
        state=state,
        created_at=utcnow() - timedelta(hours=hours_ago),
    )
    path = imports_dir(settings) / f"{record.id}.upload"
    if with_file:
        path.write_bytes(b"channel,metric,period_start,value\n")
        record.stored_path = path.name
    db.add(record)
    db.commit()
    db.refresh(record)
    db.expunge(record)  # the test compares ids; the database is read afresh
    return record, path


def test_unconfirmed_uploads_older_than_a_day_go_with_their_files(
    db: Session, database: Database, settings: Settings, engagement: Engagement
) -> None:
    old, old_file = stored(db, settings, engagement, ImportState.uploaded, hours_ago=25)
    fresh, fresh_file = stored(db, settings, engagement, ImportState.uploaded, hours_ago=2)
    failed, failed_file = stored(db, settings, engagement, ImportState.failed, hours_ago=30)
    done, _ = stored(db, settings, engagement, ImportState.done, hours_ago=48, with_file=False)
    queued, queued_file = stored(db, settings, engagement, ImportState.queued, hours_ago=30)

    report = tasks.clean_stale_uploads(database, settings)

    assert report.deleted == [old.id]
    assert report.emptied == [failed.id]
    db.expire_all()
    assert db.get(ResultImport, old.id) is None and not old_file.exists()
    # Within the day: still waiting for its confirmation.
    assert db.get(ResultImport, fresh.id) is not None and fresh_file.exists()
    # A failed import stays as history, without the file it can no longer retry with.
    kept = db.get(ResultImport, failed.id)
    assert kept is not None and kept.stored_path is None and not failed_file.exists()
    assert db.get(ResultImport, done.id) is not None
    # A queued import is the job's business, whatever its age.
    assert db.get(ResultImport, queued.id) is not None and queued_file.exists()

    # Nothing is left to do the next time.
    again = tasks.clean_stale_uploads(database, settings)
    assert (again.deleted, again.emptied) == ([], [])


def test_the_day_is_counted_from_the_upload(
    db: Session, database: Database, settings: Settings, engagement: Engagement
) -> None:
    record, path = stored(db, settings, engagement, ImportState.uploaded, hours_ago=2)
    later = utcnow() + timedelta(hours=21)
    assert tasks.clean_stale_uploads(database, settings, now=later).deleted == []
    assert path.exists()
    much_later = utcnow() + timedelta(hours=23)
    assert tasks.clean_stale_uploads(database, settings, now=much_later).deleted == [record.id]
    assert not path.exists()


def test_half_received_uploads_left_by_a_dead_request_go_too(
    database: Database, settings: Settings
) -> None:
    folder = imports_dir(settings)
    stray = folder / "upload-abandoned"
    stray.write_bytes(b"half a file")
    two_days_ago = (utcnow() - timedelta(days=2)).timestamp()
    os.utime(stray, (two_days_ago, two_days_ago))
    receiving = folder / "upload-receiving"
    receiving.write_bytes(b"still coming in")

    report = tasks.clean_stale_uploads(database, settings)

    assert report.strays == ["upload-abandoned"]
    assert not stray.exists() and receiving.exists()


def test_the_job_runner_cleans_every_hour(settings: Settings, database: Database) -> None:
    runner = JobRunner(settings, database)
    names = {task.__name__ for task in runner.huey._registry._periodic_tasks}
    assert tasks.CLEANUP_TASK in names
