"""Liveness and readiness: /readyz says why the app cannot serve yet."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app import migrate
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.conftest import make_fresh_database_url


def _client_for(settings: Settings, url: str) -> TestClient:
    """An app on its own database; the app disposes the engine when the client closes."""
    return TestClient(create_app(settings, Database(url)), follow_redirects=False)


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    url, drop = make_fresh_database_url(tmp_path, "health")
    try:
        yield url
    finally:
        drop()  # type: ignore[operator]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_on_the_migrated_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    head = migrate.head_revision()
    assert head
    assert response.json() == {"status": "ready", "schema": head}


def test_readyz_refuses_an_unmigrated_database(settings: Settings, fresh_url: str) -> None:
    with _client_for(settings, fresh_url) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "brandkeep db upgrade" in body["reason"]
    assert "nothing" in body["reason"] and str(migrate.head_revision()) in body["reason"]


def test_readyz_refuses_a_database_at_another_revision(settings: Settings, fresh_url: str) -> None:
    # Stamped at a revision this code does not know (an older or newer release).
    migrate.upgrade(fresh_url)
    engine = sa.create_engine(fresh_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'a0b1c2d3e4f5'"))
    engine.dispose()
    with _client_for(settings, fresh_url) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    reason = response.json()["reason"]
    assert "a0b1c2d3e4f5" in reason and "brandkeep db upgrade" in reason


def test_readyz_becomes_ready_after_upgrade(settings: Settings, fresh_url: str) -> None:
    with _client_for(settings, fresh_url) as client:
        assert client.get("/readyz").status_code == 503
        migrate.upgrade(fresh_url)
        response = client.get("/readyz")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(
            lambda tmp: f"sqlite:///{tmp / 'no-such-dir' / 'x.sqlite3'}", id="sqlite-missing-dir"
        ),
        pytest.param(
            lambda _tmp: (
                f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/brandkeep"
                "?connect_timeout=3"
            ),
            id="postgresql-closed-port",
        ),
    ],
)
def test_readyz_says_when_the_database_is_unreachable(
    settings: Settings, tmp_path: Path, make_url
) -> None:
    with _client_for(settings, make_url(tmp_path)) as client:
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("database unreachable"), body
