"""Importing a platform export: receive, preview, validate the whole file, write it once.

1. **Receive**: the upload is copied to ``data_dir/imports`` while its SHA-256 is
   computed, refused past ``max_import_mb``. The same file already imported into
   the engagement is recognised by its hash: nothing more happens.
2. **Preview**: the format is recognised from the headers (``app.results.formats``)
   and the first rows and the column mapping are shown before anything is written.
3. **Import** (a job, so the request returns at once and the server is not held up):
   - *validation*: the whole file is read once, each row checked by the same rules
     as the API's; checked rows go to a scratch file, so memory stays flat in the
     file's size. Any problem → the import is refused with the problems by line
     and column, and nothing is written;
   - *writing*: the scratch file is staged (COPY on PostgreSQL, executemany on
     SQLite) and merged set-wise in ONE transaction, with the import's own record.

Progress is written on the ``result_import`` row from a separate short transaction,
so the wizard can poll it while the import's transaction is still open. On SQLite,
whose single writer is busy with the import while it writes, the progress of the
writing phase is kept in this process's memory instead (``LIVE``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app.config import Settings
from app.db import set_tenant_context, utcnow
from app.engagements.models import Engagement
from app.engagements.service import EngagementAccess
from app.errors import N_, BrandkeepError, Conflict, InvalidInput
from app.jobs import service as jobs
from app.jobs.service import Job
from app.results import repository, service
from app.results.models import ImportState, ResultImport
from app.results.rules import Problem

log = logging.getLogger("brandkeep.results")

IMPORT_JOB = "results.import"
CHUNK = 1024 * 1024
SCRATCH_ROWS = 5_000
PROGRESS_EVERY = 20_000
PREVIEW_ROWS = 10
ACTIVE = (ImportState.queued, ImportState.validating, ImportState.writing)

# Progress of imports running in this process: import id → (state, rows done, rows total).
LIVE: dict[uuid.UUID, tuple[str, int, int]] = {}


class PayloadTooLarge(BrandkeepError):
    status_code = 413
    title = N_("This file is too large")


def max_mb(settings: Settings) -> int:
    return max(settings.results_import_max_bytes // (1024 * 1024), 1)


def imports_dir(settings: Settings) -> Path:
    path = settings.data_dir / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- receiving ---------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: Path
    sha256: str
    size: int


def receive(settings: Settings, source: IO[bytes], declared_size: int | None = None) -> Received:
    """Copy an upload to the imports folder, hashing it, refusing it past the size limit."""
    limit = settings.results_import_max_bytes
    too_large = PayloadTooLarge(
        N_("Files up to %(mb)d MB can be imported; split larger exports by period."),
        params={"mb": max_mb(settings)},
    )
    if declared_size is not None and declared_size > limit:
        raise too_large
    digest = hashlib.sha256()
    size = 0
    handle, name = tempfile.mkstemp(dir=imports_dir(settings), prefix="upload-")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_large
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise InvalidInput(field_errors=[_file_error(N_("The file is empty."))])
    return Received(path=path, sha256=digest.hexdigest(), size=size)


def _file_error(message: str) -> Any:
    from app.errors import FieldError

    return FieldError("file", message)


# --- recognising and previewing ---------------------------------------------------------


@dataclass
class Preview:
    format: str
    label: str
    mapping: list[tuple[str, str]]
    rows: list[Any]  # ParsedRow | RowProblem
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    row_count: int | None = None


def _problem_of(exc: Exception) -> Problem:
    message = getattr(exc, "message", None) or N_("This file cannot be read.")
    params = getattr(exc, "params", None) or {}
    return Problem(None, None, message, dict(params))


def open_file(path: Path, filename: str, currency: str) -> Any:
    """The parsers' ``Detected`` for a file, or ``InvalidInput`` saying why not."""
    from app.results import formats

    try:
        return formats.open_export(path, filename, currency=currency)
    except (formats.UnknownFormat, formats.ExportProblem) as exc:
        problem = _problem_of(exc)
        raise InvalidInput(problem.message, params=problem.params) from None


def preview(path: Path, filename: str, currency: str) -> Preview:
    detected = open_file(path, filename, currency)
    return Preview(
        format=detected.format,
        label=detected.label,
        mapping=list(detected.mapping),
        rows=list(detected.preview(PREVIEW_ROWS)),
    )


# --- validating the whole file ------------------------------------------------------------


@dataclass
class Validation:
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < service.PROBLEMS_SHOWN:
            self.problems.append(problem)


def validate(
    detected: Any,
    checker: Any,
    scratch: IO[bytes] | None,
    progress: Any = None,
) -> Validation:
    """Read every row once; checked rows go to ``scratch`` in pickled chunks."""
    from app.results import formats

    outcome = Validation()
    batch: list[tuple[Any, ...]] = []
    try:
        for item in detected.rows():
            if isinstance(item, formats.RowProblem):
                outcome.add(Problem(item.line, item.column, item.message, dict(item.params or {})))
                continue
            outcome.rows += 1
            checked = checker.check(item, item.line)
            if isinstance(checked, list):
                for problem in checked:
                    outcome.add(problem)
                continue
            if scratch is not None and not outcome.problem_count:
                batch.append(checked)
                if len(batch) >= SCRATCH_ROWS:
                    pickle.dump(batch, scratch, protocol=pickle.HIGHEST_PROTOCOL)
                    batch = []
            if progress is not None and outcome.rows % PROGRESS_EVERY == 0:
                progress(outcome.rows)
    except (formats.UnknownFormat, formats.ExportProblem) as exc:
        outcome.add(_problem_of(exc))
    if scratch is not None and batch and not outcome.problem_count:
        pickle.dump(batch, scratch, protocol=pickle.HIGHEST_PROTOCOL)
    if outcome.rows == 0 and not outcome.problem_count:
        outcome.add(Problem(None, None, N_("The file holds no result rows.")))
    return outcome


def _chunks(scratch: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    scratch.seek(0)
    while True:
        try:
            # Our own scratch file, written by this process a moment ago.
            batch = pickle.load(scratch)  # noqa: S301
        except EOFError:
            return
        yield from batch


def dry_run(session: Session, granted: EngagementAccess, path: Path, filename: str) -> Preview:
    """The preview and every problem of a file, writing nothing (the API's ``dry_run``)."""
    granted.require("result.report")
    currency = granted.engagement.currency
    result = preview(path, filename, currency)
    detected = open_file(path, filename, currency)
    checker = service.checker_for(session, granted.engagement, f"import:{detected.format}")
    outcome = validate(detected, checker, None)
    result.problems, result.problem_count = outcome.problems, outcome.problem_count
    result.row_count = outcome.rows
    return result


# --- the import record ----------------------------------------------------------------------


def create(
    session: Session,
    granted: EngagementAccess,
    received: Received,
    filename: str,
    *,
    start: bool,
) -> ResultImport:
    """Record an upload; the same file imported before makes a "duplicate" record only."""
    granted.require("result.report")
    engagement = granted.engagement
    record = ResultImport(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        file_name=Path(filename or "export").name[:255],
        sha256=received.sha256,
        size_bytes=received.size,
        created_by_id=granted.actor.user.id,
    )
    earlier = repository.done_import_with_hash(session, engagement, received.sha256)
    if earlier is not None:
        received.path.unlink(missing_ok=True)
        record.state = ImportState.duplicate
        record.format, record.format_label = earlier.format, earlier.format_label
        record.rows_total = record.rows_unchanged = earlier.rows_total
        record.finished_at = utcnow()
        session.add(record)
        session.flush()
        return record
    try:
        detected = open_file(received.path, record.file_name, engagement.currency)
    except InvalidInput:
        received.path.unlink(missing_ok=True)
        raise
    record.format, record.format_label = detected.format, detected.label[:120]
    target = imports_dir_of(received.path) / f"{record.id}.upload"
    received.path.rename(target)
    record.stored_path = target.name
    session.add(record)
    session.flush()
    if start:
        queue(session, granted, record)
    return record


def imports_dir_of(path: Path) -> Path:
    return path.parent


def queue(session: Session, granted: EngagementAccess, record: ResultImport) -> ResultImport:
    granted.require("result.report")
    if record.state not in (ImportState.uploaded, ImportState.failed):
        raise Conflict(N_("This import has already started."))
    if record.stored_path is None:
        raise Conflict(N_("The uploaded file is gone; upload it again."))
    record.state = ImportState.queued
    record.problems, record.problem_count = [], 0
    session.add(record)
    jobs.enqueue(
        session,
        IMPORT_JOB,
        {
            "import_id": str(record.id),
            "org_ids": [str(granted.engagement.brand_id), str(granted.engagement.agency_id)],
            "user_id": str(granted.actor.user.id),
        },
    )
    return record


def progress_of(record: ResultImport) -> tuple[str, int, int]:
    """The state and counts to show: this process's live ones while an import runs here."""
    live = LIVE.get(record.id) if record.state in ACTIVE else None
    if live is not None:
        return live
    return str(record.state), record.rows_done, record.rows_total


# --- the job -------------------------------------------------------------------------------------


class _Side:
    """Short transactions beside the import's own, for progress others can see at once."""

    def __init__(self, engine: sa.Engine, org_ids: list[uuid.UUID], import_id: uuid.UUID) -> None:
        self.engine = engine
        self.org_ids = org_ids
        self.import_id = import_id

    def update(self, **values: Any) -> None:
        with Session(self.engine) as side:
            side.begin()
            set_tenant_context(side, org_ids=self.org_ids)
            side.execute(
                sa.update(ResultImport)
                .where(col(ResultImport.id) == self.import_id)
                .values(**values)
            )
            side.commit()

    def load(self) -> tuple[ResultImport, Engagement] | None:
        with Session(self.engine, expire_on_commit=False) as side:
            side.begin()
            set_tenant_context(side, org_ids=self.org_ids)
            record = side.get(ResultImport, self.import_id)
            engagement = side.get(Engagement, record.engagement_id) if record else None
            side.commit()
        return (record, engagement) if record and engagement else None


def run_import(session: Session, settings: Settings, job: Job) -> None:
    import_id = uuid.UUID(job.payload["import_id"])
    org_ids = [uuid.UUID(value) for value in job.payload["org_ids"]]
    user_id = uuid.UUID(job.payload["user_id"])
    engine = session.get_bind()
    assert isinstance(engine, sa.Engine)
    side = _Side(engine, org_ids, import_id)
    loaded = side.load()
    if loaded is None or loaded[0].state != ImportState.queued:
        return  # gone with its engagement, or already handled by an earlier attempt
    record, engagement = loaded
    path = imports_dir(settings) / (record.stored_path or "")
    try:
        _run(session, settings, side, record, engagement, path, user_id, org_ids)
    except Exception:
        log.exception("result import %s failed", import_id)
        session.rollback()
        side.update(
            state=ImportState.failed,
            finished_at=utcnow(),
            problem_count=1,
            problems=[
                Problem(
                    None,
                    None,
                    N_("Something went wrong on our side; nothing was saved. Try again."),
                ).as_dict()
            ],
        )
    finally:
        LIVE.pop(import_id, None)


def _refuse(side: _Side, path: Path, problems: list[Problem], count: int, rows: int) -> None:
    side.update(
        state=ImportState.refused,
        finished_at=utcnow(),
        problems=[problem.as_dict() for problem in problems],
        problem_count=count,
        rows_done=rows,
        rows_total=rows,
        stored_path=None,
    )
    path.unlink(missing_ok=True)


def _run(
    session: Session,
    settings: Settings,
    side: _Side,
    record: ResultImport,
    engagement: Engagement,
    path: Path,
    user_id: uuid.UUID,
    org_ids: list[uuid.UUID],
) -> None:
    from app.results import formats

    postgresql = session.get_bind().dialect.name == "postgresql"
    side.update(state=ImportState.validating, started_at=utcnow(), rows_done=0, rows_total=0)
    LIVE[record.id] = (ImportState.validating.value, 0, 0)
    if not path.is_file():
        _refuse(
            side,
            path,
            [Problem(None, None, N_("The uploaded file is gone; upload it again."))],
            1,
            0,
        )
        return
    try:
        detected = formats.open_export(path, record.file_name, currency=engagement.currency)
    except (formats.UnknownFormat, formats.ExportProblem) as exc:
        _refuse(side, path, [_problem_of(exc)], 1, 0)
        return
    source = f"import:{detected.format}"
    # Read what the checks need in a short transaction of its own: on SQLite any
    # transaction holds the single write lock, which must stay free while reading.
    with Session(session.get_bind()) as reader:
        reader.begin()
        set_tenant_context(reader, org_ids=org_ids)
        checker = service.checker_for(reader, engagement, source)
        reader.commit()

    def validated(rows: int) -> None:
        LIVE[record.id] = (ImportState.validating.value, rows, 0)
        side.update(rows_done=rows)

    with tempfile.TemporaryFile(dir=imports_dir(settings), prefix="scratch-") as scratch:
        outcome = validate(detected, checker, scratch, validated)
        if outcome.problem_count:
            _refuse(side, path, outcome.problems, outcome.problem_count, outcome.rows)
            return
        total = outcome.rows
        side.update(state=ImportState.writing, rows_done=0, rows_total=total)
        LIVE[record.id] = (ImportState.writing.value, 0, total)

        def staged(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
            for done, row in enumerate(rows, start=1):
                if done % PROGRESS_EVERY == 0:
                    LIVE[record.id] = (ImportState.writing.value, done, total)
                    if postgresql:  # on SQLite the import holds the only write lock
                        side.update(rows_done=done)
                yield row

        set_tenant_context(session, user_id=user_id, org_ids=org_ids)
        current = session.get(ResultImport, record.id)
        own = session.get(Engagement, engagement.id)
        if current is None or own is None:
            return
        if repository.done_import_with_hash(session, own, current.sha256) is not None:
            current.state, current.finished_at, current.stored_path = (
                ImportState.duplicate, utcnow(), None,
            )  # fmt: skip
            session.add(current)
            path.unlink(missing_ok=True)
            return
        try:
            counts = service.write_rows(
                session,
                own,
                staged(_chunks(scratch)),
                source=source,
                reported_by_id=record.created_by_id,
                import_id=record.id,
            )
        except service.RowsRefused as exc:
            session.rollback()
            _refuse(side, path, exc.problems, exc.total, total)
            return
    current.state = ImportState.done
    current.rows_done = current.rows_total = total
    current.rows_created, current.rows_revised = counts.created, counts.revised
    current.rows_unchanged = counts.unchanged
    current.finished_at = utcnow()
    current.stored_path = None
    session.add(current)
    service.audit_import(session, own, user_id, current)
    path.unlink(missing_ok=True)


def import_now(
    session: Session,
    settings: Settings,
    granted: EngagementAccess,
    source: IO[bytes],
    filename: str,
) -> ResultImport:
    """The whole import in the caller's transaction, without the job (the demo loader and
    the command line use it): the same checks, the same single write."""
    received = receive(settings, source)
    record = create(session, granted, received, filename, start=False)
    if record.state == ImportState.duplicate or record.stored_path is None:
        return record
    path = imports_dir(settings) / record.stored_path
    engagement = granted.engagement
    try:
        detected = open_file(path, record.file_name, engagement.currency)
        checker = service.checker_for(session, engagement, f"import:{detected.format}")
        with tempfile.TemporaryFile(dir=imports_dir(settings), prefix="scratch-") as scratch:
            outcome = validate(detected, checker, scratch)
            if outcome.problem_count:
                raise service.RowsRefused(outcome.problems, outcome.problem_count)
            counts = service.write_rows(
                session,
                engagement,
                _chunks(scratch),
                source=f"import:{detected.format}",
                reported_by_id=granted.actor.user.id,
                import_id=record.id,
            )
    finally:
        path.unlink(missing_ok=True)
    record.state = ImportState.done
    record.rows_done = record.rows_total = outcome.rows
    record.rows_created, record.rows_revised = counts.created, counts.revised
    record.rows_unchanged = counts.unchanged
    record.started_at = record.finished_at = utcnow()
    record.stored_path = None
    session.add(record)
    service.audit_import(session, engagement, granted.actor.user.id, record)
    return record
