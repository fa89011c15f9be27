"""Pages: asking for a password reset link, and choosing a new password with it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app import web
from app.accounts import reset, throttle
from app.accounts.reset import ResetUnusable
from app.deps import (
    BrowserDep,
    SessionDep,
    SettingsDep,
    ensure_browser_session,
    set_flash,
    start_signed_in_session,
    verify_csrf,
)
from app.errors import N_, InvalidInput

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


@router.get("/password-reset", name="password_reset")
def request_page(request: Request, db: SessionDep, browser: BrowserDep) -> Response:
    ensure_browser_session(request, db, browser)
    return web.render(request, "accounts/reset_request.html", {"sent": False, "user": browser.user})


@router.post("/password-reset", name="password_reset_submit")
def request_link(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    browser: BrowserDep,
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    # Every request counts (the answer is always "sent"), per address and per client.
    keys = throttle.keys_for(request, throttle.PASSWORD_RESET, account=email)
    throttle.check(db, keys)
    throttle.failed(db, keys)
    try:
        with db.begin_nested():
            reset.request_reset(db, settings, email=email, language=web.request_language(request))
    except InvalidInput as exc:
        return web.render(
            request,
            "accounts/reset_request.html",
            {
                "sent": False,
                "user": browser.user,
                "values": {"email": email},
                "errors": web.field_errors_map(request, exc.field_errors),
            },
            status_code=422,
        )
    # The same page whether or not the address has an account.
    return web.render(request, "accounts/reset_request.html", {"sent": True, "user": browser.user})


def _unusable(request: Request, exc: ResetUnusable, browser: BrowserDep) -> Response:
    return web.render(
        request,
        "accounts/reset.html",
        {"problem": web.translate(request, exc.message), "user": browser.user},
        status_code=exc.status_code,
    )


@router.get("/password-reset/{token}", name="password_reset_form")
def new_password_page(
    request: Request, db: SessionDep, browser: BrowserDep, token: str
) -> Response:
    try:
        usable = reset.check(db, token)
    except ResetUnusable as exc:
        return _unusable(request, exc, browser)
    ensure_browser_session(request, db, browser)
    return web.render(
        request,
        "accounts/reset.html",
        {"problem": None, "token": token, "email": usable.user.email, "user": browser.user},
    )


@router.post("/password-reset/{token}", name="password_reset_set")
def set_new_password(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    token: str,
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        with db.begin_nested():
            user = reset.reset_password(db, token, password=password)
    except ResetUnusable as exc:
        return _unusable(request, exc, browser)
    except InvalidInput as exc:
        usable = reset.check(db, token)
        return web.render(
            request,
            "accounts/reset.html",
            {
                "problem": None,
                "token": token,
                "email": usable.user.email,
                "user": browser.user,
                "errors": web.field_errors_map(request, exc.field_errors),
            },
            status_code=422,
        )
    # Every session of this person ended with the reset; this browser starts a fresh one.
    start_signed_in_session(request, db, browser, user)
    set_flash(
        db,
        browser,
        web.translate(
            request, N_("Your password was changed and every other session was signed out.")
        ),
    )
    return web.redirect(request, "/home")
