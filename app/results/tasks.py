"""Jobs of results: a file import run away from the request (see ``imports``), and the
periodic cleanup of uploads nobody went on with.

An upload waits in ``data_dir/imports`` between the preview and the person's "Import"
(state ``uploaded``), and after a failed import, for a retry (state ``failed``). Left
there, such files pile up for ever: the cleanup, run by the job runner every hour,
removes them once they are ``UPLOAD_KEPT`` old. An unconfirmed upload's record goes
with its file (nothing was imported, nothing refers to it); a failed import's record
stays, as the history of what was tried, without its file (it can no longer be retried,
and says so). Stray ``upload-*`` files that a crashed request left half-received go too.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from huey import Huey, crontab
from sqlmodel import Session

from app.config import Settings
from app.db import Database, utcnow
from app.jobs.service import Job, handler
from app.results import repository
from app.results.imports import IMPORT_JOB, imports_dir, run_import
from app.results.models import ImportState
from app.tenancy import sweeps

log = logging.getLogger("brandkeep.results")

CLEANUP_TASK = "brandkeep.clean_result_uploads"
# How long an upload waits for its confirmation (or a failed import for its retry).
UPLOAD_KEPT = timedelta(hours=24)


@handler(IMPORT_JOB)
def import_results(session: Session, settings: Settings, job: Job) -> None:
    run_import(session, settings, job)


@dataclass
class CleanupReport:
    """What one cleanup removed (import ids, and stray file names), for logs and tests."""

    deleted: list[uuid.UUID] = field(default_factory=list)
    emptied: list[uuid.UUID] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)


def clean_stale_uploads(
    database: Database, settings: Settings, *, now: datetime | None = None
) -> CleanupReport:
    """Remove uploads older than ``UPLOAD_KEPT`` that were never confirmed or retried."""
    now = now or utcnow()
    before = now - UPLOAD_KEPT
    folder = imports_dir(settings)
    report = CleanupReport()
    cleaned = sweeps.for_each_brand(
        database,
        lambda session, brand_id: _clean_brand(session, brand_id, before, report),
        what="cleaning the uploads",
    )
    # Files go once the records that name them are gone for good (committed).
    for _brand_id, files in cleaned:
        for name in files:
            (folder / name).unlink(missing_ok=True)
    report.strays = _remove_strays(folder, before)
    return report


def _clean_brand(
    session: Session, brand_id: uuid.UUID, before: datetime, report: CleanupReport
) -> list[str]:
    files: list[str] = []
    for record in repository.stale_uploads(session, brand_id, before):
        # Only a bare file name is ever stored; never follow anything else.
        name, import_id = Path(record.stored_path or "").name, record.id
        # Conditional on the state as read: an upload confirmed (or a failed import
        # retried) meanwhile is left alone, with its file.
        if record.state == ImportState.uploaded:
            if not repository.delete_upload(session, record, ImportState.uploaded):
                continue
            report.deleted.append(import_id)
        else:
            if not repository.forget_upload_file(session, record, ImportState.failed):
                continue
            report.emptied.append(import_id)
        if name:
            files.append(name)
    return files


def _remove_strays(folder: Path, before: datetime) -> list[str]:
    """Half-received uploads (``upload-*``): a request that died before naming its file."""
    cutoff = before.timestamp()
    removed = []
    for path in folder.glob("upload-*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        except OSError:
            continue  # gone meanwhile, or not ours to remove: the next run looks again
    return removed


def register(huey: Huey, database: Database, settings: Settings) -> None:
    """Clean every hour, at a quarter past (away from the other hourly jobs)."""

    def run() -> None:
        report = clean_stale_uploads(database, settings)
        if report.deleted or report.emptied or report.strays:
            log.info(
                "result uploads cleaned: %d unconfirmed, %d failed, %d stray files",
                len(report.deleted),
                len(report.emptied),
                len(report.strays),
            )

    huey.periodic_task(crontab(minute="15"), name=CLEANUP_TASK)(run)
