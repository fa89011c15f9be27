"""The ``results.import`` job: a file import run away from the request (see ``imports``)."""

from __future__ import annotations

from sqlmodel import Session

from app.config import Settings
from app.jobs.service import Job, handler
from app.results.imports import IMPORT_JOB, run_import


@handler(IMPORT_JOB)
def import_results(session: Session, settings: Settings, job: Job) -> None:
    run_import(session, settings, job)
