"""The post workflow under any sequence of steps (issue #5, item 5): a Hypothesis
rule-based state machine drafts, edits, submits, withdraws and decides (several
reviewers, a two-step policy, stale hashes, people not eligible) through the real
services and database, and after every step checks what the product promises:

- an approved post's approved hash is its current version's content hash, re-computed
  from the version's fields: exactly what would be published;
- every version keeps the hash of its own content (versions are immutable), and each
  round of review is about one version and ends in one outcome;
- the decision counts add up: nobody counts twice at a step, no step has more
  approvals than its quorum, and an open step follows completed ones;
- the engagement's audit chain verifies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import Session, col, select

from app.accounts.models import User
from app.audit import service as audit
from app.content import service
from app.content.models import Decision, DecisionKind, Post, PostStatus, PostVersion
from app.content.schemas import DecisionIn, PostCreate, PostUpdate
from app.db import Database
from app.engagements import service as engagements
from app.engagements.schemas import PolicyStepIn
from app.errors import BrandkeepError, Conflict, Forbidden
from app.tenancy.models import Role
from app.tenancy.service import actor_for
from tests.engagement_factories import Parties, accepted_engagement, make_parties, person
from tests.post_factories import set_policy

MARKETING_QUORUM = 2
BODIES = st.sampled_from(
    [
        "Spring lands on Friday.",
        "Spring lands on Friday!",
        "Our spring collection: 20 % off this weekend.",
        "",
    ]
)
STALE_HASH = "0" * 64


def _as(session: Session, user: User, post_id: uuid.UUID) -> service.PostAccess:
    return service.access(session, actor_for(session, user), post_id)


def _machine(database: Database, db: Session) -> type[RuleBasedStateMachine]:
    parties: Parties = make_parties(db)
    second = person(db, parties.brand, Role.reviewer, label="Second Reviewer")
    reviewers = [parties.reviewer, second]
    deciders = [parties.reviewer, second, parties.lead, parties.creator]

    class PostWorkflow(RuleBasedStateMachine):
        posts = Bundle("posts")

        def __init__(self) -> None:
            super().__init__()
            # A new engagement per run: each run's chain is short, and runs do not mix.
            engagement = accepted_engagement(db, parties)
            set_policy(
                db,
                parties.lead,
                engagement.id,
                PolicyStepIn(name="Marketing", roles=["reviewer"], quorum=MARKETING_QUORUM),
                PolicyStepIn(name="Legal", roles=["lead"], quorum="any"),
            )
            self.engagement_id = engagement.id
            self.post_ids: list[uuid.UUID] = []

        def _run(self, user: User, post_id: uuid.UUID, action: Callable[..., Any]) -> Any:
            """One request: its own transaction, committed on success, rolled back on error."""
            with database.session_scope() as session:
                return action(session, _as(session, user, post_id))

        def _attempt(self, user: User, post_id: uuid.UUID, action: Callable[..., Any]) -> Any:
            try:
                return self._run(user, post_id, action)
            except BrandkeepError as exc:
                return exc

        def _post(self, post_id: uuid.UUID) -> Any:
            """The post as stored now: a copy, so "before" stays what it was."""
            db.expire_all()
            post = db.get(Post, post_id)
            assert post is not None
            return SimpleNamespace(**post.model_dump(warnings=False))

        @precondition(lambda self: len(self.post_ids) < 3)
        @rule(target=posts, body=BODIES)
        def draft(self, body: str) -> uuid.UUID:
            with database.session_scope() as session:
                granted = engagements.access(
                    session, actor_for(session, parties.creator), self.engagement_id
                )
                post = service.create_post(
                    session,
                    granted,
                    PostCreate(title="Teaser", body=body, channels=["instagram"]),
                )
                post_id = post.id
            self.post_ids.append(post_id)
            return post_id

        @rule(post_id=posts, body=BODIES)
        def edit(self, post_id: uuid.UUID, body: str) -> None:
            before = self._post(post_id)
            result = self._attempt(
                parties.creator,
                post_id,
                lambda s, found: service.edit_post(
                    s, found, expected_version=found.post.version, data=PostUpdate(body=body)
                ),
            )
            after = self._post(post_id)
            if before.status in (PostStatus.rejected, PostStatus.withdrawn):
                assert isinstance(result, Conflict)
                assert after.current_version == before.current_version
            else:
                assert not isinstance(result, BrandkeepError), result
                assert after.current_version == before.current_version + 1
                if before.status == PostStatus.approved:
                    assert after.status == PostStatus.draft and after.voided_reason

        @rule(post_id=posts)
        def submit(self, post_id: uuid.UUID) -> None:
            before = self._post(post_id)
            result = self._attempt(parties.creator, post_id, service.submit)
            after = self._post(post_id)
            if before.status in (PostStatus.draft, PostStatus.changes_requested):
                assert not isinstance(result, BrandkeepError), result
                assert after.status == PostStatus.in_review and after.review_step == 0
                assert after.rounds == before.rounds + 1
            else:
                assert isinstance(result, Conflict)
                assert after.status == before.status

        @rule(post_id=posts)
        def withdraw(self, post_id: uuid.UUID) -> None:
            before = self._post(post_id)
            result = self._attempt(parties.creator, post_id, service.withdraw)
            after = self._post(post_id)
            if before.status in (PostStatus.rejected, PostStatus.withdrawn):
                assert isinstance(result, Conflict)
            else:
                assert after.status == PostStatus.withdrawn

        @rule(
            post_id=posts,
            who=st.sampled_from(range(len(deciders))),
            kind=st.sampled_from(list(DecisionKind)),
            stale=st.booleans(),
        )
        def decide(self, post_id: uuid.UUID, who: int, kind: DecisionKind, stale: bool) -> None:
            before = self._post(post_id)
            decider = deciders[who]
            comment = "" if kind == DecisionKind.approve else "Say it plainly."

            def act(session: Session, found: service.PostAccess) -> Decision:
                current = service.current_version(session, found.post)
                data = DecisionIn(
                    decision=kind,
                    version_hash=STALE_HASH if stale else current.content_hash,
                    comment=comment,
                )
                return service.decide(session, found, data)

            result = self._attempt(decider, post_id, act)
            after = self._post(post_id)
            if not isinstance(result, Decision):
                # Refused: nothing about the post changed.
                assert (after.status, after.review_step, after.version) == (
                    before.status,
                    before.review_step,
                    before.version,
                )
                if decider is parties.creator:
                    assert isinstance(result, Forbidden)
                elif before.status == PostStatus.in_review and stale:
                    assert isinstance(result, Conflict)
                return
            assert before.status == PostStatus.in_review and not stale
            assert decider is not parties.creator
            step = before.review_step
            assert decider in (reviewers if step == 0 else [parties.lead])
            if kind == DecisionKind.request_changes:
                assert after.status == PostStatus.changes_requested
            elif kind == DecisionKind.reject:
                assert after.status == PostStatus.rejected
            elif step == 1:
                assert after.status == PostStatus.approved

        @rule(post_id=posts)
        def everyone_approves_the_open_step(self, post_id: uuid.UUID) -> None:
            """Each brand decider in turn, as a busy queue would: steps open one after another."""
            for decider in (parties.reviewer, second, parties.lead):
                self.decide(post_id, deciders.index(decider), DecisionKind.approve, stale=False)

        # --- invariants -----------------------------------------------------------

        @invariant()
        def approved_hash_is_what_would_be_published(self) -> None:
            for post_id in self.post_ids:
                post = self._post(post_id)
                current = _version(post, post.current_version)
                if post.status == PostStatus.approved:
                    assert post.approved_hash == current.content_hash == service.hash_of(current)
                else:
                    # Only a withdrawn post keeps the hash it was approved with, as history.
                    assert post.approved_hash is None or post.status == PostStatus.withdrawn
                assert (post.status == PostStatus.in_review) == (post.review_step is not None)

        @invariant()
        def each_version_keeps_its_hash_and_each_round_one_outcome(self) -> None:
            for post_id in self.post_ids:
                post = self._post(post_id)
                versions = db.exec(select(PostVersion).where(PostVersion.post_id == post_id)).all()
                assert sorted(v.number for v in versions) == list(
                    range(1, post.current_version + 1)
                )
                for version in versions:
                    assert version.content_hash == service.hash_of(version)
                by_hash = {v.content_hash: v.number for v in versions}
                for round_number, decisions in _rounds(post_id).items():
                    live = [d for d in decisions if d.voided_at is None]
                    assert len({d.version_number for d in live}) <= 1, round_number
                    for d in decisions:
                        assert by_hash.get(d.version_hash) is not None
                    endings = [d for d in live if d.decision != DecisionKind.approve]
                    assert len(endings) <= 1, "a round ends once"
                    if endings and round_number == post.rounds:
                        assert post.status in (
                            PostStatus.changes_requested,
                            PostStatus.rejected,
                            PostStatus.withdrawn,
                            PostStatus.draft,
                        )

        @invariant()
        def decision_counts_add_up(self) -> None:
            needed = {0: MARKETING_QUORUM, 1: 1}
            for post_id in self.post_ids:
                post = self._post(post_id)
                for decisions in _rounds(post_id).values():
                    seats: dict[int, list[uuid.UUID | None]] = {}
                    for d in decisions:
                        if d.voided_at is None:
                            seats.setdefault(d.step, []).append(d.decider_id)
                    for step, deciders_at_step in seats.items():
                        assert len(deciders_at_step) == len(set(deciders_at_step))
                        assert len(deciders_at_step) <= needed[step]
                if post.status == PostStatus.in_review and post.review_step == 1:
                    current_round = _rounds(post_id).get(post.rounds, [])
                    approvals = [
                        d
                        for d in current_round
                        if d.step == 0 and d.voided_at is None and d.decision == "approve"
                    ]
                    assert len(approvals) == MARKETING_QUORUM
                if post.status == PostStatus.approved:
                    current_round = _rounds(post_id).get(post.rounds, [])
                    for step, count in needed.items():
                        approvals = [
                            d
                            for d in current_round
                            if d.step == step
                            and d.voided_at is None
                            and d.decision == DecisionKind.approve
                            and d.version_hash == post.approved_hash
                        ]
                        assert len(approvals) == count

        @invariant()
        def audit_chain_verifies(self) -> None:
            db.expire_all()
            assert audit.verify_chain(db, self.engagement_id).ok

    def _version(post: Any, number: int) -> PostVersion:
        return db.exec(
            select(PostVersion).where(PostVersion.post_id == post.id, PostVersion.number == number)
        ).one()

    def _rounds(post_id: uuid.UUID) -> dict[int, list[Decision]]:
        rounds: dict[int, list[Decision]] = {}
        for d in db.exec(
            select(Decision).where(Decision.post_id == post_id).order_by(col(Decision.created_at))
        ).all():
            rounds.setdefault(d.round, []).append(d)
        return rounds

    return PostWorkflow


def test_the_post_workflow_keeps_its_promises_under_any_sequence(
    database: Database, db: Session
) -> None:
    run_state_machine_as_test(
        _machine(database, db),
        settings=settings(
            max_examples=30,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
