"""Password reset: a single-use link, valid for an hour, sent to the account's address.

Asking tells nothing about which addresses have accounts: the answer, and the work
done before it (a token made and hashed, the mail rendered), are the same either
way; only for a real account is anything stored and sent. The link carries
``secrets.token_urlsafe(32)``; only its SHA-256 is stored. Using it sets the new
password, spends every open link of that person, and ends all their sessions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.accounts import repository, security_events
from app.accounts import service as accounts
from app.accounts.models import PasswordReset, User
from app.accounts.passwords import hash_password, password_problem
from app.accounts.security_events import SecurityEventKind
from app.accounts.service import secret_hash
from app.config import Settings
from app.db import utcnow
from app.errors import N_, BrandkeepError, FieldError, InvalidInput
from app.i18n import LANGUAGES
from app.mail import service as mail
from app.mail.service import render_mail

LIFETIME = timedelta(hours=1)
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128
RESET_PATH = "/password-reset/"
TEMPLATE = "password_reset"


class ResetUnusable(BrandkeepError):
    """A reset link that is unknown, expired or already used."""

    status_code = 410
    title = N_("This link cannot be used")

    def __init__(self, message: str, *, status_code: int = 410) -> None:
        super().__init__(message)
        self.status_code = status_code


UNKNOWN = N_(
    "This password reset link is not valid. Check that you copied the whole link from the "
    "e-mail, or ask for a new one."
)
EXPIRED = N_("This password reset link has expired: links work for one hour. Ask for a new one.")
USED = N_("This password reset link has already been used. Ask for a new one if you need it.")


def request_reset(session: Session, settings: Settings, *, email: str, language: str) -> None:
    """Send a reset link if the address has an account; do and say the same if not."""
    address = accounts.normalize_email(email)  # a malformed address is the only error shown
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    token_hash = secret_hash(raw)
    user = repository.get_user_by_email(session, address)
    language = (user.language if user else None) or language
    language = language if language in LANGUAGES else settings.default_language
    context = {
        "name": user.name if user else address,
        "link": settings.base_url.rstrip("/") + RESET_PATH + raw,
        "minutes": int(LIFETIME.total_seconds() // 60),
    }
    if user is None or not user.is_active:
        render_mail(TEMPLATE, context, language)  # the same work, nothing stored or sent
        return
    now = utcnow()
    reset = PasswordReset(
        user_id=user.id, token_hash=token_hash, created_at=now, expires_at=now + LIFETIME
    )
    session.add(reset)
    session.flush()
    mail.queue_mail(session, to=user.email, template=TEMPLATE, context=context, language=language)


@dataclass(frozen=True)
class UsableReset:
    reset: PasswordReset
    user: User


def check(session: Session, raw_token: str) -> UsableReset:
    reset = None
    if raw_token and len(raw_token) <= MAX_TOKEN_LENGTH:
        reset = _get_by_token_hash(session, secret_hash(raw_token))
    user = repository.get_user(session, reset.user_id) if reset else None
    if reset is None or user is None or not user.is_active:
        raise ResetUnusable(UNKNOWN, status_code=404)
    if reset.used_at is not None:
        raise ResetUnusable(USED)
    if reset.expires_at <= utcnow():
        raise ResetUnusable(EXPIRED)
    return UsableReset(reset, user)


def reset_password(session: Session, raw_token: str, *, password: str) -> User:
    """Set the new password; the link and any other open link die, and so do all sessions."""
    usable = check(session, raw_token)
    problem = password_problem(password)
    if problem:
        raise InvalidInput(field_errors=[FieldError("password", problem)])
    now = utcnow()
    if not _spend_open_links(session, usable.user, now, this=usable.reset):
        raise ResetUnusable(USED)  # used by another request a moment ago
    usable.user.password_hash = hash_password(password)
    session.add(usable.user)
    accounts.end_all_sessions(session, usable.user)
    security_events.record(session, SecurityEventKind.password_reset, user=usable.user)
    return usable.user


# --- queries -------------------------------------------------------------------------
# (PasswordReset is read and written only here.)


def _get_by_token_hash(session: Session, token_hash: str) -> PasswordReset | None:
    return session.exec(select(PasswordReset).where(PasswordReset.token_hash == token_hash)).first()


def _spend_open_links(session: Session, user: User, now: datetime, *, this: PasswordReset) -> bool:
    """Mark every unused link of the user used; False if ``this`` one was used already."""
    spent_this = session.execute(
        sa.update(PasswordReset)
        .where(col(PasswordReset.id) == this.id, col(PasswordReset.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not spent_this.rowcount:  # type: ignore[attr-defined]
        return False
    session.execute(
        sa.update(PasswordReset)
        .where(col(PasswordReset.user_id) == user.id, col(PasswordReset.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return True
