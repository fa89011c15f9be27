"""The demo's conversations: shared comments, each side's internal notes, and mentions.

Run after the demo's posts exist (``app.demo``); adds nothing to a post that already
has comments, so loading the demo twice changes nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.accounts import repository as accounts_repository
from app.content import comments
from app.content import service as content
from app.content.comments_models import Visibility
from app.content.comments_schemas import CommentIn
from app.content.models import Post, PostStatus
from app.db import utcnow
from app.engagements import service as engagements
from app.notifications.models import Notification, NotificationKind
from app.notifications.service import settings_for
from app.tenancy.service import Actor, actor_for

ENGAGEMENT = "Social media 2026"

# (post title, author's e-mail, visibility, text, e-mails mentioned)
COMMENTS = (
    ("Trail Crew spotlight", "reviewer@acme.example", Visibility.shared,
     "Lovely story. Can we name the route and tag the Camino's page?",
     ("creator@northwind.example",)),
    ("Trail Crew spotlight", "lead@acme.example", Visibility.internal,
     "Before we approve: legal wants Marta's photo release on file. Rosa, can you check?",
     ("reviewer@acme.example",)),
    ("Trail Crew spotlight", "manager@northwind.example", Visibility.internal,
     "Marta's release is signed and in the shared drive. Carlos, add the route name.",
     ("creator@northwind.example",)),
    ("Trail Crew spotlight", "creator@northwind.example", Visibility.shared,
     "Route added in the caption draft; the Camino's account is tagged.",
     ("reviewer@acme.example",)),
    ("Spring sale", "creator@northwind.example", Visibility.shared,
     "Understood: the 20 % applies to trail shoes only. New wording on its way.", ()),
    ("Spring sale", "manager@northwind.example", Visibility.internal,
     "Check the code TRAIL10 with the e-commerce team before resubmitting.", ()),
    ("Rain jacket drop", "reviewer@acme.example", Visibility.shared,
     "The lifetime repair promise needs the terms link before we approve again.", ()),
)  # fmt: skip


def _actor(session: Session, email: str) -> Actor | None:
    user = accounts_repository.get_user_by_email(session, email)
    return actor_for(session, user) if user is not None else None


def load(session: Session) -> None:
    lead = _actor(session, "lead@acme.example")
    if lead is None:
        return
    engagement = next(
        (
            summary.engagement
            for summary in engagements.list_engagements(session, lead, limit=200)[0]
            if summary.engagement.name == ENGAGEMENT
        ),
        None,
    )
    if engagement is None:
        return
    posts = {
        post.title: post
        for post in content.list_posts(session, engagements.access(session, lead, engagement.id))
    }
    settings = settings_for(session)
    seen: set[str] = set()
    for title, email, visibility, body, mentions in COMMENTS:
        post = posts.get(title)
        author = _actor(session, email)
        if post is None or author is None:
            continue
        found = content.access(session, author, post.id)
        if title not in seen:
            seen.add(title)
            if comments.thread(session, found):
                posts.pop(title)  # already has its conversation
                continue
        comments.add_comment(
            session,
            found,
            CommentIn(body=body, visibility=visibility, mentions=list(mentions)),
            settings,
        )
    _settle_old_requests(session)


def _settle_old_requests(session: Session) -> None:
    """Requests for review of posts already decided were read long ago: the bell counts what
    still needs someone (posts waiting, decisions, mentions), as it would in real use."""
    waiting = select(Post.id).where(Post.status == PostStatus.in_review)
    session.execute(
        sa.update(Notification)
        .where(
            col(Notification.kind) == NotificationKind.submitted,
            col(Notification.read_at).is_(None),
            col(Notification.post_id).not_in(waiting),
        )
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
