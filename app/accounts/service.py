"""Rules about accounts: sign-up, sign-in, sessions and API tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session

from app.accounts import repository
from app.accounts.models import ApiToken, TokenScope, User, UserSession
from app.accounts.passwords import hash_password, needs_rehash, password_problem, verify_password
from app.accounts.security_events import SecurityEventKind
from app.accounts.security_events import record as record_security_event
from app.config import Settings
from app.db import set_tenant_context, utcnow
from app.errors import N_, FieldError, InvalidInput, NotFound, Unauthenticated
from app.i18n import LANGUAGES
from app.tenancy import service as tenancy
from app.tenancy.models import Organization, OrgKind, Role
from app.tenancy.service import Actor

WRONG_CREDENTIALS = N_("Wrong e-mail or password.")
TOKEN_PREFIX = "bk_"  # noqa: S105 - a visible marker, not a secret


def secret_hash(raw: str) -> str:
    """Session ids and API tokens are long random secrets: SHA-256 is the right hash.

    (Passwords, which people choose, get argon2id instead.)
    """
    return hashlib.sha256(raw.encode()).hexdigest()


def normalize_email(email: str, field: str = "email") -> str:
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise InvalidInput(
            field_errors=[FieldError(field, N_("Enter a valid e-mail address."))]
        ) from None
    return result.normalized.lower()


def _check_password(password: str, field: str = "password") -> None:
    problem = password_problem(password)
    if problem:
        raise InvalidInput(field_errors=[FieldError(field, problem)])


# --- accounts ---------------------------------------------------------------


def create_user(
    session: Session, *, email: str, name: str, password: str | None, language: str | None = None
) -> User:
    errors: list[FieldError] = []
    try:
        email = normalize_email(email)
    except InvalidInput as exc:
        errors += exc.field_errors
    if not name.strip():
        errors.append(FieldError("name", N_("Tell us your name.")))
    if password is not None and (problem := password_problem(password)):
        errors.append(FieldError("password", problem))
    if errors:
        raise InvalidInput(field_errors=errors)
    if repository.get_user_by_email(session, email) is not None:
        # Sign-up necessarily tells that an address is taken; the sign-in and
        # reset forms never do.
        raise InvalidInput(
            field_errors=[
                FieldError(
                    "email", N_("An account with this e-mail already exists; sign in instead.")
                )
            ]
        )
    user = User(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password) if password is not None else None,
        language=language if language in LANGUAGES else None,
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class SignUp:
    user: User
    organization: Organization


def sign_up(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    org_name: str,
    org_kind: OrgKind | str,
    language: str = "en",
) -> SignUp:
    """A new person with a new brand or agency, of which they are the first owner."""
    try:
        kind = OrgKind(org_kind)
    except ValueError:
        raise InvalidInput(
            field_errors=[FieldError("org_kind", N_("Choose brand or agency."))]
        ) from None
    errors: list[FieldError] = []
    if not org_name.strip():
        errors.append(FieldError("org_name", N_("Give the organization a name.")))
    try:
        user = create_user(session, email=email, name=name, password=password, language=language)
    except InvalidInput as exc:
        raise InvalidInput(field_errors=exc.field_errors + errors) from None
    if errors:
        raise InvalidInput(field_errors=errors)
    # Row-level security: the new person may write their own first membership.
    set_tenant_context(session, user_id=user.id)
    org = tenancy.create_organization(session, name=org_name, kind=kind, language=language)
    tenancy.add_membership(session, organization=org, user=user, role=Role.owner)
    return SignUp(user=user, organization=org)


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The same answer, and about the same time, for an unknown e-mail and a wrong password."""
    user = repository.get_user_by_email(session, email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Unauthenticated(WRONG_CREDENTIALS)
    # Only now, with the password right, so that a guesser learns nothing about membership.
    # (Imported here: the single sign-on service builds on this module.)
    from app.sso import service as sso

    sso.refuse_password_if_sso_required(session, user)
    assert user.password_hash is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    return user


def change_password(
    session: Session, *, user: User, current: str, new: str, keep_session: uuid.UUID | None
) -> None:
    if not verify_password(user.password_hash, current):
        raise InvalidInput(
            field_errors=[FieldError("current_password", N_("This is not your current password."))]
        )
    _check_password(new, "new_password")
    user.password_hash = hash_password(new)
    session.add(user)
    record_security_event(session, SecurityEventKind.password_changed, user=user)
    # A changed password means any other browser that knew the old one is out.
    repository.revoke_sessions_of_user(session, user.id, utcnow(), keep=keep_session)


def set_language(session: Session, *, user: User, language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidInput(field_errors=[FieldError("language", N_("Choose English or Spanish."))])
    user.language = language
    session.add(user)


# --- browser sessions -------------------------------------------------------


def start_session(
    session: Session,
    settings: Settings,
    *,
    user: User | None,
    ip: str | None,
    user_agent: str | None,
    carry_over: UserSession | None = None,
) -> tuple[UserSession, str]:
    """A new session id (rotation): the old one, if any, stops working at once."""
    now = utcnow()
    raw = secrets.token_urlsafe(32)
    lifetime = (
        timedelta(days=settings.session_days)
        if user
        else timedelta(minutes=settings.anonymous_session_minutes)
    )
    browser_session = UserSession(
        token_hash=secret_hash(raw),
        csrf_token=secrets.token_urlsafe(32),
        user_id=user.id if user else None,
        language=carry_over.language if carry_over else None,
        ip_address=ip,
        user_agent=(user_agent or "")[:300] or None,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    if carry_over is not None:
        carry_over.revoked_at = now
        session.add(carry_over)
    session.add(browser_session)
    session.flush()
    return browser_session, raw


def load_session(session: Session, raw: str | None) -> tuple[UserSession | None, User | None]:
    """The browser's live session and its signed-in user (None if not signed in or
    deactivated), in one query; on PostgreSQL it also names the user to row-level
    security for the rest of the transaction."""
    if not raw or len(raw) > 128:
        return None, None
    found = repository.get_live_session_and_user(session, secret_hash(raw), utcnow())
    if found is None:
        return None, None
    browser_session, user = found
    if browser_session.user_id is None or user is None or not user.is_active:
        return browser_session, None
    return browser_session, user


def end_session(session: Session, browser_session: UserSession) -> None:
    browser_session.revoked_at = utcnow()
    session.add(browser_session)


def end_all_sessions(session: Session, user: User) -> int:
    return repository.revoke_sessions_of_user(session, user.id, utcnow())


# --- API tokens -------------------------------------------------------------


def create_api_token(
    session: Session, actor: Actor, *, org_slug: str, name: str, scope: TokenScope | str
) -> tuple[ApiToken, str]:
    """Returns the token and its secret, which is shown once and never stored."""
    access = tenancy.org_access(session, actor, org_slug)
    errors = []
    if not name.strip():
        errors.append(FieldError("name", N_("Name the token after what will use it.")))
    try:
        scope = TokenScope(scope)
    except ValueError:
        errors.append(FieldError("scope", N_("Choose read or write.")))
    if errors:
        raise InvalidInput(field_errors=errors)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        organization_id=access.organization.id,
        user_id=actor.user.id,
        name=name.strip()[:80],
        prefix=raw[:10],
        token_hash=secret_hash(raw),
        scope=TokenScope(scope),
    )
    session.add(token)
    session.flush()
    record_security_event(
        session,
        SecurityEventKind.api_token_created,
        user=actor.user,
        organization_id=token.organization_id,
        detail={"name": token.name, "prefix": token.prefix, "scope": str(token.scope)},
    )
    return token, raw


# A 401 must say how to authenticate (RFC 9110 §15.5.2); RFC 6750 names the error.
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def authenticate_token(session: Session, raw: str) -> tuple[User, ApiToken]:
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
        raise Unauthenticated(N_("This API token is not valid."), headers=_INVALID_TOKEN)
    # Row-level security: presenting the token is what makes its row readable.
    token_hash = secret_hash(raw)
    set_tenant_context(session, token_hash=token_hash)
    found = repository.get_live_token_and_user(session, token_hash)
    if found is None or not found[1].is_active:
        raise Unauthenticated(N_("This API token is not valid."), headers=_INVALID_TOKEN)
    token, user = found
    now = utcnow()
    # Written at most once a minute, so that reads do not all turn into writes.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
        session.add(token)
    return user, token


def tokens_of(session: Session, user: User) -> Sequence[ApiToken]:
    return repository.list_tokens_of_user(session, user.id)


def revoke_api_token(session: Session, actor: Actor, token_id: uuid.UUID) -> ApiToken:
    token = repository.get_token_of_user(session, token_id, actor.user.id, actor.org_ids)
    if token is None:
        raise NotFound(N_("No such token."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        record_security_event(
            session,
            SecurityEventKind.api_token_revoked,
            user=actor.user,
            organization_id=token.organization_id,
            detail={"name": token.name, "prefix": token.prefix},
        )
    return token
