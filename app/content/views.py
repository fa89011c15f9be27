"""Pages: an engagement's posts by status, and the review page of one post.

The decision buttons post in place (HTMX) and get the page's ``post_main`` block
back; without JavaScript the same posts redirect back to the page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app import storage, web
from app.content import channels, comments, diff, guest, media, schedule, service, utm
from app.content.deps import PagePost
from app.content.models import DecisionKind, Post, PostStatus, PostVersion
from app.content.schemas import DecisionIn, PostCreate, PostUpdate
from app.content.service import PostAccess
from app.db import utcnow
from app.deps import SessionDep, verify_csrf
from app.engagements.deps import PageEngagement
from app.engagements.models import Channel
from app.engagements.service import EngagementAccess
from app.errors import (
    N_,
    BrandkeepError,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)
# Uploads check the declared size before the CSRF check reads the form (see upload_router).
upload_router = APIRouter(include_in_schema=False)

# One post's status (its badge, a row of a table).
POST_STATUS_NAMES = {
    PostStatus.draft: N_("Draft"),
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
# The posts page's groups, one heading per status: several posts each.
POST_GROUP_NAMES = {**POST_STATUS_NAMES, PostStatus.draft: N_("Drafts")}
web.register_labels("post_status_names", POST_STATUS_NAMES)
web.register_labels("post_group_names", POST_GROUP_NAMES)
web.register_labels("decision_names", DECISION_NAMES)


async def form_data(request: Request) -> FormData:
    """The posted form (Starlette caches it; the CSRF check read it already)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def _posts_context(db: Session, granted: EngagementAccess) -> dict[str, Any]:
    posts = service.list_posts(db, granted)
    by_status = {
        status: [post for post in posts if post.status == status] for status in POST_STATUS_NAMES
    }
    engagement = granted.engagement
    return {
        "user": granted.actor.user,
        "engagement": engagement,
        "by_status": by_status,
        "may_draft": granted.can("post.draft"),
        "form_message": None,
        "channel_choices": _channel_choices(list(engagement.channels)),
        "values": {
            "channels": list(engagement.channels[:1]),
            "timezone": granted.actor.user.timezone or "UTC",
        },
    }


@router.get("/engagements/{engagement_id}/posts", name="engagement_posts")
def posts_page(request: Request, db: SessionDep, granted: PageEngagement) -> Response:
    return web.render(request, "content/posts.html", _posts_context(db, granted))


def _review_context(db: Session, found: PostAccess) -> dict[str, Any]:
    review = service.review_of(db, found.post)
    now = utcnow()
    return {
        "user": found.granted.actor.user,
        "post": found.post,
        "engagement": found.granted.engagement,
        "current": service.current_version(db, found.post),
        "review": review,
        "may_decide": service.may_decide(found, review),
        # Worked out from the clock as well, so the page is right before the sweep runs.
        "overdue": schedule.is_overdue(found.post, now),
        "missed_slot": schedule.is_missed(found.post, now),
        "decisions": service.decisions_of(db, found.post),
        "thread": comments.thread_of(db, found),
        # Guest links are the brand's business: the agency never sees whom the brand asked.
        "guest_links": guest.sent_links(db, found) if found.granted.on_brand_side else [],
        "form_message": None,
        **_presentation(db, found),
    }


@router.get("/posts/{post_id}", name="post_review")
def review_page(
    request: Request,
    db: SessionDep,
    found: PagePost,
    diff_from: Annotated[int | None, Query(alias="from", ge=1)] = None,
    diff_to: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> Response:
    found.granted.require("engagement.read")
    context = _review_context(db, found)
    if diff_from is not None or diff_to is not None:
        context.update(_comparison(context["versions"], context["decisions"], diff_from, diff_to))
    return web.render(request, "content/review.html", context)


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


# --- how the post will look, and what changed ------------------------------------------


def _comparison(
    versions: list[PostVersion],
    decisions: Any,
    wanted_from: int | None = None,
    wanted_to: int | None = None,
) -> dict[str, Any]:
    """The two versions to compare: by default the one last decided on and the current one.

    Without a decision yet, the default is the previous version against the current.
    """
    by_number = {version.number: version for version in versions}
    if len(by_number) < 2:
        return {"diff": None, "diff_from": None, "diff_to": None}
    newest = max(by_number)
    to_number = wanted_to if wanted_to in by_number else newest
    decided = [decision.version_number for decision in decisions]
    default_from = decided[-1] if decided and decided[-1] != to_number else to_number - 1
    from_number = wanted_from if wanted_from in by_number else max(default_from, 1)
    old, new = by_number[from_number], by_number[to_number]
    return {
        "diff": {
            "body": diff.render(diff.word_diff(old.body, new.body)),
            "body_changed": old.body != new.body,
            "link": (old.link, new.link) if old.link != new.link else None,
            "channels": (old.channels, new.channels) if old.channels != new.channels else None,
            "planned": (old.planned_at, new.planned_at)
            if old.planned_at != new.planned_at
            else None,
            "media_added": [sha for sha in new.media_hashes if sha not in old.media_hashes],
            "media_removed": [sha for sha in old.media_hashes if sha not in new.media_hashes],
            "same_hash": old.content_hash == new.content_hash,
        },
        "diff_from": from_number,
        "diff_to": to_number,
    }


def _channel_choices(engagement_channels: list[str]) -> list[str]:
    """The engagement's channels first, then every other channel a post may name."""
    rest = [str(channel) for channel in Channel if channel not in engagement_channels]
    return [*engagement_channels, *rest]


def _local_input(value: datetime | None, timezone: str) -> str:
    """A UTC time as the value of a datetime-local input, in the post's time zone."""
    if value is None:
        return ""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _edit_values(post: Post, current: PostVersion) -> dict[str, Any]:
    return {
        "title": post.title,
        "body": current.body,
        "link": current.link or "",
        "channels": list(current.channels),
        "planned_at": _local_input(current.planned_at, current.timezone),
        "timezone": current.timezone,
        "campaign": post.campaign,
        "content_category": post.content_category,
        "version": post.version,
    }


def _presentation(db: Session, found: PostAccess) -> dict[str, Any]:
    post, engagement = found.post, found.granted.engagement
    current = service.current_version(db, post)
    versions = list(service.versions(db, found))
    decisions = service.decisions_of(db, post)
    return {
        "media": media.media_of(db, post),
        "previews": channels.previews(current.body, current.link, list(current.channels)),
        "limits_enforced": bool((engagement.approval_policy or {}).get("enforce_channel_limits")),
        "versions": versions,
        "may_edit": found.granted.can("post.draft") and post.status in service.EDITABLE,
        "edit_values": _edit_values(post, current),
        "edit_errors": {},
        "edit_message": None,
        "channel_choices": _channel_choices(list(engagement.channels)),
        "accept_media": media.ACCEPT_ATTRIBUTE,
        "media_message": None,
        "tracking_added": False,
        **_comparison(versions, decisions),
    }


# --- drafting and editing from the pages ------------------------------------------------


def _form_text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _post_fields(form: FormData) -> tuple[dict[str, Any], list[FieldError]]:
    """The post form as API fields; a local planned time is read in the chosen time zone."""
    errors: list[FieldError] = []
    fields: dict[str, Any] = {
        "title": (_form_text(form, "title") or "").strip(),
        "body": (_form_text(form, "body") or "").replace("\r\n", "\n"),
        "link": (_form_text(form, "link") or "").strip() or None,
        "channels": [value for value in form.getlist("channels") if isinstance(value, str)],
        "timezone": (_form_text(form, "timezone") or "UTC").strip() or "UTC",
        "campaign": (_form_text(form, "campaign") or "").strip(),
        "content_category": (_form_text(form, "content_category") or "").strip(),
        "planned_at": None,
    }
    planned = (_form_text(form, "planned_at") or "").strip()
    if planned:
        try:
            zone = ZoneInfo(fields["timezone"])
            fields["planned_at"] = datetime.fromisoformat(planned).replace(tzinfo=zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(
                FieldError("planned_at", N_("Give a date and time, and an IANA time zone."))
            )
    return fields, errors


def _echo(form: FormData) -> dict[str, Any]:
    """The posted post form, to show again as it was typed (channels as a list)."""
    values: dict[str, Any] = {key: form.get(key) for key in form}
    values["channels"] = [value for value in form.getlist("channels") if isinstance(value, str)]
    return values


def _validated(model: type[PostCreate] | type[PostUpdate], fields: dict[str, Any]) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(
            field_errors=[
                FieldError(str(error["loc"][0]), N_("Check this field.")) for error in exc.errors()
            ]
        ) from None


def _with_edit_errors(
    request: Request, db: Session, found: PostAccess, exc: BrandkeepError, form: FormData
) -> Response:
    db.refresh(found.post)
    context = _review_context(db, found)
    errors = web.field_errors_map(request, exc.field_errors)
    context.update(
        edit_values=_echo(form),
        edit_errors=errors,
        edit_message=None if errors else web.translate(request, exc.message, exc.params),
    )
    return web.render(request, "content/review.html", context, status_code=exc.status_code)


def _after_change(request: Request, db: Session, found: PostAccess) -> Response:
    if not web.is_htmx(request):
        return web.redirect(request, f"/posts/{found.post.id}")
    db.refresh(found.post)
    return web.render(request, "content/review.html", _review_context(db, found))


def _form_version(form: FormData) -> int:
    raw = (_form_text(form, "version") or "").strip()
    return int(raw) if raw.isdigit() else 0


@router.post("/engagements/{engagement_id}/posts", name="create_post_page")
def create_post(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    fields, errors = _post_fields(form)
    try:
        if errors:
            raise InvalidInput(field_errors=errors)
        with db.begin_nested():
            post = service.create_post(db, granted, _validated(PostCreate, fields))
    except (InvalidInput, Conflict) as exc:
        context = _posts_context(db, granted)
        context.update(
            values=_echo(form),
            errors=web.field_errors_map(request, exc.field_errors),
            form_message=None if exc.field_errors else web.translate(request, exc.message),
        )
        return web.render(request, "content/posts.html", context, status_code=exc.status_code)
    return web.redirect(request, f"/posts/{post.id}")


@router.post("/posts/{post_id}/edit", name="edit_post_page")
def edit_post(request: Request, db: SessionDep, found: PagePost, form: FormDep) -> Response:
    """Save the edit form as a new version (conditional on the version the form was read at)."""
    fields, errors = _post_fields(form)
    try:
        if errors:
            raise InvalidInput(field_errors=errors)
        with db.begin_nested():
            service.edit_post(
                db,
                found,
                expected_version=_form_version(form),
                data=_validated(PostUpdate, fields),
            )
    except (InvalidInput, Conflict, PreconditionFailed) as exc:
        return _with_edit_errors(request, db, found, exc, form)
    return _after_change(request, db, found)


@router.post("/posts/{post_id}/tracking", name="post_tracking")
def add_tracking(request: Request, db: SessionDep, found: PagePost, form: FormDep) -> Response:
    """Fill the form's link with the engagement's UTM parameters; saving is the form's job."""
    found.granted.require("post.draft")
    values = _echo(form)
    context = _review_context(db, found)
    try:
        tracking = utm.tracking_for(
            db, found, link=_form_text(form, "link") or "", channels=values["channels"]
        )
    except InvalidInput as exc:
        context.update(
            edit_values=values, edit_errors=web.field_errors_map(request, exc.field_errors)
        )
        return web.render(request, "content/review.html", context, status_code=exc.status_code)
    values["link"] = tracking.tracked_link
    context.update(edit_values=values, tracking_added=tracking.changes)
    return web.render(request, "content/review.html", context)


# --- attachments ---------------------------------------------------------------------


@router.get("/posts/{post_id}/media/{sha256}", name="post_media")
def media_file(request: Request, db: SessionDep, found: PagePost, sha256: str) -> Response:
    row = media.media_file(db, found, sha256)
    return media.file_response(storage.store_for(web.settings_of(request)), row)


@router.post("/posts/{post_id}/media/{sha256}/remove", name="remove_post_media")
def remove_media(
    request: Request, db: SessionDep, found: PagePost, sha256: str, form: FormDep
) -> Response:
    try:
        with db.begin_nested():
            media.detach(db, found, expected_version=_form_version(form), sha256=sha256)
    except (InvalidInput, Conflict, PreconditionFailed, NotFound) as exc:
        if isinstance(exc, NotFound) and exc.message != media.NOT_ATTACHED:
            raise
        return _with_edit_errors(request, db, found, exc, form)
    return _after_change(request, db, found)


def refuse_oversized_upload(request: Request) -> None:
    """Runs before the CSRF check parses the form: a body declared too large is not read."""
    settings = web.settings_of(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > media.max_bytes(settings) + media.ENVELOPE_BYTES:
        raise media.too_large(settings)


@upload_router.post(
    "/posts/{post_id}/media",
    name="attach_post_media",
    dependencies=[Depends(refuse_oversized_upload), Depends(verify_csrf)],
)
async def attach_media(request: Request, db: SessionDep, found: PagePost) -> Response:
    settings = web.settings_of(request)

    def refused(exc: BrandkeepError) -> Response:
        db.refresh(found.post)
        context = _review_context(db, found)
        errors = web.field_errors_map(request, exc.field_errors)
        message = " ".join(errors.values()) or web.translate(request, exc.message, exc.params)
        context.update(media_message=message)
        return web.render(request, "content/review.html", context, status_code=exc.status_code)

    try:
        upload = await media.received_file(request, settings)
        version = _form_version(await request.form())  # parsed once, cached by Starlette

        def attach() -> None:
            with db.begin_nested():
                media.attach(
                    db,
                    found,
                    expected_version=version,
                    upload=upload,
                    store=storage.store_for(settings),
                    settings=settings,
                )

        try:
            await run_in_threadpool(attach)
        finally:
            await upload.close()  # the spooled upload goes now, stored or not
    except (
        InvalidInput,
        Conflict,
        PreconditionFailed,
        media.PayloadTooLarge,
        media.UnsupportedMediaType,
        media.LengthRequired,
    ) as exc:
        return await run_in_threadpool(refused, exc)
    return await run_in_threadpool(_after_change, request, db, found)
