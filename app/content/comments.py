"""Comments on a post: the thread both sides talk in, and each side's internal notes.

Each comment is bound to the version of the post it was written on, so a reader
can tell a remark about version 2 from one about version 3. A comment is shared,
or internal to its author's side (the brand, or the agency): an internal comment is
never shown to the other side — the scoped query filters it, and on PostgreSQL the
table's row-level security refuses it as well.

Mentions tell people by notification. Only people on the engagement can be
mentioned, and in an internal comment only people of the author's side: telling
someone about a note they may not read would leak it.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from app.audit import service as audit
from app.config import Settings
from app.content import comments_repository as repository
from app.content.comments_models import PostComment, Visibility
from app.content.comments_schemas import CommentIn
from app.content.service import PostAccess
from app.engagements import service as engagements
from app.engagements.models import Status
from app.engagements.service import EngagementAccess
from app.errors import N_, Conflict, FieldError, Forbidden, InvalidInput
from app.notifications import repository as people_repository
from app.notifications.models import NotificationKind
from app.notifications.repository import Person
from app.notifications.service import notify

# "@someone@example.com" in the text: the address after the "@" is mentioned.
MENTION_IN_TEXT = re.compile(r"(?<![\w.@])@([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})")
NOT_ON_ENGAGEMENT = N_("%(who)s is not on this engagement: only its people can be mentioned.")
NOT_ON_YOUR_SIDE = N_(
    "%(who)s is not on your side: an internal comment mentions only people of your side."
)


def own_sides(granted: EngagementAccess) -> set[uuid.UUID]:
    """The organizations of the engagement the caller belongs to (one, rarely both)."""
    engagement = granted.engagement
    sides = set()
    if granted.brand_role is not None:
        sides.add(engagement.brand_id)
    if granted.agency_role is not None:
        sides.add(engagement.agency_id)
    return sides


def author_side(granted: EngagementAccess) -> uuid.UUID:
    """The side a comment speaks for: the brand's for someone on both sides."""
    engagement = granted.engagement
    return engagement.brand_id if granted.brand_role is not None else engagement.agency_id


def side_name(granted: EngagementAccess, org_id: uuid.UUID) -> str:
    return "brand" if org_id == granted.engagement.brand_id else "agency"


# --- reading ----------------------------------------------------------------------


def thread(session: Session, found: PostAccess) -> Sequence[PostComment]:
    found.granted.require("engagement.read")
    return repository.comments_of(session, found.post, own_sides(found.granted))


def people(session: Session, found: PostAccess) -> list[Person]:
    """Everyone on the post's engagement, both sides, by name."""
    found.granted.require("engagement.read")
    return people_repository.engagement_people(session, found.granted.engagement)


def may_comment(granted: EngagementAccess) -> bool:
    if engagements.effective_status(granted.engagement) in (Status.ended, Status.declined):
        return False
    return bool(own_sides(granted))


@dataclass(frozen=True)
class Thread:
    """What the review page shows of the conversation."""

    comments: Sequence[PostComment]
    people: list[Person]
    names: dict[str, str]
    my_side: uuid.UUID | None
    brand_id: uuid.UUID
    may_comment: bool


def thread_of(session: Session, found: PostAccess) -> Thread:
    everyone = people(session, found)
    granted = found.granted
    return Thread(
        comments=thread(session, found),
        people=everyone,
        names={str(person.user.id): person.user.name for person in everyone},
        my_side=author_side(granted) if own_sides(granted) else None,
        brand_id=granted.engagement.brand_id,
        may_comment=may_comment(granted),
    )


# --- writing ------------------------------------------------------------------------


def _resolve_mentions(
    everyone: list[Person], data: CommentIn, side: uuid.UUID
) -> tuple[list[uuid.UUID], list[FieldError]]:
    by_email = {person.user.email.lower(): person for person in everyone}
    by_id = {str(person.user.id): person for person in everyone}
    wanted: list[tuple[str, str]] = [("mentions", item.strip()) for item in data.mentions]
    wanted += [("body", found) for found in MENTION_IN_TEXT.findall(data.body)]
    chosen: list[uuid.UUID] = []
    errors: list[FieldError] = []
    for field, raw in wanted:
        if not raw:
            continue
        match = by_id.get(raw.lower()) or by_email.get(raw.lower())
        if match is None:
            errors.append(FieldError(field, NOT_ON_ENGAGEMENT, {"who": raw}))
            continue
        if data.visibility == Visibility.internal:
            sides = {
                person.organization_id for person in everyone if person.user.id == match.user.id
            }
            if side not in sides:
                errors.append(FieldError(field, NOT_ON_YOUR_SIDE, {"who": match.user.name}))
                continue
        if match.user.id not in chosen:
            chosen.append(match.user.id)
    return chosen, errors


def add_comment(
    session: Session, found: PostAccess, data: CommentIn, settings: Settings
) -> PostComment:
    granted, post = found.granted, found.post
    granted.require("engagement.read")
    if not own_sides(granted):
        raise Forbidden(N_("Only people of the brand or of the agency comment."))
    if engagements.effective_status(granted.engagement) in (Status.ended, Status.declined):
        raise Conflict(N_("This engagement has ended; its posts can be read, not changed."))
    errors: list[FieldError] = []
    body = data.body.strip()
    if not body:
        errors.append(FieldError("body", N_("Write the comment.")))
    version = data.version or post.current_version
    if version > post.current_version:
        errors.append(
            FieldError(
                "version",
                N_("This post has versions 1 to %(last)d."),
                {"last": post.current_version},
            )
        )
    side = author_side(granted)
    everyone = people_repository.engagement_people(session, granted.engagement)
    mentioned, mention_errors = _resolve_mentions(everyone, data, side)
    errors += mention_errors
    if errors:
        raise InvalidInput(field_errors=errors)
    user = granted.actor.user
    comment = PostComment(
        brand_id=post.brand_id,
        engagement_id=post.engagement_id,
        post_id=post.id,
        version_number=version,
        visibility=data.visibility,
        author_org_id=side,
        author_id=user.id,
        author_name=user.name,
        body=body,
        mentions=[str(person) for person in mentioned],
    )
    session.add(comment)
    session.flush()
    # The chain is readable by both sides: it proves the words (their hash), and
    # keeps an internal note's text out of the other side's sight.
    audit.append(
        session,
        organization_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        actor_id=user.id,
        actor=f"{user.name} <{user.email}>",
        kind="comment_added",
        subject_type="post",
        subject_id=post.id,
        data={
            "comment_id": str(comment.id),
            "version": version,
            "visibility": str(data.visibility),
            "side": side_name(granted, side),
            "sha256": hashlib.sha256(body.encode()).hexdigest(),
            "mentions": len(mentioned),
        },
    )
    if mentioned:
        notify(
            session,
            kind=NotificationKind.mentioned,
            recipient_ids=mentioned,
            post=post,
            actor_name=user.name,
            settings=settings,
            note=body,
            actor_id=user.id,
        )
    return comment
