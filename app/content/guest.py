"""Guest review: one post, one step, decided by someone without an account (e.g. legal).

The design: a brand reviewer who may decide the open step **delegates their seat**
to an e-mail address. The guest's decision counts exactly as the sender's would
(same quorum, same one-per-seat rule, the sender's eligibility checked again at the
moment the guest decides), and the decision and the audit record name the guest's
e-mail and the link. So a policy "Marketing, then Legal" works with a Legal step
decided by, say, the brand's lead, who sends the link to legal@… and need not
decide themselves. No policy field is needed, and a guest can never decide more
than the seat of a person the brand trusts.

The link carries ``secrets.token_urlsafe(32)``; only its SHA-256 is stored (as for
invitations and password resets) and the access log redacts ``/guest-review/…``.
A link works once, for the round and step it was sent at, until it expires
(``settings.guest_link_days``) or is revoked. Under PostgreSQL row-level security
the guest has no user: presenting the token's hash (``brandkeep.token_hash``) makes
that one link readable, then the request works with the sender's access.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.accounts import repository as accounts_repository
from app.accounts.models import User
from app.accounts.service import normalize_email, secret_hash
from app.audit import service as audit
from app.config import Settings
from app.content import service
from app.content.models import Decision, GuestReviewLink, PostStatus, PostVersion
from app.content.schemas import DecisionIn
from app.content.service import GuestSeat, PostAccess, Review
from app.db import set_tenant_context, utcnow
from app.errors import N_, BrandkeepError, Conflict, FieldError, Forbidden, InvalidInput, NotFound
from app.i18n import LANGUAGES
from app.mail import service as mail
from app.tenancy.models import Organization
from app.tenancy.service import actor_for

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128
GUEST_PATH = "/guest-review/"
TEMPLATE = "guest_review"
MAX_EMAIL_LENGTH = 120  # the decision keeps the guest's e-mail as the decider's name


class GuestLinkUnusable(BrandkeepError):
    """A guest link that is unknown, expired, used, revoked or overtaken: with whom to ask."""

    status_code = 410
    title = N_("This review link cannot be used")

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 410,
        sender_name: str | None = None,
        sender_email: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.sender_name = sender_name
        self.sender_email = sender_email


UNKNOWN = N_(
    "This review link is not valid. Check that you copied the whole link from the e-mail, "
    "or ask the person who sent it for a new one."
)
EXPIRED = N_("This review link has expired.")
USED = N_("This review link has been used already: a decision was recorded through it.")
REVOKED = N_("This review link was withdrawn by the brand.")
MOVED_ON = N_(
    "The review this link was sent for has moved on (the post was edited, decided or "
    "withdrawn), so it no longer needs your decision through this link."
)
SEAT_GONE = N_("The person who sent this link can no longer decide on this post.")


# --- sending and revoking ---------------------------------------------------------


def _require_may_send(session: Session, found: PostAccess) -> Review:
    review = service.review_of(session, found.post)
    if review is None:
        raise Conflict(N_("This post is not waiting for a decision."))
    if not found.granted.on_brand_side or not service.may_decide(found, review):
        raise Forbidden(
            N_(
                "Only a reviewer who may still decide the open step sends it to a guest: "
                "the guest decides in their place."
            )
        )
    return review


def send(
    session: Session,
    settings: Settings,
    found: PostAccess,
    *,
    email: str,
    note: str = "",
    language: str,
) -> GuestReviewLink:
    """Send a single-use link for the open step to ``email``; the link is only in the mail."""
    review = _require_may_send(session, found)
    address = normalize_email(email)
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidInput(
            field_errors=[FieldError("email", N_("This address is too long for a guest link."))]
        )
    post, sender = found.post, found.granted.actor.user
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    link = GuestReviewLink(
        brand_id=post.brand_id,
        engagement_id=post.engagement_id,
        post_id=post.id,
        round=post.rounds,
        step=review.step,
        step_name=review.step_name[:80],
        email=address,
        token_hash=secret_hash(raw),
        sent_by_id=sender.id,
        sent_by_name=sender.name,
        sent_by_email=sender.email,
        created_at=now,
        expires_at=now + timedelta(days=settings.guest_link_days),
    )
    session.add(link)
    session.flush()
    _audit(
        session,
        found,
        "guest_link_sent",
        link,
        email=address,
        round=link.round,
        step=link.step,
        expires_at=link.expires_at.isoformat(),
    )
    language = language if language in LANGUAGES else settings.default_language
    brand = session.get(Organization, post.brand_id)
    mail.queue_mail(
        session,
        to=address,
        template=TEMPLATE,
        context={
            "sender_name": sender.name,
            "sender_email": sender.email,
            "brand_name": brand.name if brand else "",
            "post_title": post.title,
            "step_name": review.step_name,
            "note": note.strip()[:1000],
            "link": settings.base_url.rstrip("/") + GUEST_PATH + raw,
            "expires_on": link.expires_at.date(),
        },
        language=language,
    )
    return link


def links_of(
    session: Session, post_id: uuid.UUID, brand_id: uuid.UUID
) -> Sequence[GuestReviewLink]:
    """Every link sent for a post, newest first (the brand's post page lists them)."""
    return session.exec(
        select(GuestReviewLink)
        .where(GuestReviewLink.brand_id == brand_id, GuestReviewLink.post_id == post_id)
        .order_by(col(GuestReviewLink.created_at).desc())
    ).all()


def sent_links(session: Session, found: PostAccess) -> list[tuple[GuestReviewLink, str, bool]]:
    """Every link sent for a post, newest first, with its state and whether the reader
    may withdraw it (for the brand's post page: the button shows only where ``revoke``
    would let it through)."""
    now = utcnow()
    post = found.post
    return [
        (link, state_of(link, now), can_withdraw(found, link))
        for link in links_of(session, post.id, post.brand_id)
    ]


def state_of(link: GuestReviewLink, now: datetime | None = None) -> str:
    """``used``, ``revoked``, ``expired`` or ``open``."""
    if link.used_at is not None:
        return "used"
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= (now or utcnow()):
        return "expired"
    return "open"


def can_withdraw(found: PostAccess, link: GuestReviewLink) -> bool:
    """The sender, or the brand's owners and leads (who change the engagement), withdraw a link.

    The one rule: ``revoke`` enforces it and the post page asks it before offering the button.
    """
    granted = found.granted
    if link.sent_by_id == granted.actor.user.id:
        return True
    return granted.on_brand_side and granted.can("engagement.edit")


def revoke(session: Session, found: PostAccess, link_id: uuid.UUID) -> GuestReviewLink:
    """Withdraw a link (``can_withdraw`` says who may); it dies at once."""
    granted = found.granted
    link = _get(session, found, link_id)
    if link is None:
        raise NotFound(N_("No such guest link on this post."))
    if not can_withdraw(found, link):
        raise Forbidden(
            N_("Only the person who sent this link, or the brand's owners and leads, withdraw it.")
        )
    if not _update_open(session, link, revoked_at=utcnow(), revoked_by_id=granted.actor.user.id):
        raise Conflict(N_("This link was used, withdrawn or expired already."))
    _audit(session, found, "guest_link_revoked", link, email=link.email)
    session.refresh(link)
    return link


def _audit(
    session: Session, found: PostAccess, kind: str, link: GuestReviewLink, **data: object
) -> None:
    user = found.granted.actor.user
    audit.append(
        session,
        organization_id=found.post.brand_id,
        engagement_id=found.post.engagement_id,
        actor_id=user.id,
        actor=f"{user.name} <{user.email}>",
        kind=kind,
        subject_type="post",
        subject_id=found.post.id,
        data={"guest_link_id": str(link.id), **data},
    )


# --- the guest's side -------------------------------------------------------------


@dataclass(frozen=True)
class GuestReview:
    """A usable link, with the post as the sender sees it."""

    link: GuestReviewLink
    found: PostAccess
    current: PostVersion


def _unusable(message: str, link: GuestReviewLink) -> GuestLinkUnusable:
    return GuestLinkUnusable(
        message, sender_name=link.sent_by_name, sender_email=link.sent_by_email
    )


def look_up(session: Session, raw_token: str) -> GuestReview:
    """The review behind a link, or ``GuestLinkUnusable`` saying why not and whom to ask."""
    link = None
    if raw_token and len(raw_token) <= MAX_TOKEN_LENGTH:
        token_hash = secret_hash(raw_token)
        # Row-level security (PostgreSQL): presenting the token makes that one row readable.
        set_tenant_context(session, token_hash=token_hash)
        link = _get_by_token_hash(session, token_hash)
    if link is None:
        raise GuestLinkUnusable(UNKNOWN, status_code=404)
    problem = {"used": USED, "revoked": REVOKED, "expired": EXPIRED}.get(state_of(link))
    if problem is not None:
        raise _unusable(problem, link)
    sender = accounts_repository.get_user(session, link.sent_by_id)
    if sender is None or not sender.is_active:
        raise _unusable(SEAT_GONE, link)
    found = _sender_access(session, sender, link)
    post = found.post
    if (
        post.status != PostStatus.in_review
        or post.rounds != link.round
        or post.review_step != link.step
    ):
        raise _unusable(MOVED_ON, link)
    if not service.may_decide(found, service.review_of(session, post)):
        raise _unusable(SEAT_GONE, link)
    return GuestReview(link, found, service.current_version(session, post))


def _sender_access(session: Session, sender: User, link: GuestReviewLink) -> PostAccess:
    """The post as the sender sees it now (their memberships, and so their rights, today)."""
    try:
        return service.access(session, actor_for(session, sender), link.post_id)
    except NotFound:
        raise _unusable(SEAT_GONE, link) from None


def decide(session: Session, raw_token: str, data: DecisionIn) -> Decision:
    """The guest decides in the sender's seat; the link is spent in the same transaction."""
    review = look_up(session, raw_token)
    link = review.link
    if not _update_open(session, link, used_at=utcnow()):
        raise _unusable(USED, link)  # used or withdrawn by another request a moment ago
    return service.decide(
        session, review.found, data, guest=GuestSeat(email=link.email, link_id=link.id)
    )


# --- queries ----------------------------------------------------------------------
# (GuestReviewLink is read and written only here.)


def _get(session: Session, found: PostAccess, link_id: uuid.UUID) -> GuestReviewLink | None:
    return session.exec(
        select(GuestReviewLink).where(
            GuestReviewLink.brand_id == found.post.brand_id,
            GuestReviewLink.post_id == found.post.id,
            GuestReviewLink.id == link_id,
        )
    ).first()


def _get_by_token_hash(session: Session, token_hash: str) -> GuestReviewLink | None:
    return session.exec(
        select(GuestReviewLink).where(GuestReviewLink.token_hash == token_hash)
    ).first()


def _update_open(session: Session, link: GuestReviewLink, **values: object) -> bool:
    """Change a link only while it is open: neither used, revoked nor expired."""
    result = session.execute(
        sa.update(GuestReviewLink)
        .where(
            col(GuestReviewLink.id) == link.id,
            col(GuestReviewLink.used_at).is_(None),
            col(GuestReviewLink.revoked_at).is_(None),
            col(GuestReviewLink.expires_at) > utcnow(),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
