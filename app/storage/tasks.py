"""The periodic collection of blobs that no row names (orphan bytes).

An upload stores its bytes before the row that names them is committed; when the
request then fails (the post changed meanwhile and the save answers 409, or the
transaction rolls back for any other reason) the bytes stay, named by nobody. They
are removed here rather than at the rollback: the store is content-addressed, so
another request may be about to name the very same bytes, and only time tells an
abandoned blob from one in flight.

A blob is removed when both hold:

1. **No row names it.** A row names a blob through a column called ``sha256``:
   every table that has one counts (post media, deliverable evidence, and any table
   added later), so a new kind of attachment is kept without anyone remembering to
   list it here. A table with such a column is read one brand at a time, in that
   brand's tenant scope, so under PostgreSQL row-level security the runtime role
   sees each brand's rows and needs no privileged read.
2. **Nobody put it for ``GRACE``.** ``put`` of bytes already stored marks them as
   just put, and the removal itself checks that time again after moving the file
   aside (``delete_unless_put_since``): a request between its ``put`` and its commit
   never loses its bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from huey import Huey, crontab
from sqlmodel import Session, SQLModel

from app import models  # noqa: F401 - every table, so that none naming a blob is missed
from app.config import Settings
from app.db import Database, utcnow
from app.storage import BlobStore, store_for
from app.tenancy import sweeps

log = logging.getLogger("brandkeep.storage")

COLLECT_TASK = "brandkeep.collect_orphan_blobs"
# Far longer than any request takes between storing bytes and committing the row.
GRACE = timedelta(hours=24)
BLOB_COLUMN = "sha256"
BRAND_KEY = "brand_id"
# Hashes per query: well within every database's limit on bound parameters.
BATCH = 500


@dataclass(frozen=True)
class BlobTable:
    """A table whose ``sha256`` column names blobs, with its tenant key (or None)."""

    table: sa.Table
    tenant_key: str | None


@dataclass
class CollectionReport:
    removed: list[str] = field(default_factory=list)
    kept_referenced: int = 0
    kept_recent: int = 0
    temporaries: int = 0


def blob_tables() -> list[BlobTable]:
    """Every mapped table with a ``sha256`` column: the rows that keep blobs."""
    found = []
    for mapper in SQLModel._sa_registry.mappers:
        table = mapper.local_table
        if isinstance(table, sa.Table) and BLOB_COLUMN in table.c:
            found.append(BlobTable(table, getattr(mapper.class_, "__tenant_key__", None)))
    return sorted(found, key=lambda item: item.table.name)


def _named(
    session: Session, blob_table: BlobTable, brand_id: object, hashes: Sequence[str]
) -> set[str]:
    table = blob_table.table
    query = sa.select(table.c[BLOB_COLUMN]).where(table.c[BLOB_COLUMN].in_(hashes)).distinct()
    if brand_id is not None:
        query = query.where(table.c[BRAND_KEY] == brand_id)
    return set(session.execute(query).scalars())


def named_blobs(database: Database, candidates: Iterable[str]) -> set[str]:
    """Which of ``candidates`` some row names, looked up as the runtime role can."""
    remaining = sorted(set(candidates))
    tables = blob_tables()
    keys = {item.tenant_key for item in tables} - {None, BRAND_KEY}
    if keys:
        # A blob table keyed otherwise would be read wrongly here: remove nothing.
        raise RuntimeError(f"blob tables with an unexpected tenant key: {sorted(map(str, keys))}")
    named: set[str] = set()
    if not remaining:
        return named

    def look(session: Session, brand_id: object, scoped: list[BlobTable]) -> None:
        for blob_table in scoped:
            for start in range(0, len(remaining), BATCH):
                batch = [sha for sha in remaining[start : start + BATCH] if sha not in named]
                if batch:
                    named.update(_named(session, blob_table, brand_id, batch))

    with database.session_scope() as session:
        look(session, None, [item for item in tables if item.tenant_key is None])
        brands = list(sweeps.brand_ids(session))
    tenant_tables = [item for item in tables if item.tenant_key == BRAND_KEY]
    for brand_id in brands:
        with database.tenant_scope(org_ids=[brand_id]) as session:
            look(session, brand_id, tenant_tables)
    return named


def collect(
    database: Database, store: BlobStore, *, now: datetime | None = None
) -> CollectionReport:
    """Remove the blobs no row names and nobody put for ``GRACE``."""
    cutoff = (now or utcnow()) - GRACE
    report = CollectionReport()
    stale = []
    for sha256, put_at in store.blobs():
        if put_at < cutoff:
            stale.append(sha256)
        else:
            report.kept_recent += 1
    named = named_blobs(database, stale)
    report.kept_referenced = len(named)
    for sha256 in stale:
        if sha256 in named:
            continue
        if store.delete_unless_put_since(sha256, cutoff):
            report.removed.append(sha256)
        else:
            report.kept_recent += 1
    report.temporaries = store.delete_stale_temporaries(cutoff)
    return report


def register(huey: Huey, database: Database, settings: Settings) -> None:
    """Collect once a day, at night; two collections at once remove each blob once."""

    def run() -> None:
        report = collect(database, store_for(settings))
        if report.removed or report.temporaries:
            log.info(
                "orphan blobs removed: %d (%d temporary files)",
                len(report.removed),
                report.temporaries,
            )

    huey.periodic_task(crontab(minute="30", hour="3"), name=COLLECT_TASK)(run)
