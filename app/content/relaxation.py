"""Earned relaxation: a content category Brandkeep approves for the brand, until revoked.

DOMAIN.md §1: in development and maturity the brand may relax the policy per content
category, never silently. Here a relaxation is earned, not granted blindly:

- **Earned** means the agency's last ``threshold`` submissions in the category were
  approved first time. A submission counts once its first review ended (approved,
  changes requested or rejected), read from the engagement's audit chain, where every
  outcome is recorded; auto-approved outcomes are no evidence and are skipped.
- **Switched on** only by the brand's owners and leads, only when earned, only in
  development or maturity, and recorded on the audit chain with the evidence.
- **On submit** in an active relaxed category, one submission in ``spot_check_rate``
  still goes to review: a number is drawn uniformly from ``0 … rate - 1`` and ``0``
  means a spot check. The draw, the rule and the submission's number are kept in the
  audit entry, so anyone can check that each outcome followed the rule.
- Otherwise Brandkeep approves: a ``Decision`` (``automatic``) by ``AUTO_APPROVER``
  bound to the version's hash, and an approval entry with that SHA-256, like any other.
- **Revoked** at once by the brand: the next submission goes to review.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.content import channels, repository
from app.content.models import (
    CategoryRelaxation,
    Decision,
    DecisionKind,
    Post,
    PostStatus,
    PostVersion,
)
from app.db import utcnow
from app.engagements.models import Engagement, Stage
from app.engagements.service import EngagementAccess
from app.errors import N_, Conflict, FieldError, Forbidden, InvalidInput, NotFound

AUTO_APPROVER = "Brandkeep (auto-approval)"
RELAXABLE_STAGES = (Stage.development, Stage.maturity)
OUTCOME_KINDS = ("post_approved", "post_changes_requested", "post_rejected")
DEFAULT_THRESHOLD = 5
DEFAULT_SPOT_CHECK_RATE = 5
MAX_THRESHOLD = 50
MAX_SPOT_CHECK_RATE = 100

# The spot-check draw: ``draw(rate)`` gives a number in ``0 … rate - 1``. Always the
# system's secure generator, unless a caller that must replay the same story (the demo)
# supplies its own for the length of a ``with drawing(...)`` block.
Draw = Callable[[int], int]
_draw: ContextVar[Draw] = ContextVar("relaxation_draw", default=secrets.randbelow)


@contextmanager
def drawing(draw: Draw) -> Iterator[None]:
    """Draw spot checks with ``draw`` inside the block (e.g. a seeded ``Random.randrange``)."""
    token = _draw.set(draw)
    try:
        yield
    finally:
        _draw.reset(token)


# --- the evidence ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one submission's first review ended."""

    post_id: uuid.UUID
    title: str
    first_time: bool
    kind: str
    seq: int


@dataclass(frozen=True)
class Standing:
    """A category of an engagement: its relaxation (if any) and whether it is earned."""

    category: str
    relaxation: CategoryRelaxation | None
    threshold: int
    spot_check_rate: int
    recent: list[Outcome] = field(default_factory=list)  # the last ``threshold``, newest first

    @property
    def earned(self) -> bool:
        return len(self.recent) >= self.threshold and all(item.first_time for item in self.recent)

    @property
    def approved_first_time(self) -> int:
        return sum(1 for item in self.recent if item.first_time)

    @property
    def active(self) -> bool:
        return self.relaxation is not None and self.relaxation.active


def first_outcomes(session: Session, engagement: Engagement, category: str) -> list[Outcome]:
    """Each post's first reviewed outcome in the category, newest first."""
    posts = {post.id: post for post in _posts_in_category(session, engagement, category.strip())}
    seen: dict[uuid.UUID, Outcome] = {}
    for entry in _outcome_entries(session, engagement):
        if entry.data.get("automatic"):
            continue
        try:
            post_id = uuid.UUID(str(entry.subject_id))
        except ValueError:
            continue
        if post_id not in posts or post_id in seen:
            continue
        seen[post_id] = Outcome(
            post_id=post_id,
            title=posts[post_id].title,
            first_time=entry.kind == "post_approved",
            kind=entry.kind,
            seq=entry.seq,
        )
    return sorted(seen.values(), key=lambda item: item.seq, reverse=True)


def standing(
    session: Session,
    engagement: Engagement,
    category: str,
    *,
    threshold: int | None = None,
) -> Standing:
    row = _get(session, engagement, category)
    if threshold is None:
        threshold = row.threshold if row else DEFAULT_THRESHOLD
    return Standing(
        category=category,
        relaxation=row,
        threshold=threshold,
        spot_check_rate=row.spot_check_rate if row else DEFAULT_SPOT_CHECK_RATE,
        recent=first_outcomes(session, engagement, category)[:threshold],
    )


def standings(session: Session, granted: EngagementAccess) -> list[Standing]:
    """Every category the engagement's posts use, or that has a relaxation, by name."""
    granted.require("engagement.read")
    engagement = granted.engagement
    names = set(_categories(session, engagement))
    names |= {row.category for row in _relaxations(session, engagement)}
    return [standing(session, engagement, name) for name in sorted(names, key=str.casefold)]


def stage_allows(engagement: Engagement) -> bool:
    return Stage(engagement.stage) in RELAXABLE_STAGES


# --- the brand's switch ----------------------------------------------------------


def _require_brand_lead(granted: EngagementAccess) -> None:
    granted.require("engagement.edit")
    if not granted.on_brand_side:
        raise Forbidden(N_("Only the brand relaxes its own review."))


def _audit(
    session: Session,
    granted: EngagementAccess | None,
    engagement: Engagement,
    kind: str,
    **data: Any,
) -> None:
    user = granted.actor.user if granted else None
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=user.id if user else None,
        actor=f"{user.name} <{user.email}>" if user else AUTO_APPROVER,
        kind=kind,
        subject_type="category_relaxation",
        subject_id=data.get("relaxation_id"),
        data=data,
    )


def _check_numbers(threshold: int, spot_check_rate: int) -> None:
    errors = []
    if not 1 <= threshold <= MAX_THRESHOLD:
        errors.append(
            FieldError(
                "threshold",
                N_("Between 1 and %(max)d submissions."),
                params={"max": MAX_THRESHOLD},
            )
        )
    if not 2 <= spot_check_rate <= MAX_SPOT_CHECK_RATE:
        errors.append(
            FieldError(
                "spot_check_rate",
                N_("One in 2 to one in %(max)d submissions."),
                params={"max": MAX_SPOT_CHECK_RATE},
            )
        )
    if errors:
        raise InvalidInput(field_errors=errors)


def enable(
    session: Session,
    granted: EngagementAccess,
    *,
    category: str,
    threshold: int,
    spot_check_rate: int,
) -> CategoryRelaxation:
    """Switch a category to auto-approval: only if earned, and only in development or maturity."""
    _require_brand_lead(granted)
    engagement = granted.engagement
    category = category.strip()
    if not category:
        raise InvalidInput(field_errors=[FieldError("category", N_("Choose a category."))])
    _check_numbers(threshold, spot_check_rate)
    if not stage_allows(engagement):
        raise Conflict(
            N_(
                "In setup every post needs the brand's approval: a category can be relaxed "
                "in development or maturity."
            )
        )
    found = standing(session, engagement, category, threshold=threshold)
    if not found.earned:
        raise Conflict(
            N_(
                "Not earned yet: %(count)d of the agency's last %(threshold)d submissions in "
                "this category were approved first time, and all %(threshold)d must be."
            ),
            params={"count": found.approved_first_time, "threshold": threshold},
        )
    now = utcnow()
    row = found.relaxation
    if row is None:
        row = CategoryRelaxation(
            brand_id=engagement.brand_id, engagement_id=engagement.id, category=category
        )
        session.add(row)
        session.flush()
    elif row.active:
        raise Conflict(N_("This category is relaxed already."))
    if not _update_if(
        session,
        row,
        active=False,
        values={
            "active": True,
            "threshold": threshold,
            "spot_check_rate": spot_check_rate,
            "enabled_at": now,
            "enabled_by_id": granted.actor.user.id,
            "revoked_at": None,
            "revoked_by_id": None,
            "updated_at": now,
        },
    ):
        raise Conflict(N_("Someone changed this category a moment ago: reload the page."))
    _audit(
        session,
        granted,
        engagement,
        "relaxation_enabled",
        relaxation_id=str(row.id),
        category=category,
        stage=str(engagement.stage),
        threshold=threshold,
        spot_check_rate=spot_check_rate,
        evidence=[str(item.post_id) for item in found.recent],
    )
    session.refresh(row)
    return row


def revoke(session: Session, granted: EngagementAccess, *, category: str) -> CategoryRelaxation:
    """End a relaxation at once: the next submission in the category goes to review."""
    _require_brand_lead(granted)
    engagement = granted.engagement
    row = _get(session, engagement, category.strip())
    if row is None or not row.active:
        raise NotFound(N_("This category is not relaxed."))
    now = utcnow()
    if not _update_if(
        session,
        row,
        active=True,
        values={
            "active": False,
            "revoked_at": now,
            "revoked_by_id": granted.actor.user.id,
            "updated_at": now,
        },
    ):
        raise Conflict(N_("Someone changed this category a moment ago: reload the page."))
    _audit(
        session,
        granted,
        engagement,
        "relaxation_revoked",
        relaxation_id=str(row.id),
        category=row.category,
    )
    session.refresh(row)
    return row


# --- on submit -------------------------------------------------------------------


def after_submit(
    session: Session, engagement: Engagement, post: Post, current: PostVersion
) -> bool:
    """Called by ``content.service.submit`` in its transaction: True if Brandkeep approved.

    Nothing happens outside an active relaxation of the post's category, outside
    development and maturity, for a post whose planned time has passed (a person
    must choose a new time), or for text the policy refuses as too long for a channel.
    Each submission under an active relaxation is numbered and its draw recorded,
    whether it is spot-checked or approved.
    """
    category = (post.content_category or "").strip()
    if not category or post.status != PostStatus.in_review or not stage_allows(engagement):
        return False
    row = _get(session, engagement, category)
    if row is None or not row.active:
        return False
    now = utcnow()
    if current.planned_at is not None and current.planned_at <= now:
        return False
    if (engagement.approval_policy or {}).get("enforce_channel_limits") and channels.over_limit(
        current.body, current.link, list(current.channels)
    ):
        return False  # the policy refuses approval of text that does not fit: a person decides
    number = _count_submission(session, row)
    if number is None:  # revoked a moment ago
        return False
    draw = _draw.get()(row.spot_check_rate)
    rule = {
        "relaxation_id": str(row.id),
        "category": category,
        "submission": number,
        "spot_check_rate": row.spot_check_rate,
        "draw": draw,
        "rule": "spot check when draw == 0, draw uniform in 0..rate-1",
    }
    if draw == 0:
        _audit(session, None, engagement, "relaxation_spot_check", post_id=str(post.id), **rule)
        return False
    step = post.review_step or 0
    decision = Decision(
        brand_id=post.brand_id,
        engagement_id=post.engagement_id,
        post_id=post.id,
        version_number=current.number,
        version_hash=current.content_hash,
        round=post.rounds,
        step=step,
        decision=DecisionKind.approve,
        comment="",
        decider_id=None,
        decider_name=AUTO_APPROVER,
        automatic=True,
        created_at=now,
    )
    session.add(decision)
    session.flush()
    outcome = {
        "version": current.number,
        "sha256": current.content_hash,
        "round": post.rounds,
        "step": step,
        "automatic": True,
    }
    _post_audit(
        session,
        engagement,
        post,
        "decision_approve",
        {"decision_id": str(decision.id), "comment": "", **outcome, **rule},
    )
    if not repository.transition(
        session,
        post.id,
        expected_version=post.version,
        expected_status=PostStatus.in_review,
        status=PostStatus.approved,
        review_step=None,
        approved_hash=current.content_hash,
        decided_at=now,
        updated_at=now,
    ):
        raise Conflict(N_("The post changed while it was being submitted: reload it."))
    _post_audit(session, engagement, post, "post_approved", outcome)
    return True


def _post_audit(
    session: Session, engagement: Engagement, post: Post, kind: str, data: dict[str, Any]
) -> None:
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=None,
        actor=AUTO_APPROVER,
        kind=kind,
        subject_type="post",
        subject_id=post.id,
        data=data,
    )


# --- queries ----------------------------------------------------------------------
# (CategoryRelaxation is read and written only here.)


def _get(session: Session, engagement: Engagement, category: str) -> CategoryRelaxation | None:
    return session.exec(
        select(CategoryRelaxation).where(
            CategoryRelaxation.brand_id == engagement.brand_id,
            CategoryRelaxation.engagement_id == engagement.id,
            CategoryRelaxation.category == category,
        )
    ).first()


def _relaxations(session: Session, engagement: Engagement) -> Sequence[CategoryRelaxation]:
    return session.exec(
        select(CategoryRelaxation).where(
            CategoryRelaxation.brand_id == engagement.brand_id,
            CategoryRelaxation.engagement_id == engagement.id,
        )
    ).all()


def _categories(session: Session, engagement: Engagement) -> Sequence[str]:
    return session.exec(
        select(Post.content_category)
        .where(
            Post.brand_id == engagement.brand_id,
            Post.engagement_id == engagement.id,
            Post.content_category != "",
        )
        .distinct()
    ).all()


def _posts_in_category(session: Session, engagement: Engagement, category: str) -> Sequence[Post]:
    return session.exec(
        select(Post).where(
            Post.brand_id == engagement.brand_id,
            Post.engagement_id == engagement.id,
            Post.content_category == category,
        )
    ).all()


def _outcome_entries(session: Session, engagement: Engagement) -> Sequence[AuditEntry]:
    return session.exec(
        select(AuditEntry)
        .where(
            AuditEntry.organization_id == engagement.brand_id,
            AuditEntry.chain_id == engagement.id,
            AuditEntry.subject_type == "post",
            col(AuditEntry.kind).in_(OUTCOME_KINDS),
        )
        .order_by(col(AuditEntry.seq))
    ).all()


def _update_if(
    session: Session, row: CategoryRelaxation, *, active: bool, values: dict[str, Any]
) -> bool:
    """Conditional update: only if the row is still at its version and in the expected state."""
    result = session.execute(
        sa.update(CategoryRelaxation)
        .where(
            col(CategoryRelaxation.id) == row.id,
            col(CategoryRelaxation.version) == row.version,
            col(CategoryRelaxation.active) == active,
        )
        .values(version=CategoryRelaxation.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _count_submission(session: Session, row: CategoryRelaxation) -> int | None:
    """Number this submission (the row lock queues concurrent submits); None if revoked."""
    result = session.execute(
        sa.update(CategoryRelaxation)
        .where(col(CategoryRelaxation.id) == row.id, col(CategoryRelaxation.active).is_(True))
        .values(submissions=CategoryRelaxation.submissions + 1)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    session.refresh(row)
    return row.submissions
