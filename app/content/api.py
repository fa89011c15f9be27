"""JSON API: posts, their versions, decisions, and the reviewer's queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session

from app import idempotency
from app.content import service
from app.content.deps import ApiPost
from app.content.models import Decision, Post, PostStatus, PostVersion
from app.content.schemas import (
    DecisionIn,
    DecisionOut,
    PostCreate,
    PostOut,
    PostUpdate,
    QueueItemOut,
    ReviewOut,
    VersionOut,
)
from app.deps import ApiActor, IfMatch, SessionDep, etag_for, required_version
from app.engagements.deps import ApiEngagement
from app.idempotency import IdempotencyKey

router = APIRouter(tags=["posts"])


def version_out(row: PostVersion) -> VersionOut:
    return VersionOut.model_validate(row.model_dump(warnings=False))


def decision_out(row: Decision) -> DecisionOut:
    data = row.model_dump(warnings=False)
    data["voided"] = row.voided_at is not None
    return DecisionOut.model_validate(data)


def post_out(db: Session, post: Post) -> PostOut:
    review = service.review_of(db, post)
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
        decisions=[decision_out(row) for row in service.decisions_of(db, post)],
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
def review_queue(db: SessionDep, actor: ApiActor) -> list[QueueItemOut]:
    return [
        QueueItemOut(
            post_id=item.post.id,
            engagement_id=item.engagement.id,
            engagement_name=item.engagement.name,
            title=item.post.title,
            step_name=item.step_name,
            version_hash=item.version_hash,
            submitted_at=item.post.submitted_at,
        )
        for item in service.review_queue(db, actor)
    ]
