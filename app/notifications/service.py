"""Telling people what concerns them: in the app (the bell) and by e-mail.

``notify`` is the one way in, called by the services that change posts (submit,
decisions), by comments (mentions) and by the reminder job (overdue). It writes
the in-app rows and queues the e-mails in the caller's transaction: if that
transaction rolls back, nobody is told about a change that did not happen.

It tells only people who are on the post's engagement (either side), never the
person who caused it, and each person as they chose for that kind of event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from app.config import Settings, get_settings
from app.content import repository as content_repository
from app.content.models import Post, PostStatus
from app.db import utcnow
from app.engagements.models import Engagement
from app.errors import N_, NotFound
from app.i18n import LANGUAGES
from app.mail import service as mail
from app.notifications import repository
from app.notifications.models import (
    Channel,
    Notification,
    NotificationKind,
    NotificationPreference,
)
from app.tenancy.service import Actor

__all__ = ["Channel", "NotificationKind", "after_decision", "notify", "review_opened"]

MAIL_TEMPLATE = "notification"
PAGE_SIZE = 50
NOTE_LENGTH = 500

KIND_NAMES: dict[NotificationKind, str] = {
    NotificationKind.submitted: N_("A post waits for my review"),
    NotificationKind.changes_requested: N_("Changes are requested on a post"),
    NotificationKind.approved: N_("A post is approved"),
    NotificationKind.rejected: N_("A post is rejected"),
    NotificationKind.mentioned: N_("Someone mentions me in a comment"),
    NotificationKind.overdue: N_("A review is overdue"),
}

# The session's row-level security context names the signed-in person (set by
# ``tenancy.service.actor_for``); it identifies the actor when the caller passes none.
_TENANT_CONTEXT = "brandkeep.tenant_context"
# The request's session carries the app's settings (``deps.get_db_session``), so that the
# services that change posts need not be handed them.
SETTINGS_KEY = "brandkeep.settings"


def settings_for(session: Session) -> Settings:
    settings = session.info.get(SETTINGS_KEY)
    return settings if isinstance(settings, Settings) else get_settings()


def _context_user_id(session: Session) -> uuid.UUID | None:
    raw = session.info.get(_TENANT_CONTEXT, {}).get("user_id") or ""
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def notify(
    session: Session,
    *,
    kind: NotificationKind,
    recipient_ids: Iterable[uuid.UUID],
    post: Post,
    actor_name: str,
    settings: Settings,
    note: str = "",
    actor_id: uuid.UUID | None = None,
) -> None:
    """Tell these people about this post, in the app and by e-mail, as each one chose.

    ``actor_id`` (by default the signed-in person of the session) is never told
    about what they did themselves; a reminder job has no actor and passes none.
    Recipients who are not (or no longer) on the post's engagement are skipped. The
    session works for someone on the engagement (a request's actor, or a job's
    ``tenant_scope(org_ids=[brand, agency])``): on PostgreSQL that is what lets the
    engagement's people be listed.
    """
    kind = NotificationKind(kind)
    actor = actor_id or _context_user_id(session)
    wanted = {person for person in recipient_ids if person != actor}
    if not wanted:
        return
    engagement = _engagement_of(session, post)
    on_engagement = {
        person.user.id: person.user for person in repository.engagement_people(session, engagement)
    }
    recipients = [on_engagement[person] for person in sorted(wanted) if person in on_engagement]
    if not recipients:
        return
    choices = repository.preferences_of(session, (user.id for user in recipients))
    note = " ".join(note.split())[:NOTE_LENGTH]
    link = f"{settings.base_url.rstrip('/')}/posts/{post.id}"
    now = utcnow()
    for user in recipients:
        choice = choices.get((user.id, kind))
        if choice is None or choice.in_app:
            session.add(
                Notification(
                    brand_id=post.brand_id,
                    engagement_id=post.engagement_id,
                    post_id=post.id,
                    user_id=user.id,
                    kind=kind,
                    post_title=post.title[:200],
                    actor_name=actor_name[:120],
                    note=note,
                    created_at=now,
                )
            )
        if choice is None or choice.email:
            language = user.language if user.language in LANGUAGES else settings.default_language
            mail.queue_mail(
                session,
                to=user.email,
                template=MAIL_TEMPLATE,
                context={
                    "kind": kind.value,
                    "name": user.name,
                    "actor_name": actor_name,
                    "post_title": post.title,
                    "engagement_name": engagement.name,
                    "note": note,
                    "link": link,
                    "settings_link": f"{settings.base_url.rstrip('/')}/account/notifications",
                },
                language=language,
            )
    session.flush()


def _engagement_of(session: Session, post: Post) -> Engagement:
    engagement = session.get(Engagement, post.engagement_id)
    if engagement is None:  # the post was loaded through the same scope
        raise NotFound(N_("No post here, or it is not yours."))
    return engagement


# --- the events of a post's review ------------------------------------------------


def review_opened(
    session: Session,
    post: Post,
    actor_id: uuid.UUID | None,
    actor_name: str,
    *,
    settings: Settings | None = None,
) -> None:
    """A step of the post's review is open: tell the brand's people who decide at it.

    Called on submission, when an approval completes a step and the next one opens,
    and when an edit restarts the review. Those who already decided at the step
    (in this round) are not told again.
    """
    if post.status != PostStatus.in_review or post.review_step is None:
        return
    step = post.review_steps[post.review_step]
    roles = {str(role) for role in step.get("roles", [])}
    named = {str(person) for person in step.get("people", [])}
    engagement = _engagement_of(session, post)
    deciders = {
        person.user.id
        for person in repository.engagement_people(session, engagement)
        if person.organization_id == post.brand_id
        and (person.role in roles or str(person.user.id) in named)
    }
    decided = content_repository.deciders_at(
        session, post, round=post.rounds, step=post.review_step
    )
    notify(
        session,
        kind=NotificationKind.submitted,
        recipient_ids=deciders - decided,
        post=post,
        actor_name=actor_name,
        settings=settings or settings_for(session),
        actor_id=actor_id,
    )


# What the review's audit kinds mean for the people who made the post.
_DECIDED: dict[str, NotificationKind] = {
    "post_approved": NotificationKind.approved,
    "post_changes_requested": NotificationKind.changes_requested,
    "post_rejected": NotificationKind.rejected,
}


def after_decision(
    session: Session,
    post: Post,
    outcome: str,
    actor_id: uuid.UUID | None,
    actor_name: str,
    *,
    note: str = "",
    settings: Settings | None = None,
) -> None:
    """After a decision changed the review (``outcome``, its audit kind): tell those concerned.

    The round's end (approved, changes requested, rejected) goes to the post's
    author and the agency's people who wrote its versions; a step opening goes to
    that step's deciders.
    """
    settings = settings or settings_for(session)
    if outcome == "review_step_opened":
        review_opened(session, post, actor_id, actor_name, settings=settings)
        return
    kind = _DECIDED.get(outcome)
    if kind is None:
        return
    makers = {post.created_by_id} | {
        version.author_id for version in content_repository.versions_of(session, post)
    }
    notify(
        session,
        kind=kind,
        recipient_ids={person for person in makers if person is not None},
        post=post,
        actor_name=actor_name,
        settings=settings,
        note=note,
        actor_id=actor_id,
    )


# --- the person's own list and choices -----------------------------------------------


def unread_count(session: Session, actor: Actor) -> int:
    return repository.count_unread(session, actor.user.id, actor.org_ids)


def list_for(
    session: Session, actor: Actor, *, page: int = 1, unread_only: bool = False
) -> tuple[Sequence[Notification], int]:
    total = repository.count_all(session, actor.user.id, actor.org_ids)
    rows = repository.notifications_of(
        session,
        actor.user.id,
        actor.org_ids,
        limit=PAGE_SIZE,
        offset=(max(page, 1) - 1) * PAGE_SIZE,
        unread_only=unread_only,
    )
    return rows, total


def mark_read(session: Session, actor: Actor, notification_id: uuid.UUID) -> Notification:
    """Mark one of my notifications read (again: a no-op); someone else's is a 404."""
    found = repository.get_notification(session, actor.user.id, actor.org_ids, notification_id)
    if found is None:
        raise NotFound(N_("No notification here, or it is not yours."))
    repository.mark_read(session, actor.user.id, actor.org_ids, utcnow(), notification_id)
    session.refresh(found)
    return found


def mark_all_read(session: Session, actor: Actor) -> int:
    return repository.mark_read(session, actor.user.id, actor.org_ids, utcnow())


@dataclass(frozen=True)
class Choice:
    kind: NotificationKind
    in_app: bool
    email: bool


def preferences(session: Session, actor: Actor) -> list[Choice]:
    """Every kind with this person's choice (both channels on unless they said otherwise)."""
    chosen = repository.preferences_of(session, [actor.user.id])
    choices = []
    for kind in NotificationKind:
        row = chosen.get((actor.user.id, kind))
        choices.append(Choice(kind, row.in_app if row else True, row.email if row else True))
    return choices


def set_preferences(
    session: Session, actor: Actor, wanted: dict[NotificationKind, set[Channel]]
) -> list[Choice]:
    """Save the channels wanted for each kind given; kinds left out keep their choice."""
    chosen = repository.preferences_of(session, [actor.user.id])
    now = utcnow()
    for kind, channels in wanted.items():
        row = chosen.get((actor.user.id, kind))
        if row is None:
            row = NotificationPreference(user_id=actor.user.id, kind=kind)
        row.in_app = Channel.in_app in channels
        row.email = Channel.email in channels
        row.updated_at = now
        session.add(row)
    session.flush()
    return preferences(session, actor)
