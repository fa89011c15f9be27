"""JSON API: a post's comments (the ones the caller's side may read) and adding one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app import idempotency
from app.content import comments
from app.content.comments_models import PostComment
from app.content.comments_schemas import CommentIn, CommentOut, MentionOut
from app.content.deps import ApiPost
from app.content.service import PostAccess
from app.deps import ApiActor, SessionDep
from app.idempotency import IdempotencyKey
from app.notifications.repository import Person
from app.web import settings_of

router = APIRouter(tags=["comments"])


def comment_out(found: PostAccess, row: PostComment, people: list[Person]) -> CommentOut:
    users = {str(person.user.id): person.user for person in people}
    return CommentOut(
        id=row.id,
        post_id=row.post_id,
        version=row.version_number,
        visibility=row.visibility,
        side=comments.side_name(found.granted, row.author_org_id),
        author_id=row.author_id,
        author_name=row.author_name,
        body=row.body,
        mentions=[
            MentionOut(id=users[key].id, name=users[key].name, email=users[key].email)
            for key in row.mentions
            if key in users
        ],
        created_at=row.created_at,
    )


@router.get(
    "/posts/{post_id}/comments",
    response_model=list[CommentOut],
    summary="The post's thread: shared comments and your side's internal ones, oldest first",
)
def list_comments(db: SessionDep, found: ApiPost) -> list[CommentOut]:
    people = comments.people(db, found)
    return [comment_out(found, row, people) for row in comments.thread(db, found)]


@router.post(
    "/posts/{post_id}/comments",
    response_model=CommentOut,
    status_code=201,
    summary="Comment on a post (shared, or internal to your side); mentions notify",
)
def add_comment(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    found: ApiPost,
    body: CommentIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[int, object, dict[str, str]]:
        row = comments.add_comment(db, found, body, settings_of(request))
        people = comments.people(db, found)
        return 201, comment_out(found, row, people).model_dump(mode="json"), {}

    return idempotency.create_once(
        db,
        user_id=actor.user.id,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        payload=body,
        create=create,
    )
