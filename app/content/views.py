"""Pages: an engagement's posts by status, and the review page of one post.

The decision buttons post in place (HTMX) and get the page's ``post_main`` block
back; without JavaScript the same posts redirect back to the page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData

from app import web
from app.content import service
from app.content.deps import PagePost
from app.content.models import DecisionKind, PostStatus
from app.content.schemas import DecisionIn
from app.content.service import PostAccess
from app.deps import SessionDep, verify_csrf
from app.engagements.deps import PageEngagement
from app.errors import N_, Conflict, FieldError, InvalidInput

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

POST_STATUS_NAMES = {
    PostStatus.draft: N_("Drafts"),
    PostStatus.in_review: N_("In review"),
    PostStatus.changes_requested: N_("Changes requested"),
    PostStatus.approved: N_("Approved"),
    PostStatus.rejected: N_("Rejected"),
    PostStatus.withdrawn: N_("Withdrawn"),
}
DECISION_NAMES = {
    DecisionKind.approve: N_("Approved"),
    DecisionKind.request_changes: N_("Asked for changes"),
    DecisionKind.reject: N_("Rejected"),
}
web.register_labels("post_status_names", POST_STATUS_NAMES)
web.register_labels("decision_names", DECISION_NAMES)


async def form_data(request: Request) -> FormData:
    """The posted form (Starlette caches it; the CSRF check read it already)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


@router.get("/engagements/{engagement_id}/posts", name="engagement_posts")
def posts_page(request: Request, db: SessionDep, granted: PageEngagement) -> Response:
    posts = service.list_posts(db, granted)
    by_status = {
        status: [post for post in posts if post.status == status] for status in POST_STATUS_NAMES
    }
    return web.render(
        request,
        "content/posts.html",
        {"user": granted.actor.user, "engagement": granted.engagement, "by_status": by_status},
    )


def _review_context(db: Session, found: PostAccess) -> dict[str, Any]:
    review = service.review_of(db, found.post)
    return {
        "user": found.granted.actor.user,
        "post": found.post,
        "engagement": found.granted.engagement,
        "current": service.current_version(db, found.post),
        "review": review,
        "may_decide": service.may_decide(found, review),
        "decisions": service.decisions_of(db, found.post),
        "form_message": None,
    }


@router.get("/posts/{post_id}", name="post_review")
def review_page(request: Request, db: SessionDep, found: PagePost) -> Response:
    found.granted.require("engagement.read")
    return web.render(request, "content/review.html", _review_context(db, found))


@router.post("/posts/{post_id}/decisions", name="decide_post")
def decide(request: Request, db: SessionDep, found: PagePost, form: FormDep) -> Response:
    values = {name: form.get(name) for name in ("decision", "version_hash", "comment")}
    try:
        with db.begin_nested():
            try:
                data = DecisionIn.model_validate({k: v for k, v in values.items() if v})
            except ValidationError:
                raise InvalidInput(
                    field_errors=[FieldError("decision", N_("Choose a decision."))]
                ) from None
            service.decide(db, found, data)
    except (InvalidInput, Conflict) as exc:
        db.refresh(found.post)
        errors = web.field_errors_map(request, exc.field_errors)
        message = " ".join(errors.values()) or web.translate(request, exc.message, exc.params)
        context = _review_context(db, found)
        context.update(form_message=message, values=values)
        return web.render(request, "content/review.html", context, status_code=exc.status_code)
    if not web.is_htmx(request):
        return web.redirect(request, f"/posts/{found.post.id}")
    db.refresh(found.post)
    return web.render(request, "content/review.html", _review_context(db, found))
