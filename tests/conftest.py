"""Test harness: a real database made by the migrations, a real app, real HTTP.

SQLite by default (a file, so WAL and locking are real); PostgreSQL when
``TEST_DATABASE_URL`` names a server: the suite then makes its own fresh
database beside the one named, and drops it at the end.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import migrate
from app.config import Settings, get_settings
from app.db import Database
from app.main import create_app
from app.models import metadata
from tests.smtp import SmtpServer, smtp_server, smtp_settings

TEST_SECRET = "test-secret-" + secrets.token_hex(16)


def make_fresh_database_url(tmp_dir: Path, name: str) -> tuple[str, object]:
    """A new empty database: a SQLite file, or a new PostgreSQL database.

    Returns the URL and a callable that drops it.
    """
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        path = tmp_dir / f"{name}.sqlite3"
        return f"sqlite:///{path}", lambda: None
    url = sa.make_url(base)
    database_name = f"bk_{name}_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{database_name}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')
        admin.dispose()

    return url.set(database=database_name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = make_fresh_database_url(tmp_path_factory.mktemp("db"), "suite")
    migrate.upgrade(url)
    yield url
    drop()  # type: ignore[operator]


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def _tenant_tables() -> list[sa.Table]:
    return list(reversed(metadata.sorted_tables))


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts from empty tables (only for tests that use the database)."""
    yield
    if "database" not in request.fixturenames:
        return
    database: Database = request.getfixturevalue("database")
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in _tenant_tables())
            connection.exec_driver_sql(f"TRUNCATE {names} CASCADE")
        else:
            for table in _tenant_tables():
                connection.execute(table.delete())


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    monkeypatch.setenv("BRANDKEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("BRANDKEEP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BRANDKEEP_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("BRANDKEEP_ENV", "development")
    monkeypatch.setenv("BRANDKEEP_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def make_client(app: FastAPI) -> Iterator[object]:
    """More browsers for the same app (each with its own cookies)."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        test_client = TestClient(app, follow_redirects=False)
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        test_client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def observer(database_url: str) -> Iterator[Database]:
    """Arranges and inspects data: every statement commits on its own, so the test
    never holds a transaction (or SQLite's write lock) while the app works."""
    database = Database(database_url, autocommit=True)
    yield database
    database.dispose()


@pytest.fixture
def db(observer: Database, database: Database) -> Iterator[Session]:
    session = observer.session_factory()
    yield session
    session.close()


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


# --- mail: a real SMTP server, and the app sending to it ---------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_app(settings: Settings, database: Database, smtp: SmtpServer) -> FastAPI:
    """The app, sending its mail to the test's SMTP server."""
    return create_app(smtp_settings(settings, smtp.port), database)


@pytest.fixture
def mail_client(mail_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(mail_app, follow_redirects=False) as test_client:
        yield test_client
