"""Production refuses an unsafe secret key, and sends cookies only over HTTPS."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session

from app.config import Settings, get_settings
from app.db import Database
from app.main import create_app
from tests.factories import create_org, person_in, sign_in

HOW_TO_MAKE_ONE = "secrets.token_urlsafe(48)"


@pytest.fixture(autouse=True)
def _no_configuration_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENV", "SECRET_KEY", "DATABASE_URL", "BASE_URL", "DATA_DIR"):
        monkeypatch.delenv(f"BRANDKEEP_{name}", raising=False)


def test_production_refuses_a_missing_key() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(env="production")
    assert "BRANDKEEP_SECRET_KEY" in str(refused.value)
    assert HOW_TO_MAKE_ONE in str(refused.value)


def test_production_refuses_a_missing_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRANDKEEP_ENV", "production")
    with pytest.raises(ValidationError, match="BRANDKEEP_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("BRANDKEEP_SECRET_KEY", secrets.token_urlsafe(48))
    assert Settings().env == "production"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "changeme",
        "  ChangeMe  ",
        "secret",
        "development-only-secret",
        "x" * 31,
        secrets.token_urlsafe(16),
    ],
)
def test_production_refuses_a_placeholder_or_short_key(key: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(env="production", secret_key=key)
    message = str(refused.value)
    assert "at least 32 characters" in message
    assert HOW_TO_MAKE_ONE in message


def test_production_accepts_a_random_key() -> None:
    key = secrets.token_urlsafe(36)
    assert len(key) == 48
    settings = Settings(env="production", secret_key=key)
    assert settings.secret_key == key
    assert not settings.is_development


def test_development_needs_no_key() -> None:
    assert Settings(env="development").is_development


def _configure(
    monkeypatch: pytest.MonkeyPatch, env: str, database_url: str, tmp_path: Path
) -> Settings:
    """Configures the process the way a server is configured: through the environment."""
    monkeypatch.setenv("BRANDKEEP_ENV", env)
    monkeypatch.setenv("BRANDKEEP_SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("BRANDKEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("BRANDKEEP_DATA_DIR", str(tmp_path / "data"))
    scheme = "https" if env == "production" else "http"
    monkeypatch.setenv("BRANDKEEP_BASE_URL", f"{scheme}://testserver")
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(autouse=True)
def _forget_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _session_cookie(set_cookie: str) -> tuple[str, SimpleCookie]:
    cookie = SimpleCookie()
    cookie.load(set_cookie)
    assert len(cookie) == 1, set_cookie
    return next(iter(cookie)), cookie


def test_production_cookie_is_host_prefixed_and_secure_with_hsts(
    database_url: str,
    database: Database,
    db: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _configure(monkeypatch, "production", database_url, tmp_path)
    app = create_app(settings, database)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        response = client.get("/sign-in")
        assert response.status_code == 200
        name, cookie = _session_cookie(response.headers["set-cookie"])
        assert name == "__Host-bk_session"
        morsel = cookie[name]
        assert morsel["secure"] is True
        assert morsel["httponly"] is True
        assert morsel["path"] == "/"
        assert not morsel["domain"]  # the __Host- prefix forbids a Domain
        assert morsel["samesite"].lower() == "lax"
        # The browser (the client) keeps it, and sends it back: same session, no new cookie.
        assert client.cookies.get("__Host-bk_session")
        assert "set-cookie" not in client.get("/sign-in").headers

        hsts = response.headers.get("strict-transport-security", "")
        assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 31536000
        assert "strict-transport-security" in client.get("/healthz").headers

        # Signing in over HTTPS works and rotates the secure cookie.
        org = create_org(db)
        user = person_in(db, org, "owner")
        sign_in(client, user.email)
        assert client.cookies.get("__Host-bk_session") != cookie[name].value


def test_development_cookie_is_plain_and_there_is_no_hsts(
    database_url: str, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _configure(monkeypatch, "development", database_url, tmp_path)
    app = create_app(settings, database)
    with TestClient(app, follow_redirects=False) as client:
        response = client.get("/sign-in")
        assert response.status_code == 200
        name, cookie = _session_cookie(response.headers["set-cookie"])
        assert name == "bk_session"
        assert not cookie[name]["secure"]
        assert cookie[name]["httponly"] is True
        assert "__Host-" not in response.headers["set-cookie"]
        assert "strict-transport-security" not in response.headers
        assert "strict-transport-security" not in client.get("/healthz").headers


def test_the_settings_given_to_create_app_decide_the_cookie(
    database_url: str, database: Database, tmp_path: Path
) -> None:
    settings = Settings(
        env="production",
        secret_key=secrets.token_urlsafe(48),
        database_url=database_url,
        data_dir=tmp_path / "data",
        base_url="https://testserver",
    )
    app = create_app(settings, database)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        response = client.get("/sign-in")
    assert "strict-transport-security" in response.headers  # this part already holds
    name, cookie = _session_cookie(response.headers["set-cookie"])
    assert name == "__Host-bk_session" and cookie[name]["secure"] is True
