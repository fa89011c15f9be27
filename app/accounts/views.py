"""Pages: sign-in, sign-up, sign-out and the account page."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app import web
from app.accounts import security_events, throttle
from app.accounts import service as accounts
from app.accounts.security_events import SecurityEventKind
from app.deps import (
    BrowserDep,
    CurrentUser,
    PageActor,
    SessionDep,
    ensure_browser_session,
    set_flash,
    start_signed_in_session,
    verify_csrf,
)
from app.errors import N_, InvalidInput, Unauthenticated
from app.i18n import LANGUAGES
from app.tenancy import service as tenancy

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def _safe_next(next_url: str | None) -> str:
    # Only paths on this site: never an open redirect to somewhere else.
    if next_url and next_url.startswith("/") and not next_url.startswith(("//", "/\\")):
        return next_url
    return "/home"


@router.get("/", name="root")
def root(browser: BrowserDep) -> Response:
    from fastapi.responses import RedirectResponse

    return RedirectResponse("/home" if browser.user else "/sign-in", status_code=303)


@router.get("/sign-in", name="sign_in")
def sign_in_page(
    request: Request, db: SessionDep, browser: BrowserDep, next: str | None = None
) -> Response:
    if browser.user is not None:
        return web.redirect(request, _safe_next(next))
    ensure_browser_session(request, db, browser)
    return web.render(request, "accounts/sign_in.html", {"next": _safe_next(next)})


@router.post("/sign-in", name="sign_in_submit")
def sign_in(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/home",
) -> Response:
    attempt = throttle.keys_for(request, throttle.SIGN_IN, account=email)
    try:
        throttle.check(db, attempt)  # before the password is looked at
        user = accounts.authenticate(db, email=email, password=password)
    except (Unauthenticated, throttle.Throttled) as exc:
        if isinstance(exc, Unauthenticated):
            throttle.failed(db, attempt)
            security_events.record(db, SecurityEventKind.sign_in_failed, email=email)
        return web.render(
            request,
            "accounts/sign_in.html",
            {
                "next": _safe_next(next),
                "values": {"email": email},
                "form_error": web.translate(request, exc.message, exc.params),
            },
            status_code=exc.status_code if isinstance(exc, throttle.Throttled) else 422,
            headers=exc.headers,
        )
    throttle.succeeded(db, attempt)
    start_signed_in_session(request, db, browser, user)
    security_events.record(db, SecurityEventKind.sign_in, user=user)
    return web.redirect(request, _safe_next(next))


@router.get("/sign-up", name="sign_up")
def sign_up_page(request: Request, db: SessionDep, browser: BrowserDep) -> Response:
    if browser.user is not None:
        return web.redirect(request, "/home")
    ensure_browser_session(request, db, browser)
    return web.render(request, "accounts/sign_up.html", {"values": {"org_kind": "brand"}})


@router.post("/sign-up", name="sign_up_submit")
def sign_up(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    name: Annotated[str, Form(max_length=120)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    org_name: Annotated[str, Form(max_length=120)] = "",
    org_kind: Annotated[str, Form(max_length=16)] = "brand",
) -> Response:
    values = {"name": name, "email": email, "org_name": org_name, "org_kind": org_kind}
    try:
        # A savepoint: a refused sign-up leaves nothing behind, yet the page can still render.
        with db.begin_nested():
            result = accounts.sign_up(
                db,
                email=email,
                name=name,
                password=password,
                org_name=org_name,
                org_kind=org_kind,
                language=web.request_language(request),
            )
    except InvalidInput as exc:
        return web.render(
            request,
            "accounts/sign_up.html",
            {"values": values, "errors": web.field_errors_map(request, exc.field_errors)},
            status_code=422,
        )
    start_signed_in_session(request, db, browser, result.user)
    set_flash(
        db,
        browser,
        web.translate(
            request,
            N_("Welcome to Brandkeep. %(org)s is ready."),
            {"org": result.organization.name},
        ),
    )
    return web.redirect(request, "/home")


@router.post("/sign-out", name="sign_out")
def sign_out(request: Request, db: SessionDep, browser: BrowserDep) -> Response:
    if browser.session is not None:
        accounts.end_session(db, browser.session)
        if browser.user is not None:
            security_events.record(db, SecurityEventKind.sign_out, user=browser.user)
    request.state.session_cookie_change = ""
    return web.redirect(request, "/sign-in")


@router.post("/language", name="set_language")
def set_language(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    language: Annotated[str, Form(max_length=8)] = "en",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    if language not in LANGUAGES:
        raise InvalidInput(N_("Choose English or Spanish."))
    if browser.user is not None:
        accounts.set_language(db, user=browser.user, language=language)
    if browser.session is not None:
        browser.session.language = language
        db.add(browser.session)
    return web.redirect(request, _safe_next(next))


def _account_context(db: SessionDep, actor: PageActor) -> dict[str, object]:
    return {
        "user": actor.user,
        "tokens": accounts.tokens_of(db, actor.user),
        "organizations": tenancy.organizations_of(db, actor.user),
        "new_token": None,
    }


@router.get("/account", name="account")
def account_page(request: Request, db: SessionDep, actor: PageActor) -> Response:
    return web.render(request, "accounts/account.html", _account_context(db, actor))


@router.post("/account/password", name="change_password")
def change_password(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    actor: PageActor,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        accounts.change_password(
            db,
            user=actor.user,
            current=current_password,
            new=new_password,
            keep_session=browser.session.id if browser.session else None,
        )
    except InvalidInput as exc:
        context = _account_context(db, actor)
        context["errors"] = web.field_errors_map(request, exc.field_errors)
        return web.render(request, "accounts/account.html", context, status_code=422)
    set_flash(
        db,
        browser,
        web.translate(request, N_("Password changed. Your other sessions were signed out.")),
    )
    return web.redirect(request, "/account")


@router.post("/account/sign-out-everywhere", name="sign_out_everywhere")
def sign_out_everywhere(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    ended = accounts.end_all_sessions(db, user)
    security_events.record(
        db, SecurityEventKind.sign_out_everywhere, user=user, detail={"sessions": ended}
    )
    request.state.session_cookie_change = ""
    return web.redirect(request, "/sign-in")


@router.post("/account/tokens", name="create_token")
def create_token(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    org_slug: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=80)] = "",
    scope: Annotated[str, Form(max_length=8)] = "read",
) -> Response:
    context = _account_context(db, actor)
    try:
        with db.begin_nested():
            _token, raw = accounts.create_api_token(
                db, actor, org_slug=org_slug, name=name, scope=scope
            )
    except InvalidInput as exc:
        context["errors"] = web.field_errors_map(request, exc.field_errors)
        context["values"] = {"name": name, "scope": scope, "org_slug": org_slug}
        return web.render(request, "accounts/account.html", context, status_code=422)
    context["tokens"] = accounts.tokens_of(db, actor.user)
    context["new_token"] = raw
    return web.render(request, "accounts/account.html", context, status_code=201)


@router.post("/account/tokens/{token_id}/revoke", name="revoke_token")
def revoke_token(
    request: Request, db: SessionDep, actor: PageActor, token_id: uuid.UUID
) -> Response:
    accounts.revoke_api_token(db, actor, token_id)
    context = _account_context(db, actor)
    return web.render(request, "accounts/account.html", context)
