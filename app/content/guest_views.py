"""Pages: a guest's review through a link, and the brand sending and withdrawing links.

The guest's routes carry the link's token in the path (``/guest-review/{token}``,
redacted from the access log) and need no account; the sending and withdrawing
routes are the brand reviewer's, under the post they belong to.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from sqlmodel import Session

from app import web
from app.content import guest, media
from app.content.deps import PagePost
from app.content.guest import GuestLinkUnusable, GuestReview
from app.content.models import PostMedia
from app.content.schemas import DecisionIn
from app.deps import (
    BrowserDep,
    SessionDep,
    SettingsDep,
    ensure_browser_session,
    set_flash,
    verify_csrf,
)
from app.errors import N_, BrandkeepError, Conflict, FieldError, InvalidInput, NotFound
from app.storage import store_for

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def _unusable(request: Request, exc: GuestLinkUnusable, browser: BrowserDep) -> Response:
    return web.render(
        request,
        "content/guest_unusable.html",
        {
            "user": browser.user,
            "message": web.translate(request, exc.message, exc.params),
            "sender_name": exc.sender_name,
            "sender_email": exc.sender_email,
        },
        status_code=exc.status_code,
    )


def _files_of(db: Session, review: GuestReview) -> list[PostMedia]:
    """The current version's files, in the version's order."""
    files = media.media_of(db, review.found.post)
    return [files[sha] for sha in review.current.media_hashes if sha in files]


def _page(
    db: Session, browser: BrowserDep, token: str, review: GuestReview, **extra: Any
) -> dict[str, Any]:
    post = review.found.post
    context: dict[str, Any] = {
        "user": browser.user,
        "token": token,
        "link": review.link,
        "post": post,
        "current": review.current,
        "media": _files_of(db, review),
        "decided": None,
        "form_message": None,
        "values": {},
    }
    context.update(extra)
    return context


@router.get("/guest-review/{token}", name="guest_review")
def guest_page(request: Request, db: SessionDep, browser: BrowserDep, token: str) -> Response:
    try:
        review = guest.look_up(db, token)
    except GuestLinkUnusable as exc:
        return _unusable(request, exc, browser)
    ensure_browser_session(request, db, browser)
    return web.render(request, "content/guest.html", _page(db, browser, token, review))


@router.post("/guest-review/{token}", name="guest_decide")
def guest_decide(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    token: str,
    decision: Annotated[str, Form(max_length=24)] = "",
    version_hash: Annotated[str, Form(max_length=64)] = "",
    comment: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    values = {"decision": decision, "version_hash": version_hash, "comment": comment}
    try:
        with db.begin_nested():
            try:
                data = DecisionIn.model_validate({k: v for k, v in values.items() if v})
            except ValidationError:
                raise InvalidInput(
                    field_errors=[FieldError("decision", N_("Choose a decision."))]
                ) from None
            made = guest.decide(db, token, data)
    except GuestLinkUnusable as exc:
        return _unusable(request, exc, browser)
    except (InvalidInput, Conflict) as exc:
        try:
            review = guest.look_up(db, token)
        except GuestLinkUnusable as gone:
            return _unusable(request, gone, browser)
        errors = web.field_errors_map(request, exc.field_errors)
        message = " ".join(errors.values()) or web.translate(request, exc.message, exc.params)
        context = _page(db, browser, token, review, form_message=message, values=values)
        return web.render(request, "content/guest.html", context, status_code=exc.status_code)
    return web.render(
        request,
        "content/guest.html",
        {"user": browser.user, "decided": made, "post": None, "link": None, "token": token},
    )


@router.get("/guest-review/{token}/media/{sha256}", name="guest_media")
def guest_media(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    browser: BrowserDep,
    token: str,
    sha256: str,
) -> Response:
    """A file of the version under review, and nothing else the post ever had."""
    try:
        review = guest.look_up(db, token)
    except GuestLinkUnusable as exc:
        return _unusable(request, exc, browser)
    if sha256.lower() not in review.current.media_hashes:
        raise NotFound(N_("No such file in this post."))
    row = media.media_file(db, review.found, sha256)
    store = store_for(settings)
    return StreamingResponse(
        store.open(row.sha256),
        media_type=row.content_type,
        headers={
            "Content-Length": str(row.size),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- the brand's side ---------------------------------------------------------------


@router.post("/posts/{post_id}/guest-links", name="send_guest_link")
def send_link(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    browser: BrowserDep,
    found: PagePost,
    email: Annotated[str, Form(max_length=254)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        with db.begin_nested():
            link = guest.send(
                db,
                settings,
                found,
                email=email,
                note=note,
                language=web.request_language(request),
            )
    except BrandkeepError as exc:
        if not isinstance(exc, InvalidInput | Conflict):
            raise
        errors = web.field_errors_map(request, exc.field_errors)
        message = " ".join(errors.values()) or web.translate(request, exc.message, exc.params)
        set_flash(db, browser, message)
        return web.redirect(request, f"/posts/{found.post.id}")
    set_flash(
        db,
        browser,
        web.translate(
            request,
            N_("A review link was sent to %(email)s. It works once, until %(date)s."),
            {"email": link.email, "date": link.expires_at.date().isoformat()},
        ),
    )
    return web.redirect(request, f"/posts/{found.post.id}")


@router.post("/posts/{post_id}/guest-links/{link_id}/revoke", name="revoke_guest_link")
def revoke_link(
    request: Request, db: SessionDep, browser: BrowserDep, found: PagePost, link_id: uuid.UUID
) -> Response:
    try:
        with db.begin_nested():
            link = guest.revoke(db, found, link_id)
    except Conflict as exc:
        set_flash(db, browser, web.translate(request, exc.message, exc.params))
        return web.redirect(request, f"/posts/{found.post.id}")
    set_flash(
        db,
        browser,
        web.translate(
            request, N_("The link sent to %(email)s was withdrawn."), {"email": link.email}
        ),
    )
    return web.redirect(request, f"/posts/{found.post.id}")
