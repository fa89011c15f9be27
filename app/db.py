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
# What the current transaction's connection holds, so that setting a value it already
# holds costs no round trip (one authenticated request sets its context once).
_TENANT_CONTEXT_APPLIED = "brandkeep.tenant_context_applied"
_TENANT_CONTEXT_KEYS = ("user_id", "org_ids", "token_hash")
_SET_TENANT_CONTEXT = sa.text(
    "SELECT set_config('brandkeep.user_id', :user_id, true), "
    "set_config('brandkeep.org_ids', :org_ids, true), "
    "set_config('brandkeep.token_hash', :token_hash, true)"
)


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _tenant_context(session: Session) -> dict[str, str]:
    context: dict[str, str] = session.info.setdefault(
        _TENANT_CONTEXT, dict.fromkeys(_TENANT_CONTEXT_KEYS, "")
    )
    return context


def _org_ids_value(org_ids: Iterable[uuid.UUID | str]) -> str:
    # One spelling for one set, whoever computed it (Python, or string_agg in a statement).
    return ",".join(sorted(str(org_id) for org_id in org_ids))


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
    session, and at once if a transaction is already open — unless the transaction
    already holds exactly these values, then nothing is sent. Transaction-local
    means a pooled connection forgets them at commit or rollback: nothing leaks to
    the next request. Unset values read as empty, and the policies then show
    nothing (they fail closed). Arguments left as None keep their earlier value.

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
    context = _tenant_context(session)
    if user_id is not None:
        context["user_id"] = str(user_id)
    if org_ids is not None:
        context["org_ids"] = _org_ids_value(org_ids)
    if token_hash is not None:
        context["token_hash"] = token_hash
    _send_tenant_context(session, context)


def _send_tenant_context(session: Session, context: dict[str, str]) -> None:
    if session.in_transaction() and _on_postgresql(session):
        session.connection()  # a transaction just begun applies the context itself
        if session.info.get(_TENANT_CONTEXT_APPLIED) != context:
            session.execute(_SET_TENANT_CONTEXT, context)
            session.info[_TENANT_CONTEXT_APPLIED] = dict(context)


def tenant_context_column(
    session: Session, key: str, value: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any] | None:
    """A column that sets one value of the tenant context from the row it is read with.

    PostgreSQL only (None elsewhere): it saves the round trip of a separate
    ``set_config`` when the value comes from the database itself — the user id from
    the session or token row that names them, the organizations from the memberships
    that grant them. Sound because the value is computed *from* the row: the setting
    changes only once that row has been read (and never for a row the query did not
    return), and it rules only the statements after this one. Whoever reads such a
    column reports the value with ``tenant_context_was_set``.
    """
    if key not in _TENANT_CONTEXT_KEYS:
        raise ValueError(f"unknown tenant context key {key!r}")
    if not _on_postgresql(session):
        return None
    return sa.func.set_config(f"brandkeep.{key}", value, sa.true()).label(f"set_{key}")


def tenant_context_was_set(session: Session, **values: str) -> None:
    """Record what a ``tenant_context_column`` set in this transaction (no round trip)."""
    if "org_ids" in values:
        values["org_ids"] = _org_ids_value(filter(None, values["org_ids"].split(",")))
    _tenant_context(session).update(values)
    applied = session.info.get(_TENANT_CONTEXT_APPLIED)
    if applied is not None:  # unknown after a savepoint: the next set_tenant_context resends
        applied.update(values)


def _apply_tenant_context(session: Session, transaction: Any, connection: sa.Connection) -> None:
    if transaction.nested:
        return  # a savepoint runs inside its transaction: the context is already there
    context = session.info.get(_TENANT_CONTEXT)
    if context:
        connection.execute(_SET_TENANT_CONTEXT, context)
    # A fresh transaction holds nothing but what was just sent.
    session.info[_TENANT_CONTEXT_APPLIED] = (
        dict(context) if context else dict.fromkeys(_TENANT_CONTEXT_KEYS, "")
    )


def _forget_applied_after_savepoint(session: Session, transaction: Any) -> None:
    # A rolled-back savepoint undoes a set_config made inside it: what the connection
    # holds is unknown, so the next set_tenant_context sends its values again.
    if transaction.nested:
        session.info.pop(_TENANT_CONTEXT_APPLIED, None)


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
            event.listen(
                self.session_factory, "after_transaction_end", _forget_applied_after_savepoint
            )

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


@contextmanager
def widened_tenant_context(
    session: Session, *, user_id: uuid.UUID | None = None, org_ids: Iterable[uuid.UUID] = ()
) -> Iterator[None]:
    """For the server's own records only: see one more person's and tenants' rows, briefly.

    The security log's entries go on the organization's audit chain even when the
    person is not (yet, or no longer) signed in there: a password reset, an invitation
    being accepted. The context is widened for the block and put back exactly as it
    was after it, so nothing the caller reads later sees more.
    """
    context = _tenant_context(session)
    saved = dict(context)
    current = {uuid.UUID(value) for value in saved["org_ids"].split(",") if value}
    set_tenant_context(session, user_id=user_id, org_ids=current | set(org_ids))
    try:
        yield
    except BaseException:
        # The failed statement aborted the transaction: what it holds is unknown.
        context.update(saved)
        session.info.pop(_TENANT_CONTEXT_APPLIED, None)
        raise
    context.update(saved)
    _send_tenant_context(session, context)
