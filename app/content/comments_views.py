"""The thread on the review page: adding a comment re-renders the thread in place (HTMX).

Without JavaScript the form posts normally and the browser is sent back to the
review page, at the thread; a comment with mistakes shows the review page again
with the errors beside the fields.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from app import web
from app.content import comments
from app.content.comments_models import Visibility
from app.content.comments_schemas import CommentIn
from app.content.deps import PagePost
from app.content.service import PostAccess
from app.content.views import FormDep, _review_context
from app.deps import SessionDep, verify_csrf
from app.errors import N_, Conflict, FieldError, Forbidden, InvalidInput

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

THREAD_TEMPLATE = "content/_thread.html"
VALIDATION_MESSAGES = {
    "body": N_("Write the comment (at most 4,000 characters)."),
    "visibility": N_("Choose who may read the comment."),
    "version": N_("Choose one of the post's versions."),
    "mentions": N_("Mention at most 20 people."),
}


def thread_context(
    db: Session,
    found: PostAccess,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    return {
        "thread": comments.thread_of(db, found),
        "thread_errors": errors or {},
        "thread_values": values or {},
        "thread_message": message,
    }


@router.get("/posts/{post_id}/thread", name="post_thread")
def thread_partial(request: Request, db: SessionDep, found: PagePost) -> Response:
    """The thread alone, as the review page shows it (for a refresh in place)."""
    found.granted.require("engagement.read")
    context = {"user": found.granted.actor.user, "post": found.post}
    context.update(thread_context(db, found))
    return web.render(request, THREAD_TEMPLATE, context)


@router.post("/posts/{post_id}/comments", name="add_comment")
def add_comment(request: Request, db: SessionDep, found: PagePost, form: FormDep) -> Response:
    values: dict[str, Any] = {
        "body": str(form.get("body") or ""),
        "visibility": str(form.get("visibility") or Visibility.shared),
        "version": str(form.get("version") or "") or None,
        "mentions": [str(item) for item in form.getlist("mentions") if str(item).strip()],
    }
    try:
        with db.begin_nested():
            try:
                data = CommentIn.model_validate(values)
            except ValidationError as exc:
                fields = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
                raise InvalidInput(
                    field_errors=[
                        FieldError(field, VALIDATION_MESSAGES.get(field, N_("Check this field.")))
                        for field in sorted(fields)
                    ]
                ) from None
            comments.add_comment(db, found, data, web.settings_of(request))
    except (InvalidInput, Conflict, Forbidden) as exc:
        errors = web.field_errors_map(request, exc.field_errors)
        message = None if errors else web.translate(request, exc.message, exc.params)
        context = thread_context(db, found, errors=errors, values=values, message=message)
        if web.is_htmx(request):
            context.update(user=found.granted.actor.user, post=found.post)
            return web.render(request, THREAD_TEMPLATE, context, status_code=exc.status_code)
        page = _review_context(db, found)
        page.update(context)
        return web.render(request, "content/review.html", page, status_code=exc.status_code)
    if not web.is_htmx(request):
        return web.redirect(request, f"/posts/{found.post.id}#post-thread")
    context = {"user": found.granted.actor.user, "post": found.post}
    context.update(thread_context(db, found))
    return web.render(request, THREAD_TEMPLATE, context)
