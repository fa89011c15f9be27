"""Production's path for jobs: app processes hand them to Redis, `brandkeep worker` runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.conftest import TEST_SECRET, csrf_of
from tests.factories import create_org, person_in
from tests.smtp import SmtpServer, smtp_settings

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# A database of its own, emptied before and after, so no other queue is touched.
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/13"


def _redis_is_up() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _redis_is_up(), reason="needs a Redis server on 127.0.0.1:6379")


@pytest.fixture
def empty_redis() -> Iterator[None]:
    import redis

    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield
    connection.flushdb()
    connection.close()


def test_a_worker_process_delivers_what_the_app_handed_to_redis(
    settings: Settings,
    database: Database,
    database_url: str,
    db: Session,
    smtp: SmtpServer,
    empty_redis: None,
    tmp_path: Path,
) -> None:
    org = create_org(db)
    person_in(db, org, "owner", email="ana@example.com")
    app = create_app(smtp_settings(settings, smtp.port, redis_url=REDIS_URL), database)
    with TestClient(app, follow_redirects=False) as client:
        page = client.get("/password-reset")
        answer = client.post(
            "/password-reset", data={"email": "ana@example.com", "csrf_token": csrf_of(page.text)}
        )
        assert answer.status_code in (200, 303)
    # With Redis configured the app process runs no jobs itself.
    assert smtp.inbox.stays_empty(1.0)

    env = {
        **os.environ,
        "BRANDKEEP_DATABASE_URL": database_url,
        "BRANDKEEP_DATA_DIR": str(tmp_path),
        "BRANDKEEP_SECRET_KEY": TEST_SECRET,
        "BRANDKEEP_ENV": "development",
        "BRANDKEEP_REDIS_URL": REDIS_URL,
        "BRANDKEEP_SMTP_HOST": "127.0.0.1",
        "BRANDKEEP_SMTP_PORT": str(smtp.port),
        "BRANDKEEP_SMTP_SECURITY": "none",
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "brandkeep"), "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        delivered = smtp.inbox.wait_for(1, timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
    assert delivered[0].recipients == ["ana@example.com"], output
    assert "/password-reset/" in delivered[0].part("plain")
