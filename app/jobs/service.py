"""The outbox: jobs queued in the caller's transaction, run once it has committed.

``enqueue`` only writes an ``OutboxJob`` row beside the change that caused it, so a
job exists exactly when that change committed: a request that rolls back sends
nothing. After the commit the job's id is handed to Huey (``app/jobs/runner.py``);
``run_job`` is what a Huey task does with it.

Delivery is at least once: a runner that dies after a handler's side effect (an
e-mail handed to the SMTP server) but before the row is marked done retries it
after the lease. Handlers whose whole effect is in the database write it in the
same transaction that marks the job done, and so run exactly once.

Later features register their handlers here the same way::

    @handler("send_email", keep=("to", "subject"))
    def send_email(session: Session, settings: Settings, job: Job) -> None: ...
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.db import Database, utcnow
from app.jobs import repository
from app.jobs.models import OutboxJob

log = logging.getLogger("brandkeep.jobs")

# Modules whose import registers handlers (with @handler). Add a feature's tasks module here.
HANDLER_MODULES = ("app.mail.tasks", "app.results.tasks")

# The session.info key under which a transaction collects the jobs it queued.
QUEUED_KEY = "brandkeep.queued_jobs"

# How long one attempt may hold a job before the sweep considers its runner dead.
LEASE = timedelta(minutes=10)
SWEEP_LIMIT = 500


class PermanentJobError(Exception):
    """Retrying cannot help (no mail server configured, a recipient refused for good)."""


@dataclass(frozen=True)
class Job:
    """What a handler is given: the job as claimed for this attempt."""

    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempt: int


Handler = Callable[[Session, Settings, Job], None]


@dataclass(frozen=True)
class Registration:
    run: Handler
    # Payload keys kept once the job is settled; the rest (a link with a token, a body)
    # is dropped so the outbox does not keep secrets after it no longer needs them.
    keep: tuple[str, ...] | None = None


HANDLERS: dict[str, Registration] = {}


def handler(kind: str, *, keep: Sequence[str] | None = None) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        if kind in HANDLERS and HANDLERS[kind].run is not function:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        HANDLERS[kind] = Registration(run=function, keep=tuple(keep) if keep else None)
        return function

    return register


def load_handlers() -> dict[str, Registration]:
    for module in HANDLER_MODULES:
        importlib.import_module(module)
    return HANDLERS


def enqueue(session: Session, kind: str, payload: dict[str, Any]) -> OutboxJob:
    """Add a job to the caller's transaction. Nothing runs until that transaction commits."""
    job = OutboxJob(kind=kind, payload=payload)
    session.add(job)
    session.flush()
    session.info.setdefault(QUEUED_KEY, []).append(job.id)
    return job


def retry_delay(settings: Settings, attempts: int) -> float:
    """Growing back-off: the base, then twice as long after each further failure."""
    return settings.job_retry_seconds * 2 ** max(attempts - 1, 0)


@dataclass(frozen=True)
class Outcome:
    state: str  # done | retry | failed | skipped
    retry_in: float | None = None
    error: str | None = None


def run_job(
    database: Database, settings: Settings, job_id: uuid.UUID, *, now: datetime | None = None
) -> Outcome:
    """One attempt at one job: claim it, run its handler, record how it went.

    A job that is already done, failed, unknown (its transaction rolled back) or not
    due (another runner holds it, or its retry is later) is skipped.
    """
    now = now or utcnow()
    with database.session_scope() as session:
        row = repository.claim(session, job_id, now=now, lease_until=now + LEASE)
        job = Job(row.id, row.kind, dict(row.payload), row.attempts) if row else None
    if job is None:
        return Outcome("skipped")
    registration = load_handlers().get(job.kind)
    settled = _settled_payload(job, registration)
    try:
        if registration is None:
            raise PermanentJobError(f"no handler is registered for jobs of kind {job.kind!r}")
        # The handler's own writes commit together with "done", or not at all.
        with database.session_scope() as session:
            registration.run(session, settings, job)
            repository.mark_done(
                session, job.id, attempt=job.attempt, now=utcnow(), payload=settled
            )
    except Exception as exc:
        return _record_failure(database, settings, job, exc, settled)
    log.info("job %s (%s) done on attempt %d", job.id, job.kind, job.attempt)
    return Outcome("done")


def _settled_payload(job: Job, registration: Registration | None) -> dict[str, Any]:
    if registration is None or registration.keep is None:
        return job.payload
    return {key: job.payload[key] for key in registration.keep if key in job.payload}


def _record_failure(
    database: Database, settings: Settings, job: Job, exc: Exception, settled: dict[str, Any]
) -> Outcome:
    error = f"{type(exc).__name__}: {exc}"
    final = isinstance(exc, PermanentJobError) or job.attempt >= settings.job_max_attempts
    delay = retry_delay(settings, job.attempt)
    with database.session_scope() as session:
        repository.mark_failed_attempt(
            session,
            job.id,
            attempt=job.attempt,
            error=error,
            run_after=utcnow() + timedelta(seconds=delay),
            final=final,
            payload=settled,
        )
    if final:
        log.error(
            "job %s (%s) FAILED for good after %d attempt(s): %s",
            job.id,
            job.kind,
            job.attempt,
            error,
            exc_info=not isinstance(exc, PermanentJobError),
        )
        return Outcome("failed", error=error)
    log.warning(
        "job %s (%s) failed on attempt %d of %d, retrying in %.0f s: %s",
        job.id,
        job.kind,
        job.attempt,
        settings.job_max_attempts,
        delay,
        error,
    )
    return Outcome("retry", retry_in=delay, error=error)


def due_job_ids(database: Database, *, now: datetime | None = None) -> Sequence[uuid.UUID]:
    """Pending jobs that should run now: hand-overs that were lost, retries that are due."""
    with database.session_scope() as session:
        return repository.due_job_ids(session, now=now or utcnow(), limit=SWEEP_LIMIT)
