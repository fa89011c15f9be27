"""Earned relaxation (issue #5, item 4): a content category Brandkeep approves for the brand,
only after the agency's last N submissions in it were approved first time, with spot
checks, on the audit record like any decision, and revoked at once by the brand.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.content import relaxation
from app.content import service as content
from app.content.models import CategoryRelaxation, Decision
from app.engagements import service as engagements
from app.engagements.models import Engagement
from app.errors import Conflict, Forbidden
from tests.conftest import csrf_of
from tests.engagement_factories import Parties, accepted_engagement, grant, make_parties
from tests.factories import create_token, sign_in
from tests.post_factories import decide, draft, read, submit

CATEGORY = "product"


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    reviewer: str  # API tokens
    creator: str


def to_stage(db: Session, parties: Parties, engagement_id: uuid.UUID, stage: str) -> None:
    engagements.change_stage(
        db, grant(db, parties.lead, engagement_id), to=stage, reason="Agreed in the review call"
    )
    db.commit()


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db, signs_in=True)
    engagement = accepted_engagement(db, parties)
    to_stage(db, parties, engagement.id, "development")
    return World(
        parties=parties,
        engagement=engagement,
        reviewer=create_token(db, parties.reviewer, parties.brand),
        creator=create_token(db, parties.creator, parties.agency),
    )


def submitted(client: TestClient, world: World, category: str = CATEGORY) -> dict[str, Any]:
    post = draft(client, world.creator, world.engagement.id, content_category=category)
    return submit(client, world.creator, post["id"])


def reviewed(client: TestClient, world: World, *, first_time: bool = True) -> dict[str, Any]:
    """A submission in the category, approved first time or only after changes."""
    post = submitted(client, world)
    if not first_time:
        asked = decide(client, world.reviewer, post, "request_changes", "Shorter, please.")
        assert asked.status_code in (200, 201), asked.text
        post = read(client, world.creator, post["id"])
        edited = client.patch(
            f"/api/v1/posts/{post['id']}",
            json={"body": "Shorter."},
            headers={
                "Authorization": f"Bearer {world.creator}",
                "If-Match": f'"{post["version"]}"',
            },
        )
        assert edited.status_code == 200, edited.text
        post = submit(client, world.creator, post["id"])
    approved = decide(client, world.reviewer, post)
    assert approved.status_code in (200, 201), approved.text
    return read(client, world.creator, post["id"])


def enable(db: Session, world: World, *, threshold: int = 3, rate: int = 2) -> CategoryRelaxation:
    row = relaxation.enable(
        db,
        grant(db, world.parties.lead, world.engagement.id),
        category=CATEGORY,
        threshold=threshold,
        spot_check_rate=rate,
    )
    db.commit()
    return row


def chain(db: Session, world: World) -> list[AuditEntry]:
    db.expire_all()
    return list(
        db.exec(
            select(AuditEntry)
            .where(AuditEntry.chain_id == world.engagement.id)
            .order_by(col(AuditEntry.seq))
        ).all()
    )


class TestEarning:
    def test_it_is_earned_only_when_the_last_n_were_all_approved_first_time(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        reviewed(client, world)
        reviewed(client, world, first_time=False)
        reviewed(client, world)
        with pytest.raises(Conflict, match="Not earned yet"):
            enable(db, world)
        db.rollback()
        found = relaxation.standing(db, world.engagement, CATEGORY, threshold=3)
        assert not found.earned and found.approved_first_time == 2
        reviewed(client, world)
        reviewed(client, world)  # now the last three were approved first time
        row = enable(db, world)
        assert row.active and (row.threshold, row.spot_check_rate) == (3, 2)
        enabled = [e for e in chain(db, world) if e.kind == "relaxation_enabled"]
        assert len(enabled) == 1
        assert enabled[0].data["category"] == CATEGORY
        assert enabled[0].data["stage"] == "development"
        assert len(enabled[0].data["evidence"]) == 3
        assert enabled[0].actor_id == world.parties.lead.id

    def test_too_few_submissions_earn_nothing(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        reviewed(client, world)
        reviewed(client, world)
        with pytest.raises(Conflict, match="Not earned yet"):
            enable(db, world)

    def test_only_the_brands_owners_and_leads_switch_it_on(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        for _ in range(3):
            reviewed(client, world)
        for user in (world.parties.reviewer, world.parties.manager):
            with pytest.raises(Forbidden):
                relaxation.enable(
                    db,
                    grant(db, user, world.engagement.id),
                    category=CATEGORY,
                    threshold=3,
                    spot_check_rate=5,
                )
            db.rollback()

    def test_never_in_setup(self, db: Session, world: World, client: TestClient) -> None:
        for _ in range(3):
            reviewed(client, world)
        to_stage(db, world.parties, world.engagement.id, "setup")
        with pytest.raises(Conflict, match="In setup"):
            enable(db, world)


class TestOnSubmit:
    def test_submissions_are_approved_by_brandkeep_except_recorded_spot_checks(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        for _ in range(3):
            reviewed(client, world)
        enable(db, world, rate=2)
        outcomes = {}
        for _ in range(16):
            post = submitted(client, world)
            outcomes[post["id"]] = read(client, world.creator, post["id"])
        entries = chain(db, world)
        draws = {e.data["post_id"]: e for e in entries if e.kind == "relaxation_spot_check"} | {
            e.subject_id: e
            for e in entries
            if e.kind == "decision_approve" and e.data.get("automatic")
        }
        assert set(draws) == set(outcomes)
        assert sorted(e.data["submission"] for e in draws.values()) == list(range(1, 17))
        statuses = set()
        for post_id, post in outcomes.items():
            entry = draws[post_id]
            assert entry.data["spot_check_rate"] == 2
            statuses.add(post["status"])
            if entry.data["draw"] == 0:  # the rule, as recorded, sent it to review
                assert entry.kind == "relaxation_spot_check"
                assert post["status"] == "in_review"
                continue
            assert post["status"] == "approved"
            assert post["approved_hash"] == post["current"]["content_hash"]
            assert entry.data["sha256"] == post["current"]["content_hash"]
            assert entry.actor == relaxation.AUTO_APPROVER and entry.actor_id is None
            [made] = db.exec(select(Decision).where(Decision.post_id == uuid.UUID(post_id))).all()
            assert made.automatic and made.decider_name == relaxation.AUTO_APPROVER
            assert made.version_hash == post["current"]["content_hash"]
        assert statuses == {"approved", "in_review"}  # 2 × 2⁻¹⁶ to fail by chance
        assert audit.verify_chain(db, world.engagement.id).ok

    def test_a_caller_may_supply_the_draw_for_one_block_only(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        """The demo replays a seeded story this way; everyone else keeps the secure draw."""
        for _ in range(3):
            reviewed(client, world)
        enable(db, world, rate=5)
        outcomes = []
        for draw in (lambda rate: 0, lambda rate: rate - 1):
            post = draft(client, world.creator, world.engagement.id, content_category=CATEGORY)
            creator = grant(db, world.parties.creator, world.engagement.id).actor
            with relaxation.drawing(draw):
                found = content.access(db, creator, uuid.UUID(post["id"]))
                outcomes.append(str(content.submit(db, found).status))
            db.commit()
        assert outcomes == ["in_review", "approved"]
        recorded = [e.data["draw"] for e in chain(db, world) if "draw" in e.data]
        assert recorded == [0, 4]
        assert relaxation._draw.get() is secrets.randbelow
        assert audit.verify_chain(db, world.engagement.id).ok

    def test_revoking_stops_auto_approval_at_once(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        for _ in range(3):
            reviewed(client, world)
        enable(db, world, rate=100)
        relaxation.revoke(db, grant(db, world.parties.lead, world.engagement.id), category=CATEGORY)
        db.commit()
        for _ in range(3):
            assert submitted(client, world)["status"] == "in_review"
        kinds = [e.kind for e in chain(db, world)]
        assert "relaxation_revoked" in kinds
        assert not any(e.data.get("automatic") for e in chain(db, world))

    def test_other_categories_and_setup_still_go_to_review(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        for _ in range(3):
            reviewed(client, world)
        enable(db, world, rate=100)
        assert submitted(client, world, category="events")["status"] == "in_review"
        to_stage(db, world.parties, world.engagement.id, "setup")
        assert submitted(client, world)["status"] == "in_review"

    def test_auto_approvals_are_no_evidence_for_earning_it_again(
        self, db: Session, world: World, client: TestClient
    ) -> None:
        for _ in range(3):
            reviewed(client, world)
        enable(db, world, threshold=3, rate=100)
        auto = [submitted(client, world) for _ in range(4)]
        approved_ids = {
            p["id"] for p in auto if read(client, world.creator, p["id"])["status"] == "approved"
        }
        found = relaxation.standing(db, world.engagement, CATEGORY)
        assert not approved_ids & {str(item.post_id) for item in found.recent}


class TestThePage:
    def test_the_lead_sees_the_record_switches_it_on_and_revokes_it(
        self,
        db: Session,
        world: World,
        client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        for _ in range(3):
            reviewed(client, world)
        csrf = sign_in(client, world.parties.lead.email)
        url = f"/engagements/{world.engagement.id}/relaxations"
        page = client.get(url)
        assert page.status_code == 200
        assert CATEGORY in page.text and "Every post reviewed" in page.text
        assert "3 of the agency's last 5" in page.text  # the default threshold
        refused = client.post(
            url,
            data={"category": CATEGORY, "threshold": 5, "spot_check_rate": 4, "csrf_token": csrf},
        )
        assert refused.status_code == 409
        assert "Not earned yet" in refused.text
        switched = client.post(
            url,
            data={"category": CATEGORY, "threshold": 3, "spot_check_rate": 4, "csrf_token": csrf},
        )
        assert switched.status_code == 303, switched.text
        assert "Relaxed since" in client.get(url).text
        # The agency sees what it earned, and has no switch.
        agency = make_client()
        sign_in(agency, world.parties.manager.email)
        seen = agency.get(url)
        assert seen.status_code == 200 and "Relaxed since" in seen.text
        assert "Revoke now" not in seen.text
        assert (
            agency.post(
                f"{url}/revoke", data={"category": CATEGORY, "csrf_token": csrf_of(seen.text)}
            ).status_code
            == 403
        )
        revoked = client.post(f"{url}/revoke", data={"category": CATEGORY, "csrf_token": csrf})
        assert revoked.status_code == 303
        assert "Revoked" in client.get(url).text
        db.expire_all()
        row = db.exec(
            select(CategoryRelaxation).where(
                CategoryRelaxation.engagement_id == world.engagement.id
            )
        ).one()
        assert not row.active and row.revoked_by_id == world.parties.lead.id
