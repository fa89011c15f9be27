"""Rules of posts: drafting, versions, review by the engagement's policy, decisions.

The approval hash: a decision names the SHA-256 of the version it was made on
(``content_hash``), and a post is approved only for the hash of its current
version. Any later save makes a new version and voids the decisions made before
it, so what is approved is exactly what would be published.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from app.audit import service as audit
from app.content import channels, relaxation, repository, schedule
from app.content.models import Decision, DecisionKind, Post, PostStatus, PostVersion
from app.content.schemas import DecisionIn, PostCreate, PostUpdate
from app.db import utcnow
from app.engagements import service as engagements
from app.engagements.models import Engagement, Status
from app.engagements.policy import default_policy
from app.engagements.service import EngagementAccess
from app.errors import (
    N_,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from app.notifications import service as notifications
from app.tenancy import repository as tenancy_repository
from app.tenancy.service import Actor

NOT_FOUND = N_("No post here, or it is not yours.")
EDITED_AFTER_APPROVAL = N_(
    "Edited after it was approved: the approval no longer holds, submit it for review again."
)
EDITED_IN_REVIEW = N_(
    "Edited during review: the decisions made so far no longer hold, the review starts again."
)
EDITABLE = (
    PostStatus.draft,
    PostStatus.in_review,
    PostStatus.changes_requested,
    PostStatus.approved,
)


# --- access ------------------------------------------------------------------


@dataclass(frozen=True)
class PostAccess:
    """A post loaded through the scoped layer, with the caller's access to its engagement."""

    post: Post
    granted: EngagementAccess


def access(session: Session, actor: Actor, post_id: uuid.UUID) -> PostAccess:
    """Load a post for this actor: 404 if its engagement is not theirs."""
    found = repository.get_post(session, post_id, actor.org_ids)
    post, granted = engagements.access_through(session, actor, found, NOT_FOUND)
    return PostAccess(post, granted)


# --- the content hash ----------------------------------------------------------


def content_hash(
    *,
    body: str,
    link: str | None,
    channels: Sequence[str],
    planned_at: datetime | None,
    timezone: str,
    media_hashes: Sequence[str],
) -> str:
    """SHA-256 over a canonical JSON of everything that would be published."""
    published = {
        "body": body,
        "link": link,
        "channels": sorted(channels),
        "planned_at": (
            planned_at.astimezone(UTC).isoformat(timespec="seconds") if planned_at else None
        ),
        "timezone": timezone,
        "media": list(media_hashes),
    }
    canonical = json.dumps(published, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def hash_of(version: PostVersion) -> str:
    return content_hash(
        body=version.body,
        link=version.link,
        channels=version.channels,
        planned_at=version.planned_at,
        timezone=version.timezone,
        media_hashes=version.media_hashes,
    )


# --- reading -------------------------------------------------------------------


def list_posts(
    session: Session, granted: EngagementAccess, status: PostStatus | None = None
) -> Sequence[Post]:
    granted.require("engagement.read")
    return repository.posts_of(session, granted.engagement, status)


def current_version(session: Session, post: Post) -> PostVersion:
    version = repository.get_version(session, post, post.current_version)
    if version is None:  # the version row is written in the same transaction as the post
        raise NotFound(NOT_FOUND)
    return version


def versions(session: Session, found: PostAccess) -> Sequence[PostVersion]:
    found.granted.require("engagement.read")
    return repository.versions_of(session, found.post)


def version(session: Session, found: PostAccess, number: int) -> PostVersion:
    found.granted.require("engagement.read")
    row = repository.get_version(session, found.post, number)
    if row is None:
        raise NotFound(N_("This post has no version with this number."))
    return row


def decisions_of(session: Session, post: Post) -> Sequence[Decision]:
    """Every decision on a post the caller already sees, voided ones included."""
    return repository.decisions_of(session, post)


@dataclass(frozen=True)
class Review:
    """Where the open review stands: the step, its quorum, and who still has to decide."""

    step: int
    step_name: str
    steps: int
    quorum: str | int
    needed: int
    approvals: int
    waiting_on: list[tuple[uuid.UUID, str]]


def _brand_members(session: Session, brand_id: uuid.UUID) -> dict[uuid.UUID, tuple[str, str]]:
    """The brand's members (role, name) by user id."""
    rows = tenancy_repository.member_roles_and_names(
        session, tenancy_repository.AccessibleOrganizationID(brand_id)
    )
    return {user_id: (role, name) for user_id, role, name in rows}


def _eligible(step: dict[str, Any], members: dict[uuid.UUID, tuple[str, str]]) -> set[uuid.UUID]:
    roles = set(step.get("roles", []))
    people = {uuid.UUID(str(person)) for person in step.get("people", [])}
    return {
        user_id for user_id, (role, _name) in members.items() if role in roles or user_id in people
    }


def _needed(step: dict[str, Any], eligible: set[uuid.UUID]) -> int:
    quorum = step.get("quorum", "any")
    if quorum == "any":
        return 1
    if quorum == "all":
        return max(len(eligible), 1)
    return int(quorum)


def review_of(
    session: Session, post: Post, decisions: Sequence[Decision] | None = None
) -> Review | None:
    """Where the open review stands. ``decisions``: the post's decisions if the caller
    has them already (``decisions_of``), which spares reading them again."""
    if post.status != PostStatus.in_review or post.review_step is None:
        return None
    if decisions is None:
        votes = repository.votes_at(session, post, round=post.rounds, step=post.review_step)
    else:
        votes = [
            (row.decider_id, str(row.decision))
            for row in decisions
            if row.round == post.rounds and row.step == post.review_step and row.voided_at is None
        ]
    return _review(post, _brand_members(session, post.brand_id), votes)


def reviews_of(session: Session, posts: Sequence[Post]) -> dict[uuid.UUID, Review]:
    """``review_of`` for a page of posts: one query for the votes, one per brand for its
    members, whatever the number of posts."""
    open_posts = [
        post
        for post in posts
        if post.status == PostStatus.in_review and post.review_step is not None
    ]
    votes = repository.open_votes(session, open_posts)
    members_of: dict[uuid.UUID, dict[uuid.UUID, tuple[str, str]]] = {}
    reviews = {}
    for post in open_posts:
        if post.brand_id not in members_of:
            members_of[post.brand_id] = _brand_members(session, post.brand_id)
        reviews[post.id] = _review(post, members_of[post.brand_id], votes.get(post.id, []))
    return reviews


def _review(
    post: Post,
    members: dict[uuid.UUID, tuple[str, str]],
    votes: Sequence[tuple[uuid.UUID | None, str]],
) -> Review:
    assert post.review_step is not None
    step_index = post.review_step
    step = post.review_steps[step_index]
    eligible = _eligible(step, members)
    decided = {decider for decider, _kind in votes if decider is not None}
    return Review(
        step=step_index,
        step_name=str(step.get("name", "")),
        steps=len(post.review_steps),
        quorum=step.get("quorum", "any"),
        needed=_needed(step, eligible),
        approvals=sum(1 for _decider, kind in votes if kind == DecisionKind.approve),
        waiting_on=sorted(
            ((user_id, members[user_id][1]) for user_id in eligible - decided),
            key=lambda item: item[1],
        ),
    )


def may_decide(found: PostAccess, review: Review | None) -> bool:
    """Whether the caller is one of those the open step still waits for."""
    user_id = found.granted.actor.user.id
    return review is not None and any(person == user_id for person, _name in review.waiting_on)


@dataclass(frozen=True)
class QueueItem:
    post: Post
    engagement: Engagement
    step_name: str
    version_hash: str


def review_queue(session: Session, actor: Actor) -> list[QueueItem]:
    """Posts waiting for this person's decision at their open step, oldest first."""
    members_of: dict[uuid.UUID, dict[uuid.UUID, tuple[str, str]]] = {}
    mine: list[tuple[Post, Engagement, str]] = []
    for post, engagement in repository.in_review_for_brands(session, sorted(actor.org_ids)):
        if post.review_step is None:
            continue
        if post.brand_id not in members_of:
            members_of[post.brand_id] = _brand_members(session, post.brand_id)
        step = post.review_steps[post.review_step]
        if actor.user.id in _eligible(step, members_of[post.brand_id]):
            mine.append((post, engagement, str(step.get("name", ""))))
    # Two queries for the whole queue, not two per post.
    posts = [post for post, _, _ in mine]
    decided = repository.live_decisions_by(session, posts, actor.user.id)
    hashes = repository.current_hashes(session, posts)
    return [
        QueueItem(post, engagement, step_name, hashes[post.id])
        for post, engagement, step_name in mine
        if (post.id, post.rounds, post.review_step) not in decided
    ]


# --- drafting --------------------------------------------------------------------


def _require_drafting(granted: EngagementAccess) -> None:
    granted.require("post.draft")
    if engagements.effective_status(granted.engagement) in (Status.ended, Status.declined):
        raise Conflict(N_("This engagement has ended; its posts can be read, not changed."))


@dataclass(frozen=True)
class GuestSeat:
    """A guest deciding in the seat of the reviewer who sent them the link (content/guest.py).

    The sender's eligibility is checked as if they decided; the decision and the
    record name the guest's e-mail and the link.
    """

    email: str
    link_id: uuid.UUID


def _audit(
    session: Session,
    granted: EngagementAccess,
    kind: str,
    post: Post,
    data: dict[str, Any],
    *,
    guest: GuestSeat | None = None,
) -> None:
    """Every state change of a post lands on the engagement's hash-chained record."""
    user = granted.actor.user
    actor = f"{user.name} <{user.email}>"
    if guest is not None:
        actor = f"{guest.email} (guest link {guest.link_id} from {actor})"
    audit.append(
        session,
        organization_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        actor_id=None if guest else user.id,
        actor=actor,
        kind=kind,
        subject_type="post",
        subject_id=post.id,
        data=data,
    )


def _new_version(
    session: Session, post: Post, number: int, author: Actor, fields: dict[str, Any]
) -> PostVersion:
    values = {
        "body": fields["body"],
        "link": (fields.get("link") or "").strip() or None,
        "channels": [str(channel) for channel in fields.get("channels") or []],
        "planned_at": fields.get("planned_at"),
        "timezone": fields.get("timezone") or "UTC",
        "media_hashes": [str(item).lower() for item in fields.get("media_hashes") or []],
    }
    if values["planned_at"] is not None:
        values["planned_at"] = values["planned_at"].astimezone(UTC)
    row = PostVersion(
        brand_id=post.brand_id,
        engagement_id=post.engagement_id,
        post_id=post.id,
        number=number,
        author_id=author.user.id,
        author_name=author.user.name,
        content_hash=content_hash(**values),
        **values,
    )
    session.add(row)
    session.flush()
    return row


def _require_uploaded(session: Session, post: Post | None, hashes: Sequence[str]) -> None:
    """A version names only files uploaded to its post (content/media.py)."""
    known = {row.sha256 for row in repository.media_of(session, post)} if post else set()
    if any(str(item).lower() not in known for item in hashes):
        raise InvalidInput(
            field_errors=[
                FieldError(
                    "media_hashes",
                    N_("Upload the file to this post first (POST /posts/{id}/media)."),
                )
            ]
        )


def create_post(session: Session, granted: EngagementAccess, data: PostCreate) -> Post:
    _require_drafting(granted)
    if data.media_hashes:
        _require_uploaded(session, None, data.media_hashes)
    fields = data.model_dump()
    engagement = granted.engagement
    post = Post(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        title=data.title.strip(),
        campaign=(data.campaign or "").strip(),
        content_category=(data.content_category or "").strip(),
        funnel_stage=data.funnel_stage,
        channels=[str(channel) for channel in data.channels or []],
        planned_at=data.planned_at.astimezone(UTC) if data.planned_at else None,
        timezone=data.timezone or "UTC",
        created_by_id=granted.actor.user.id,
    )
    session.add(post)
    session.flush()
    first = _new_version(session, post, 1, granted.actor, fields)
    _audit(session, granted, "post_created", post, {"version": 1, "sha256": first.content_hash})
    return post


def edit_post(
    session: Session, found: PostAccess, *, expected_version: int, data: PostUpdate
) -> Post:
    """Every save makes a new immutable version; a save in review or after approval voids."""
    granted, post = found.granted, found.post
    _require_drafting(granted)
    if post.version != expected_version:
        raise PreconditionFailed()
    if post.status not in EDITABLE:
        raise Conflict(N_("A rejected or withdrawn post is not edited: start a new post."))
    changes = data.model_dump(exclude_unset=True)
    if "title" in changes and changes["title"] is None:
        raise InvalidInput(field_errors=[FieldError("title", N_("This field is required."))])
    current = current_version(session, post)
    fields: dict[str, Any] = {
        "body": current.body,
        "link": current.link,
        "channels": current.channels,
        "planned_at": current.planned_at,
        "timezone": current.timezone,
        "media_hashes": current.media_hashes,
    }
    fields.update({key: value for key, value in changes.items() if key in fields})
    if changes.get("media_hashes") is not None:
        _require_uploaded(session, post, changes["media_hashes"])
    if fields["body"] is None:
        fields["body"] = ""
    now = utcnow()
    number = post.current_version + 1
    previous = PostStatus(post.status)
    values: dict[str, Any] = {"current_version": number, "updated_at": now}
    for key in ("title", "campaign", "content_category"):
        if key in changes:
            values[key] = (changes[key] or "").strip()
    if "funnel_stage" in changes:
        values["funnel_stage"] = changes["funnel_stage"]
    values["channels"] = [str(channel) for channel in fields["channels"] or []]
    planned = fields["planned_at"]
    values["planned_at"] = planned.astimezone(UTC) if planned else None
    values["timezone"] = fields["timezone"] or "UTC"
    reason: str | None = None
    if previous == PostStatus.approved:
        reason = EDITED_AFTER_APPROVAL
        values.update(status=PostStatus.draft, approved_hash=None, review_step=None)
    elif previous == PostStatus.in_review:
        reason = EDITED_IN_REVIEW
        values.update(rounds=post.rounds + 1, review_step=0, submitted_at=now)
        values.update(schedule.review_opened(granted.engagement, now))
    values["missed_slot_at"] = schedule.missed_after_edit(post, values["planned_at"], now)
    if reason is not None:
        values.update(voided_reason=reason, voided_at=now)
    if not repository.transition(
        session, post.id, expected_version=expected_version, expected_status=previous, **values
    ):
        raise PreconditionFailed()
    saved = _new_version(session, post, number, granted.actor, fields)
    if reason is not None:
        voided = repository.void_decisions(session, post, now)
        _audit(
            session,
            granted,
            "decisions_voided",
            post,
            {"count": voided, "reason": reason, "by_version": number},
        )
    session.refresh(post)
    _audit(
        session,
        granted,
        "post_edited",
        post,
        {"version": number, "sha256": saved.content_hash, "status": str(post.status)},
    )
    if previous == PostStatus.in_review:  # the review starts again: its deciders are told
        notifications.review_opened(session, post, granted.actor.user.id, granted.actor.user.name)
    return post


def submit(session: Session, found: PostAccess, *, expected_version: int | None = None) -> Post:
    """Send the current version to the brand: step 0 of the engagement's policy opens."""
    granted, post = found.granted, found.post
    _require_drafting(granted)
    if expected_version is not None and post.version != expected_version:
        raise PreconditionFailed()
    if post.status not in (PostStatus.draft, PostStatus.changes_requested):
        raise Conflict(N_("Only a draft, or a post with changes requested, is submitted."))
    engagement = granted.engagement
    steps = (engagement.approval_policy or {}).get("steps") or default_policy(engagement.stage)[
        "steps"
    ]
    now = utcnow()
    if not repository.transition(
        session,
        post.id,
        expected_version=post.version,
        expected_status=PostStatus(post.status),
        status=PostStatus.in_review,
        review_steps=steps,
        review_step=0,
        rounds=post.rounds + 1,
        submitted_at=now,
        first_submitted_at=post.first_submitted_at or now,
        updated_at=now,
        **schedule.review_opened(engagement, now),
    ):
        raise Conflict(N_("The post changed while you were submitting it: reload it."))
    session.refresh(post)
    current = current_version(session, post)
    _audit(
        session,
        granted,
        "post_submitted",
        post,
        {
            "version": current.number,
            "sha256": current.content_hash,
            "round": post.rounds,
            "review_due_at": post.review_due_at.isoformat() if post.review_due_at else None,
        },
    )
    # An earned relaxation of the post's category may approve it now (or spot-check it):
    # then nobody is asked to review it.
    if relaxation.after_submit(session, granted.engagement, post, current):
        session.refresh(post)
        return post
    notifications.review_opened(session, post, granted.actor.user.id, granted.actor.user.name)
    return post


def withdraw(session: Session, found: PostAccess, *, expected_version: int | None = None) -> Post:
    granted, post = found.granted, found.post
    _require_drafting(granted)
    if expected_version is not None and post.version != expected_version:
        raise PreconditionFailed()
    if post.status not in EDITABLE:
        raise Conflict(N_("This post is already closed."))
    if not repository.transition(
        session,
        post.id,
        expected_version=post.version,
        expected_status=PostStatus(post.status),
        status=PostStatus.withdrawn,
        review_step=None,
        updated_at=utcnow(),
    ):
        raise Conflict(N_("The post changed while you were withdrawing it: reload it."))
    session.refresh(post)
    _audit(session, granted, "post_withdrawn", post, {"version": post.current_version})
    return post


# --- deciding ------------------------------------------------------------------------


def _refuse_over_channel_limits(engagement: Engagement, version: PostVersion) -> None:
    """With the policy's ``enforce_channel_limits``, text that does not fit is not approved.

    Without it the review page only warns: the brand decides whether a limit is a rule.
    """
    if not (engagement.approval_policy or {}).get("enforce_channel_limits"):
        return
    over = channels.over_limit(version.body, version.link, list(version.channels))
    if over:
        first = over[0]
        raise InvalidInput(
            N_(
                "The text is too long for %(channel)s (%(length)d characters, the limit is "
                "%(limit)d): this engagement's policy refuses approval until it is shortened."
            ),
            params={"channel": first.label, "length": first.length, "limit": first.limit},
            extra={
                "over_limit": [
                    {"channel": item.channel, "length": item.length, "limit": item.limit}
                    for item in over
                ]
            },
        )


def decide(
    session: Session, found: PostAccess, data: DecisionIn, *, guest: GuestSeat | None = None
) -> Decision:
    """A brand reviewer's decision at the open step, bound to the version hash.

    With ``guest``, the reviewer is the sender of a guest link and the guest decides
    in their seat (content/guest.py).
    """
    granted, post = found.granted, found.post
    actor = granted.actor
    if not granted.on_brand_side:
        raise Forbidden(N_("Only the brand's reviewers decide on posts."))
    if post.status != PostStatus.in_review or post.review_step is None:
        raise Conflict(N_("This post is not waiting for a decision."))
    current = current_version(session, post)
    if data.version_hash != current.content_hash:
        raise Conflict(
            N_(
                "You decided on version %(yours)s, but the post is now at version %(number)d: "
                "read the new version and decide again."
            ),
            params={"yours": data.version_hash[:12], "number": current.number},
            extra={"current_hash": current.content_hash, "current_version": current.number},
        )
    step_index, round_number = post.review_step, post.rounds
    step = post.review_steps[step_index]
    members = _brand_members(session, post.brand_id)
    eligible = _eligible(step, members)
    if actor.user.id not in eligible:
        raise Forbidden(
            N_("The open step (%(step)s) is decided by other people: you are not one of them."),
            params={"step": step.get("name", "")},
        )
    if data.decision == DecisionKind.approve:
        _refuse_over_channel_limits(granted.engagement, current)
    comment = data.comment.strip()
    if data.decision == DecisionKind.request_changes and not comment:
        raise InvalidInput(field_errors=[FieldError("comment", N_("Say what should change."))])
    if data.decision == DecisionKind.reject and not comment:
        raise InvalidInput(field_errors=[FieldError("comment", N_("Give the reason."))])
    now = utcnow()
    if data.decision == DecisionKind.approve:
        schedule.refuse_missed_slot(current.planned_at, now)
    if not repository.claim_for_decision(
        session, post.id, round=round_number, step=step_index, number=current.number, at=now
    ):
        raise Conflict(
            N_(
                "The post changed while you were deciding (a new version, or this step was "
                "completed): reload it."
            )
        )
    session.refresh(post)
    if actor.user.id in repository.deciders_at(session, post, round=round_number, step=step_index):
        raise Conflict(N_("You have already decided at this step."))
    decision = Decision(
        brand_id=post.brand_id,
        engagement_id=post.engagement_id,
        post_id=post.id,
        version_number=current.number,
        version_hash=current.content_hash,
        round=round_number,
        step=step_index,
        decision=data.decision,
        comment=comment,
        decider_id=actor.user.id,
        decider_name=guest.email if guest else actor.user.name,
        guest_link_id=guest.link_id if guest else None,
        created_at=now,
    )
    session.add(decision)
    session.flush()
    _audit(
        session,
        granted,
        f"decision_{data.decision.value}",
        post,
        {
            "decision_id": str(decision.id),
            "version": current.number,
            "sha256": current.content_hash,
            "round": round_number,
            "step": step_index,
            "comment": comment,
            **({"guest_email": guest.email, "guest_link_id": str(guest.link_id)} if guest else {}),
        },
        guest=guest,
    )
    values: dict[str, Any]
    if data.decision == DecisionKind.approve:
        approvals = repository.count_approvals(session, post, round=round_number, step=step_index)
        if approvals < _needed(step, eligible):
            return decision
        if step_index + 1 < len(post.review_steps):
            values = {"review_step": step_index + 1}
            kind = "review_step_opened"
        else:
            values = {
                "status": PostStatus.approved,
                "review_step": None,
                "approved_hash": current.content_hash,
            }
            kind = "post_approved"
    else:
        values = {
            "status": (
                PostStatus.changes_requested
                if data.decision == DecisionKind.request_changes
                else PostStatus.rejected
            ),
            "review_step": None,
        }
        kind = f"post_{values['status']}"
    if not repository.transition(
        session,
        post.id,
        expected_version=post.version,
        expected_status=PostStatus.in_review,
        updated_at=now,
        **values,
    ):
        raise Conflict(N_("The post changed while you were deciding: reload it."))
    session.refresh(post)
    _audit(
        session,
        granted,
        kind,
        post,
        {
            "version": current.number,
            "sha256": current.content_hash,
            "round": round_number,
            "step": post.review_step if kind == "review_step_opened" else step_index,
        },
        guest=guest,
    )
    notifications.after_decision(
        session, post, kind, actor.user.id, decision.decider_name, note=comment
    )
    return decision
