"""Request dependencies: the database session scope, who is asking, CSRF, API conventions."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Header, Query, Request
from sqlmodel import Session

from app.accounts import security_events, throttle
from app.accounts import service as accounts
from app.accounts.models import TokenScope, User, UserSession
from app.config import Settings
from app.db import Database
from app.errors import (
    N_,
    BrandkeepError,
    CSRFRejected,
    Forbidden,
    PreconditionFailed,
    PreconditionRequired,
    Unauthenticated,
)
from app.tenancy.service import Actor, actor_for
from app.web import settings_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_db_session(request: Request) -> Iterator[Session]:
    """The request's session scope: the only place that commits.

    Declared with ``scope="function"`` so that the commit happens before the
    response leaves: a client never sees a success that was then rolled back.
    """
    with get_database(request).session_scope() as session:
        security_events.remember_request(session, request)
        # For services that send notifications without being handed the settings.
        session.info["brandkeep.settings"] = settings_of(request)
        yield session


SessionDep = Annotated[Session, Depends(get_db_session, scope="function")]


def get_app_settings(request: Request) -> Settings:
    return settings_of(request)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


class SignInRequired(Unauthenticated):
    """On pages this becomes a redirect to the sign-in page."""


# --- pages ------------------------------------------------------------------


@dataclass
class Browser:
    """The browser's server-side session, if it has one, and its signed-in user."""

    session: UserSession | None
    user: User | None


def client_ip(request: Request) -> str | None:
    return throttle.client_ip(request)


def get_browser(request: Request, db: SessionDep, settings: SettingsDep) -> Browser:
    raw = request.cookies.get(settings.session_cookie_name)
    browser_session, user = accounts.load_session(db, raw)
    if browser_session is not None:
        request.state.csrf_token = browser_session.csrf_token
        if browser_session.flash:
            request.state.flash = browser_session.flash
            browser_session.flash = None
            db.add(browser_session)
        if browser_session.language:
            request.state.language = browser_session.language
    if user is not None:
        if user.language:
            request.state.language = user.language
        request.state.timezone = user.timezone or settings.default_timezone
    elif raw and browser_session is None:
        # A stale cookie: clear it rather than send it back forever.
        request.state.session_cookie_change = ""
    return Browser(session=browser_session, user=user)


BrowserDep = Annotated[Browser, Depends(get_browser)]


def ensure_browser_session(request: Request, db: Session, browser: Browser) -> UserSession:
    """Pages with forms for visitors (sign-in, sign-up) need a session to bind CSRF to."""
    if browser.session is None:
        settings = settings_of(request)
        browser.session, raw = accounts.start_session(
            db,
            settings,
            user=None,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
        request.state.session_cookie_change = raw
        request.state.csrf_token = browser.session.csrf_token
    return browser.session


def start_signed_in_session(request: Request, db: Session, browser: Browser, user: User) -> None:
    """Rotate the session id at sign-in: a planted pre-sign-in id is useless after."""
    browser.session, raw = accounts.start_session(
        db,
        settings_of(request),
        user=user,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        carry_over=browser.session,
    )
    browser.user = user
    request.state.session_cookie_change = raw
    request.state.csrf_token = browser.session.csrf_token


def set_flash(db: Session, browser: Browser, message: str) -> None:
    if browser.session is not None:
        browser.session.flash = message[:500]
        db.add(browser.session)


def _same_origin(url: str, request: Request) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[junk": not an origin at all
        raise BrandkeepError(N_("The Origin header is malformed.")) from None
    base = urlsplit(settings_of(request).base_url)
    own = {(base.scheme, base.netloc), (request.url.scheme, request.url.netloc)}
    return (parts.scheme, parts.netloc) in own


async def verify_csrf(request: Request, browser: BrowserDep) -> None:
    """Every unsafe request from a page carries the session's CSRF token.

    Also refused outright: requests the browser itself marks as cross-site
    (``Sec-Fetch-Site``), or whose ``Origin`` is another site.
    """
    if request.method in SAFE_METHODS:
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CSRFRejected(N_("Cross-site requests are refused."))
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and not _same_origin(origin, request):
        raise CSRFRejected(N_("Cross-site requests are refused."))
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # Starlette caches it for the route's Form() fields
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    expected = browser.session.csrf_token if browser.session else None
    # Compared as bytes: compare_digest refuses str with non-ASCII characters.
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CSRFRejected()


def require_user(request: Request, browser: BrowserDep, db: SessionDep) -> User:
    if browser.user is None:
        raise SignInRequired()
    return browser.user


CurrentUser = Annotated[User, Depends(require_user)]


def get_page_actor(user: CurrentUser, db: SessionDep) -> Actor:
    return actor_for(db, user)


PageActor = Annotated[Actor, Depends(get_page_actor)]


# --- API --------------------------------------------------------------------


def get_api_actor(
    request: Request,
    db: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Actor:
    if not authorization:
        raise Unauthenticated(
            N_("Send an API token: Authorization: Bearer <token>."),
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, raw = authorization.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise BrandkeepError(N_("The Authorization header must be: Bearer <token>."))
    user, token = accounts.authenticate_token(db, raw.strip())
    request.state.language = user.language or settings_of(request).default_language
    if request.method not in SAFE_METHODS and token.scope != TokenScope.write:
        raise Forbidden(N_("This token is read-only; create a token with the write scope."))
    return actor_for(db, user, token)


ApiActor = Annotated[Actor, Depends(get_api_actor)]


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageParamsDep = Annotated[PageParams, Depends(page_params)]


def etag_for(version: int) -> str:
    return f'"{version}"'


IfMatch = Annotated[
    str | None,
    Header(description="The ETag you last read; the change applies only if it still holds."),
]


def required_version(if_match: str | None) -> int:
    """The version an update is conditional on, from ``If-Match``: 428 if absent, 412 if junk.

    Called by the route after the object is loaded, so that a foreign object
    answers 404 whatever the headers say.
    """
    if not if_match:
        raise PreconditionRequired()
    value = if_match.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise PreconditionFailed()
    return int(value)
