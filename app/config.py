"""Settings, read once from the environment (prefix ``BRANDKEEP_``)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Where templates, static files and migrations live: beside the ``app`` package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Keys that must never reach production: empty, the documented example, or short.
_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "development-only-secret"}
DEVELOPMENT_SECRET = "development-only-secret"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDKEEP_", env_file=None, extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".brandkeep")
    database_url: str = ""
    secret_key: str = DEVELOPMENT_SECRET
    base_url: str = "http://127.0.0.1:8000"

    default_language: Literal["en", "es"] = "en"
    default_timezone: str = "UTC"

    session_days: int = Field(default=14, ge=1, le=365)
    anonymous_session_minutes: int = Field(default=120, ge=5)
    # After an engagement ends, the agency can still read it for this long.
    engagement_grace_days: int = Field(default=30, ge=0, le=3650)

    # Used by the mail and single sign-on features.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    mail_from: str = "Brandkeep <no-reply@brandkeep.invalid>"
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""

    # Background jobs: empty runs them in each app process (Huey in memory, fed by the
    # outbox table); a Redis URL hands them to `brandkeep worker` processes instead.
    redis_url: str = ""
    job_workers: int = Field(default=2, ge=1, le=64)
    job_max_attempts: int = Field(default=8, ge=1, le=50)
    # A failed job waits this long times 2^(attempts - 1) before the next attempt.
    job_retry_seconds: float = Field(default=30, ge=0, le=3600)
    invitation_days: int = Field(default=7, ge=1, le=90)
    # A guest review link (one post, one step, no account) works this many days.
    guest_link_days: int = Field(default=7, ge=1, le=90)

    # Post attachments (images and videos): the largest accepted upload, in MiB. The
    # bytes live under data_dir/media, named by their SHA-256 (see app.storage).
    max_upload_mb: int = Field(default=50, ge=1, le=4096)
    # An overdue review: its reviewers are reminded every this many hours, and after
    # this many reminders the brand's leads are told instead (content/reminders.py).
    review_reminder_hours: float = Field(default=24, gt=0, le=720)
    review_reminders_before_escalation: int = Field(default=2, ge=0, le=20)

    # Threads that serve synchronous routes: sized for the cores, not Starlette's 40.
    threadpool_size: int = Field(default=8, ge=1, le=256)

    # Results imports: the largest file accepted, and for zips (TikTok, .xlsx) the
    # largest they may unpack to. A million rows of the generic CSV fit in 128 MiB.
    results_import_max_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)

    # Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed; by
    # default none, so the client address is the direct peer's.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _known_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP address or network: {entry!r}") from exc
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.env != "development" and (
            self.secret_key.strip().lower() in _PLACEHOLDER_SECRETS or len(self.secret_key) < 32
        ):
            raise ValueError(
                "BRANDKEEP_SECRET_KEY must be set to a random value of at least 32 characters "
                "outside development (for example: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        return self

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'brandkeep.sqlite3').resolve()}"

    @property
    def session_cookie_name(self) -> str:
        # The __Host- prefix makes browsers insist on Secure, Path=/ and no Domain.
        return "bk_session" if self.is_development else "__Host-bk_session"


@lru_cache
def get_settings() -> Settings:
    return Settings()
