"""Huey, wired to the outbox: who runs the jobs, and how they get there.

- **Embedded default** (no ``BRANDKEEP_REDIS_URL``): each app process runs a Huey
  consumer in threads, started and stopped with the app (``app/main.py``'s lifespan).
  Its queue is a ``MemoryHuey``. Why memory rather than a ``SqliteHuey`` file: the
  ``outbox_job`` table is already the durable queue (written in the same transaction
  as the change, retried from its own ``attempts`` and ``run_after``), so Huey only
  dispatches. A second SQLite file would be a second writer to lock and a second
  copy of the truth to keep in step, and it would not survive anything the outbox
  does not: whatever an in-memory queue loses in a restart (a hand-over, a scheduled
  retry), the sweep finds in the table again, at start-up and every minute.
- **Production with Redis** (``BRANDKEEP_REDIS_URL``): app processes only hand jobs
  over to a ``RedisHuey``; ``brandkeep worker`` processes consume them and run the
  sweep. Without Redis, ``brandkeep worker`` is still useful against PostgreSQL: it
  runs the sweep, i.e. it polls the outbox table.

The bridge: ``enqueue`` notes the job ids on the session; after that session's
transaction commits (an SQLAlchemy ``after_commit`` event on the app's session
factory) they are handed to Huey. A transaction that rolls back hands over nothing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, RetryTask, crontab
from huey.consumer import Consumer
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.config import Settings
from app.content import reminders
from app.db import Database
from app.deliverables import tasks as deliverable_tasks
from app.jobs import service
from app.results import tasks as result_tasks
from app.storage import tasks as storage_tasks

log = logging.getLogger("brandkeep.jobs")

QUEUE_NAME = "brandkeep"
RUN_TASK = "brandkeep.run_outbox_job"
SWEEP_TASK = "brandkeep.sweep_outbox"


class _EmbeddedConsumer(Consumer):
    """A consumer inside the web server's process: the server owns the signals.

    Huey's consumer normally installs SIGINT/SIGTERM handlers for itself, which would
    take Ctrl+C away from uvicorn (and fails outside the main thread); here the
    lifespan stops it instead.
    """

    def _set_signal_handlers(self) -> None:
        return None


class JobRunner:
    """One Huey instance with the outbox's two tasks, and the consumer that runs them."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.huey = _make_huey(settings)
        self._run_task = self.huey.task(name=RUN_TASK)(self._run)
        # crontab() is every minute; the consumer also runs it once when it starts.
        self.huey.periodic_task(crontab(), name=SWEEP_TASK)(self._sweep)
        # Review due times: reminders, escalations and missed slots.
        reminders.register(self.huey, database, settings)
        # Deliverables of each new period, planned from the scope of work.
        deliverable_tasks.register(self.huey, database)
        # Uploads never confirmed (or failed and never retried) are removed after a day.
        result_tasks.register(self.huey, database, settings)
        # Bytes of uploads that failed (a lost race, a rollback), once nobody names them.
        storage_tasks.register(self.huey, database, settings)
        self._lock = threading.Lock()
        self._users = 0
        self._consumer: Consumer | None = None
        service.load_handlers()

    @property
    def in_process(self) -> bool:
        return not self.settings.redis_url

    # --- the tasks ---------------------------------------------------------------

    def _run(self, job_id: str) -> None:
        outcome = service.run_job(self.database, self.settings, uuid.UUID(job_id))
        if outcome.retry_in is not None:
            # Huey keeps the retry on its schedule; the row's run_after says the same,
            # so the sweep redoes it if the schedule is lost.
            raise RetryTask(delay=outcome.retry_in)

    def _sweep(self) -> None:
        self.hand_over(service.due_job_ids(self.database))

    def hand_over(self, job_ids: Iterable[uuid.UUID]) -> None:
        """Queue committed jobs on Huey. A failure here loses nothing: the sweep retries."""
        for job_id in job_ids:
            try:
                self._run_task(str(job_id))
            except Exception:
                log.warning("could not hand job %s to the queue; the sweep will", job_id)

    # --- the bridge from the database session ---------------------------------------

    def _after_commit(self, session: Session) -> None:
        queued = session.info.pop(service.QUEUED_KEY, None)
        if queued:
            self.hand_over(queued)

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            # The outermost transaction ended without a commit (or after one, which
            # already took the list): its jobs do not exist.
            session.info.pop(service.QUEUED_KEY, None)

    # --- in the app process ----------------------------------------------------------

    def start(self) -> None:
        """Called by each start of the app (a test may start one app several times)."""
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            event.listen(self.database.session_factory, "after_commit", self._after_commit)
            event.listen(
                self.database.session_factory,
                "after_transaction_end",
                self._after_transaction_end,
            )
            if self.in_process:
                self._consumer = _EmbeddedConsumer(
                    self.huey,
                    workers=self.settings.job_workers,
                    worker_type="thread",
                    # Polling an in-memory queue costs nothing: keep hand-overs prompt.
                    max_delay=0.25,
                    check_worker_health=False,
                )
                self._consumer.start()

    def stop(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            event.remove(self.database.session_factory, "after_commit", self._after_commit)
            event.remove(
                self.database.session_factory,
                "after_transaction_end",
                self._after_transaction_end,
            )
            consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.stop(graceful=True)  # lets a running job finish

    # --- as `brandkeep worker` -------------------------------------------------------

    def run_worker(self) -> None:
        """Consume until SIGINT/SIGTERM (Huey's own signal handling)."""
        self._sweep()  # jobs whose hand-over was lost while no worker ran
        consumer = self.huey.create_consumer(
            workers=self.settings.job_workers, worker_type="thread"
        )
        consumer.run()


def _make_huey(settings: Settings) -> Huey:
    options: dict[str, Any] = {"results": False, "utc": True}
    if settings.redis_url:
        return RedisHuey(QUEUE_NAME, url=settings.redis_url, **options)
    return MemoryHuey(QUEUE_NAME, **options)
