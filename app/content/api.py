"""JSON API: posts, their versions, decisions, and the reviewer's queue."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app import idempotency, storage
from app.content import media, queue, service, utm
from app.content.deps import ApiPost
from app.content.models import Decision, Post, PostMedia, PostStatus, PostVersion
from app.content.schemas import (
    DecisionIn,
    DecisionOut,
    MediaOut,
    PostCreate,
    PostOut,
    PostUpdate,
    QueueItemOut,
    ReviewOut,
    TrackingOut,
    VersionOut,
)
from app.db import utcnow
from app.deps import ApiActor, IfMatch, SessionDep, etag_for, required_version
from app.engagements.deps import ApiEngagement
from app.idempotency import IdempotencyKey
from app.web import settings_of

router = APIRouter(tags=["posts"])


def version_out(row: PostVersion) -> VersionOut:
    return VersionOut.model_validate(row.model_dump(warnings=False))


def decision_out(row: Decision) -> DecisionOut:
    data = row.model_dump(warnings=False)
    data["voided"] = row.voided_at is not None
    return DecisionOut.model_validate(data)


def post_out(db: Session, post: Post) -> PostOut:
    decisions = service.decisions_of(db, post)
    review = service.review_of(db, post, decisions)
    data = post.model_dump(warnings=False)  # enum columns load as plain strings
    data.update(
        status=str(post.status),
        funnel_stage=str(post.funnel_stage) if post.funnel_stage else None,
        current=version_out(service.current_version(db, post)),
        review=(
            ReviewOut(
                step=review.step,
                step_name=review.step_name,
                steps=review.steps,
                quorum=review.quorum,
                needed=review.needed,
                approvals=review.approvals,
                waiting_on=[name for _id, name in review.waiting_on],
            )
            if review
            else None
        ),
        decisions=[decision_out(row) for row in decisions],
    )
    return PostOut.model_validate(data)


def _answer(response: Response, db: Session, post: Post) -> PostOut:
    response.headers["ETag"] = etag_for(post.version)
    return post_out(db, post)


def _optional_version(if_match: str | None) -> int | None:
    return required_version(if_match) if if_match else None


@router.get(
    "/engagements/{engagement_id}/posts",
    response_model=list[PostOut],
    summary="The engagement's posts, newest first",
)
def list_posts(
    db: SessionDep,
    granted: ApiEngagement,
    status: Annotated[PostStatus | None, Query(description="Only posts in this status.")] = None,
) -> list[PostOut]:
    return [post_out(db, post) for post in service.list_posts(db, granted, status)]


@router.post(
    "/engagements/{engagement_id}/posts",
    response_model=PostOut,
    status_code=201,
    summary="Draft a post (the agency): its first version",
)
def create_post(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    granted: ApiEngagement,
    body: PostCreate,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[int, object, dict[str, str]]:
        post = service.create_post(db, granted, body)
        return 201, post_out(db, post).model_dump(mode="json"), {"ETag": etag_for(post.version)}

    return idempotency.create_once(
        db,
        user_id=actor.user.id,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        payload=body,
        create=create,
    )


@router.get("/posts/{post_id}", response_model=PostOut, summary="One post and its review")
def get_post(response: Response, db: SessionDep, found: ApiPost) -> PostOut:
    found.granted.require("engagement.read")
    return _answer(response, db, found.post)


@router.patch(
    "/posts/{post_id}",
    response_model=PostOut,
    summary="Save a new version (the agency; If-Match required; voids earlier decisions)",
)
def edit_post(
    response: Response, db: SessionDep, found: ApiPost, body: PostUpdate, if_match: IfMatch = None
) -> PostOut:
    post = service.edit_post(db, found, expected_version=required_version(if_match), data=body)
    return _answer(response, db, post)


@router.post(
    "/posts/{post_id}/submit",
    response_model=PostOut,
    summary="Submit the current version for the brand's review (the agency)",
)
def submit(response: Response, db: SessionDep, found: ApiPost, if_match: IfMatch = None) -> PostOut:
    post = service.submit(db, found, expected_version=_optional_version(if_match))
    return _answer(response, db, post)


@router.post(
    "/posts/{post_id}/withdraw", response_model=PostOut, summary="Withdraw the post (the agency)"
)
def withdraw(
    response: Response, db: SessionDep, found: ApiPost, if_match: IfMatch = None
) -> PostOut:
    post = service.withdraw(db, found, expected_version=_optional_version(if_match))
    return _answer(response, db, post)


@router.get(
    "/posts/{post_id}/versions",
    response_model=list[VersionOut],
    summary="Every version of the post, oldest first",
)
def list_versions(db: SessionDep, found: ApiPost) -> list[VersionOut]:
    return [version_out(row) for row in service.versions(db, found)]


@router.get("/posts/{post_id}/versions/{number}", response_model=VersionOut, summary="One version")
def get_version(db: SessionDep, found: ApiPost, number: int) -> VersionOut:
    return version_out(service.version(db, found, number))


@router.post(
    "/posts/{post_id}/decisions",
    response_model=DecisionOut,
    status_code=201,
    summary="Decide on the version with this hash (the brand's reviewers at the open step)",
)
def decide(db: SessionDep, found: ApiPost, body: DecisionIn) -> DecisionOut:
    return decision_out(service.decide(db, found, body))


@router.get(
    "/me/review-queue",
    response_model=list[QueueItemOut],
    summary="Posts waiting for your decision, oldest first",
)
def review_queue(
    db: SessionDep,
    actor: ApiActor,
    engagement_id: Annotated[
        uuid.UUID | None, Query(description="Only this engagement's posts.")
    ] = None,
    channel: Annotated[str | None, Query(max_length=32, description="Only this channel.")] = None,
    campaign: Annotated[
        str | None, Query(max_length=160, description="Only this campaign.")
    ] = None,
) -> list[QueueItemOut]:
    filters = queue.checked_filters(
        db, actor, engagement_id=engagement_id, channel=channel, campaign=campaign
    )
    return [
        QueueItemOut(
            post_id=entry.post.id,
            engagement_id=entry.engagement.id,
            engagement_name=entry.engagement.name,
            title=entry.post.title,
            step_name=entry.step_name,
            version_hash=entry.version_hash,
            submitted_at=entry.post.submitted_at,
            campaign=entry.post.campaign,
            channels=list(entry.post.channels or []),
            planned_at=entry.post.planned_at,
            review_due_at=entry.due_at,
            overdue=entry.overdue,
            missed_slot=entry.missed_slot,
        )
        for entry in queue.review_queue(db, actor, filters, utcnow()).entries
    ]


# --- attachments -------------------------------------------------------------------

MULTIPART_FILE = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def media_out(request: Request, row: PostMedia) -> MediaOut:
    data = row.model_dump(warnings=False)
    data["url"] = str(request.url_for("api_post_media", post_id=row.post_id, sha256=row.sha256))
    return MediaOut.model_validate(data)


@router.get(
    "/posts/{post_id}/media",
    response_model=list[MediaOut],
    summary="Every file uploaded to the post (versions name them by sha256)",
)
def list_media(request: Request, db: SessionDep, found: ApiPost) -> list[MediaOut]:
    found.granted.require("engagement.read")
    return [media_out(request, row) for row in media.media_of(db, found.post).values()]


@router.post(
    "/posts/{post_id}/media",
    response_model=PostOut,
    summary="Attach an image or video (multipart field file; If-Match required): a new version",
    description=(
        "Images (JPEG, PNG, GIF, WebP) and videos (MP4, MOV, WebM), recognised by their "
        "bytes, not their name. Too large: 413; another type: 415; nothing is stored then. "
        "Attaching the same bytes again changes nothing."
    ),
    openapi_extra=MULTIPART_FILE,
)
async def attach_media(
    request: Request, response: Response, db: SessionDep, found: ApiPost, if_match: IfMatch = None
) -> PostOut:
    expected = required_version(if_match)
    settings = settings_of(request)
    # Who may edit, and whether the ETag holds, is answered before a byte is read.
    await run_in_threadpool(media.check_editable, db, found, expected)
    upload = await media.received_file(request, settings)
    try:
        post = await run_in_threadpool(
            lambda: media.attach(
                db,
                found,
                expected_version=expected,
                upload=upload,
                store=storage.store_for(settings),
                settings=settings,
            )
        )
    finally:
        await upload.close()  # the spooled upload goes now, stored or not
    return await run_in_threadpool(_answer, response, db, post)


@router.get(
    "/posts/{post_id}/media/{sha256}",
    name="api_post_media",
    summary="The bytes of a file of the post (any version's)",
    response_class=Response,
)
def get_media(request: Request, db: SessionDep, found: ApiPost, sha256: str) -> Response:
    row = media.media_file(db, found, sha256)
    return media.file_response(storage.store_for(settings_of(request)), row)


@router.delete(
    "/posts/{post_id}/media/{sha256}",
    response_model=PostOut,
    summary="Remove a file from the post (If-Match required): a new version without it",
)
def remove_media(
    response: Response, db: SessionDep, found: ApiPost, sha256: str, if_match: IfMatch = None
) -> PostOut:
    post = media.detach(db, found, expected_version=required_version(if_match), sha256=sha256)
    return _answer(response, db, post)


# --- link tracking -----------------------------------------------------------------


@router.get(
    "/posts/{post_id}/link-tracking",
    response_model=TrackingOut,
    summary="The post's link with the engagement's UTM parameters (saves nothing)",
)
def preview_tracking(db: SessionDep, found: ApiPost) -> TrackingOut:
    tracking = utm.tracking_for(db, found)
    return TrackingOut(
        link=tracking.link, tracked_link=tracking.tracked_link, parameters=tracking.parameters
    )


@router.post(
    "/posts/{post_id}/link-tracking",
    response_model=PostOut,
    summary="Add the UTM parameters to the post's link (If-Match required): a new version",
    description=(
        "utm_source, utm_medium and utm_campaign come from the engagement's tracking "
        "set-up; utm_content names the post (its id is the last 32 hex digits). Other "
        "query parameters are kept. If the link already carries them, nothing changes."
    ),
)
def add_tracking(
    response: Response, db: SessionDep, found: ApiPost, if_match: IfMatch = None
) -> PostOut:
    post = utm.add_tracking(db, found, expected_version=required_version(if_match))
    return _answer(response, db, post)
