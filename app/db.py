"""Engine, session scope and the column types every table shares.

The request's (or job's) session scope is the only place that commits: services
add and flush, the scope commits on success and rolls back on any error, so a
failure half-way through never leaves half a change behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Field, Session, SQLModel

# Stable constraint names, so that migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is always UTC and always timezone-aware in Python.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are
    stored as naive UTC and made aware again on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timestamp_field(*, nullable: bool = False, **kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime(), nullable=nullable, **kwargs)


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime(), nullable=False)


def id_field() -> Any:
    # Random, never sequential: an id tells nothing about how many rows exist.
    return Field(default_factory=uuid.uuid4, primary_key=True)


def is_sqlite(url: str | sa.URL) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, autocommit: bool = False, **kwargs: Any) -> Engine:
    """An engine; ``autocommit`` is for tools that only look (each statement stands alone)."""
    if is_sqlite(url):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine, begin_immediate=not autocommit)
        return engine
    if autocommit:
        kwargs["isolation_level"] = "AUTOCOMMIT"
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine, *, begin_immediate: bool) -> None:
    """WAL, a busy timeout, and every transaction begun IMMEDIATE.

    With a deferred BEGIN, two requests that read then write would deadlock and
    one would fail with "database is locked"; taking the write lock at BEGIN makes
    the second wait (up to the busy timeout) instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    if begin_immediate:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


# --- the tenant context of PostgreSQL row-level security ---------------------

_TENANT_CONTEXT = "brandkeep.tenant_context"
_SET_TENANT_CONTEXT = sa.text(
    "SELECT set_config('brandkeep.user_id', :user_id, true), "
    "set_config('brandkeep.org_ids', :org_ids, true), "
    "set_config('brandkeep.token_hash', :token_hash, true)"
)


def set_tenant_context(
    session: Session,
    *,
    user_id: uuid.UUID | None = None,
    org_ids: Iterable[uuid.UUID] | None = None,
    token_hash: str | None = None,
) -> None:
    """Tell PostgreSQL's row-level security policies whom this session works for.

    The values live in ``session.info`` and are applied with ``set_config(…, true)``
    (bound parameters, transaction-local) at the start of every transaction of the
    session, and at once if a transaction is already open. Transaction-local means
    a pooled connection forgets them at commit or rollback: nothing leaks to the
    next request. Unset values read as empty, and the policies then show nothing
    (they fail closed). Arguments left as None keep their earlier value.

    - ``user_id``: the signed-in person; their own memberships become readable, so
      that their accessible organizations can be computed (``actor_for``).
    - ``org_ids``: the organizations they may see (from ``get_accessible_org_ids``
      only); rows of those tenants become readable and writable.
    - ``token_hash``: the hash of a secret presented by the caller (API token,
      invitation): the one row with that hash becomes readable before anyone is
      known.

    A savepoint that is rolled back takes a value set inside it along: set the
    context outside ``begin_nested()`` blocks. On SQLite this only stores the values.
    """
    context = session.info.setdefault(
        _TENANT_CONTEXT, {"user_id": "", "org_ids": "", "token_hash": ""}
    )
    if user_id is not None:
        context["user_id"] = str(user_id)
    if org_ids is not None:
        context["org_ids"] = ",".join(sorted(str(org_id) for org_id in org_ids))
    if token_hash is not None:
        context["token_hash"] = token_hash
    if session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        session.execute(_SET_TENANT_CONTEXT, context)


def _apply_tenant_context(session: Session, _transaction: Any, connection: sa.Connection) -> None:
    context = session.info.get(_TENANT_CONTEXT)
    if context:
        connection.execute(_SET_TENANT_CONTEXT, context)


class Database:
    """One engine and its session factory; the app and the CLI each hold one."""

    def __init__(self, url: str, *, autocommit: bool = False, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, autocommit=autocommit, **engine_kwargs)
        self.session_factory = sessionmaker(
            self.engine, class_=Session, expire_on_commit=False, autoflush=True
        )
        if self.engine.dialect.name == "postgresql":
            # Per transaction, never per connection: see set_tenant_context.
            event.listen(self.session_factory, "after_begin", _apply_tenant_context)

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """Commit on success, roll back on any error, always close."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def tenant_scope(
        self, *, user_id: uuid.UUID | None = None, org_ids: Iterable[uuid.UUID] | None = None
    ) -> Iterator[Session]:
        """A background job's session scope, working for one tenant.

        A job acting for a person passes ``user_id`` and then calls
        ``tenancy.service.actor_for`` (which adds the organizations they may see); a
        job acting for organizations (an engagement's brand and agency) passes
        ``org_ids``. Each job gets its own scope: the context ends with it.
        """
        with self.session_scope() as session:
            set_tenant_context(session, user_id=user_id, org_ids=org_ids)
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
