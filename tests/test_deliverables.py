"""Deliverables: planned from the scope, delivered with evidence, accepted or returned."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.db import Database, utcnow
from app.deliverables import measures, planning, tasks
from app.deliverables.models import Deliverable, DeliverableStatus
from app.engagements import service as engagements
from app.engagements.models import Engagement, ScopeLine, Status
from app.engagements.schemas import ScopeLineIn
from tests.engagement_factories import Parties, accepted_engagement, grant, make_parties
from tests.factories import bearer, create_token, sign_in
from tests.post_factories import draft

API = "/api/v1"


# --- arranging -------------------------------------------------------------------


def add_line(db: Session, parties: Parties, engagement_id: uuid.UUID, **fields: Any) -> ScopeLine:
    values: dict[str, Any] = {"kind": "posts", "quantity": 12, "cadence": "monthly", "due_day": 0}
    values.update(fields)
    line = engagements.add_scope_line(
        db, grant(db, parties.lead, engagement_id), ScopeLineIn(**values)
    )
    db.commit()
    return line


def rows_of(db: Session, engagement_id: uuid.UUID) -> list[Deliverable]:
    db.expire_all()
    return list(
        db.exec(
            select(Deliverable)
            .where(Deliverable.engagement_id == engagement_id)
            .order_by(col(Deliverable.period_start))
        ).all()
    )


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db, signs_in=True)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    today = utcnow().date()
    return accepted_engagement(
        db, parties, start_date=today - timedelta(days=70), end_date=today + timedelta(days=300)
    )


@pytest.fixture
def tokens(db: Session, parties: Parties) -> dict[str, str]:
    return {
        "manager": create_token(db, parties.manager, parties.agency),
        "creator": create_token(db, parties.creator, parties.agency),
        "reviewer": create_token(db, parties.reviewer, parties.brand),
        "lead": create_token(db, parties.lead, parties.brand),
    }


def deliver(client: TestClient, token: str, deliverable_id: uuid.UUID | str, **body: Any) -> Any:
    body = body or {"links": [{"url": "https://drive.example/march-posts", "label": "Posts"}]}
    return client.post(
        f"{API}/deliverables/{deliverable_id}/deliver", json=body, headers=bearer(token)
    )


def past_due(db: Session, deliverable_id: uuid.UUID, days: int = 3) -> None:
    """Move a deliverable's due moment into the past, as time passing would."""
    row = db.get(Deliverable, deliverable_id)
    assert row is not None
    row.due_at = utcnow() - timedelta(days=days)
    row.due_on = row.due_at.date()
    db.add(row)
    db.commit()


# --- planning: periods and due dates (pure) --------------------------------------------


def _engagement(start: date, end: date | None = None) -> Engagement:
    return Engagement(
        brand_id=uuid.uuid4(),
        agency_id=uuid.uuid4(),
        name="x",
        start_date=start,
        end_date=end,
        currency="EUR",
        status=Status.active,
    )


def _line(**fields: Any) -> ScopeLine:
    values: dict[str, Any] = {
        "brand_id": uuid.uuid4(),
        "engagement_id": uuid.uuid4(),
        "kind": "posts",
        "quantity": 12,
        "cadence": "monthly",
        "due_day": 0,
    }
    values.update(fields)
    return ScopeLine(**values)


class TestPlanningRules:
    def test_monthly_periods_run_from_the_start_to_the_month_after_today(self) -> None:
        engagement = _engagement(date(2026, 1, 20), date(2026, 12, 31))
        periods = planning.periods_to_plan(_line(), engagement, date(2026, 3, 15))
        assert [(p.start, p.end) for p in periods] == [
            (date(2026, 1, 1), date(2026, 1, 31)),
            (date(2026, 2, 1), date(2026, 2, 28)),
            (date(2026, 3, 1), date(2026, 3, 31)),
            (date(2026, 4, 1), date(2026, 4, 30)),
        ]

    def test_planning_stops_at_the_engagement_s_end(self) -> None:
        engagement = _engagement(date(2026, 1, 5), date(2026, 2, 10))
        periods = planning.periods_to_plan(_line(), engagement, date(2026, 6, 1))
        assert [p.start for p in periods] == [date(2026, 1, 1), date(2026, 2, 1)]

    def test_due_day_zero_is_the_period_s_last_day_and_a_number_is_that_day(self) -> None:
        february = planning.Period(date(2026, 2, 1), date(2026, 2, 28))
        assert planning.due_on("monthly", 0, february) == date(2026, 2, 28)
        assert planning.due_on("monthly", 5, february) == date(2026, 2, 5)

    def test_weeks_run_monday_to_sunday_and_quarters_follow_the_calendar(self) -> None:
        engagement = _engagement(date(2026, 3, 4))  # a Wednesday
        week = planning.period_of("weekly", date(2026, 3, 4), engagement)
        assert (week.start, week.end) == (date(2026, 3, 2), date(2026, 3, 8))
        assert planning.due_on("weekly", 12, week) == date(2026, 3, 8)  # past Sunday: Sunday
        quarter = planning.period_of("quarterly", date(2026, 5, 17), engagement)
        assert (quarter.start, quarter.end) == (date(2026, 4, 1), date(2026, 6, 30))

    def test_a_one_off_line_is_owed_once_over_the_engagement(self) -> None:
        engagement = _engagement(date(2026, 1, 10), date(2026, 3, 31))
        periods = planning.periods_to_plan(_line(cadence="once"), engagement, date(2026, 2, 1))
        assert [(p.start, p.end) for p in periods] == [(date(2026, 1, 10), date(2026, 3, 31))]

    def test_a_deliverable_is_due_at_the_end_of_its_day_in_the_brand_s_time_zone(self) -> None:
        instant = planning.due_instant(date(2026, 3, 31), "Europe/Madrid")
        assert instant == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # midnight CEST

    def test_lateness_is_computed_from_the_first_delivery_never_typed(self) -> None:
        due = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
        row = Deliverable(
            brand_id=uuid.uuid4(),
            engagement_id=uuid.uuid4(),
            kind="posts",
            title="12 × posts",
            period_start=date(2026, 3, 1),
            period_end=date(2026, 3, 31),
            due_on=date(2026, 3, 31),
            due_at=due,
        )
        assert not planning.is_late(row, due - timedelta(minutes=1))
        assert planning.is_late(row, due + timedelta(minutes=1))
        row.first_delivered_at = due - timedelta(hours=1)
        assert not planning.is_late(row, due + timedelta(days=30))
        row.first_delivered_at = due + timedelta(seconds=1)
        assert planning.is_late(row, due + timedelta(seconds=2))


# --- planning against the database ---------------------------------------------------


class TestPlanningFromTheScope:
    def test_adding_a_scope_line_plans_every_period_up_to_the_next_one(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        line = add_line(db, parties, engagement.id, due_day=5)
        rows = rows_of(db, engagement.id)
        today = utcnow().date()
        expected = planning.periods_to_plan(line, engagement, today)
        assert [row.period_start for row in rows] == [period.start for period in expected]
        assert rows[-1].period_start > today  # the next period is already planned
        assert all(row.due_on.day == 5 and row.quantity == 12 for row in rows)
        assert all(row.status == DeliverableStatus.planned and not row.ad_hoc for row in rows)

    def test_planning_again_writes_nothing_twice(
        self, db: Session, database: Database, parties: Parties, engagement: Engagement
    ) -> None:
        add_line(db, parties, engagement.id)
        before = len(rows_of(db, engagement.id))
        assert tasks.plan_every_engagement(database) == 0
        with database.session_scope() as session:
            fresh = session.get(Engagement, engagement.id)
            assert fresh is not None
            assert planning.plan(session, fresh) == 0
        assert len(rows_of(db, engagement.id)) == before

    def test_racing_planners_both_succeed_and_write_each_period_once(
        self, db: Session, database: Database, parties: Parties, engagement: Engagement,
        caplog: pytest.LogCaptureFixture,
    ) -> None:  # fmt: skip
        line = add_line(db, parties, engagement.id)
        # Forget the plan, as if the line were new, then let two planners race for it.
        db.execute(sa.delete(Deliverable).where(col(Deliverable.scope_line_id) == line.id))
        db.commit()
        threads = [
            threading.Thread(target=tasks.plan_every_engagement, args=(database,)) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not [record for record in caplog.records if record.levelname == "ERROR"]
        rows = rows_of(db, engagement.id)
        expected = planning.periods_to_plan(line, engagement, utcnow().date())
        assert sorted(row.period_start for row in rows) == [period.start for period in expected]

    def test_changing_a_line_replans_the_future_and_keeps_what_was_delivered(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        line = add_line(db, parties, engagement.id)
        rows = rows_of(db, engagement.id)
        past = rows[0]
        assert deliver(client, tokens["manager"], past.id).status_code == 200
        granted = grant(db, parties.lead, engagement.id)
        engagements.update_scope_line(
            db, granted, line.id, ScopeLineIn(kind="posts", quantity=16, cadence="monthly")
        )
        db.commit()
        after = {row.period_start: row for row in rows_of(db, engagement.id)}
        assert after[past.period_start].quantity == 12  # delivered on the old terms
        future = [row for row in after.values() if row.due_at > utcnow()]
        assert future and all(row.quantity == 16 for row in future)

    def test_removing_a_line_drops_its_future_and_keeps_what_was_owed(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        line = add_line(db, parties, engagement.id)
        owed = [row.id for row in rows_of(db, engagement.id) if row.due_at <= utcnow()]
        assert owed
        engagements.remove_scope_line(db, grant(db, parties.lead, engagement.id), line.id)
        db.commit()
        rows = rows_of(db, engagement.id)
        assert [row.id for row in rows] == owed
        assert all(row.scope_line_id is None for row in rows)

    def test_planning_is_on_the_audit_record(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        add_line(db, parties, engagement.id)
        kinds = db.exec(
            select(AuditEntry.kind).where(AuditEntry.engagement_id == engagement.id)
        ).all()
        assert kinds.count("deliverable_planned") == len(rows_of(db, engagement.id))
        assert audit.verify_chain(db, engagement.id).ok


# --- delivering, accepting, returning (API) ---------------------------------------------


class TestDeliverAcceptReturn:
    def test_the_agency_delivers_with_links_and_posts_and_the_brand_accepts(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        post = draft(client, tokens["creator"], engagement.id, title="Trail teaser")
        response = deliver(
            client,
            tokens["manager"],
            target.id,
            links=[{"url": "https://drive.example/report.pdf", "label": "Report"}],
            post_ids=[post["id"]],
            note="All twelve, scheduled.",
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "delivered" and body["rounds"] == 1
        assert body["late"] is False
        assert {item["type"] for item in body["evidence"]} == {"link", "post"}
        assert response.headers["ETag"] == f'"{body["version"]}"'
        accepted = client.post(
            f"{API}/deliverables/{target.id}/accept",
            headers={**bearer(tokens["reviewer"]), "If-Match": response.headers["ETag"]},
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        assert accepted.json()["decided_by_name"] == parties.reviewer.name

    def test_returned_with_a_reason_then_delivered_again(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        deliver(client, tokens["manager"], target.id)
        no_reason = client.post(
            f"{API}/deliverables/{target.id}/return", json={"reason": ""},
            headers=bearer(tokens["reviewer"]),
        )  # fmt: skip
        assert no_reason.status_code == 422
        assert no_reason.json()["errors"][0]["field"] == "reason"
        returned = client.post(
            f"{API}/deliverables/{target.id}/return",
            json={"reason": "Two posts miss the coupon code."},
            headers=bearer(tokens["reviewer"]),
        )
        assert returned.status_code == 200
        assert returned.json()["return_reason"] == "Two posts miss the coupon code."
        again = deliver(client, tokens["manager"], target.id)
        assert again.json()["status"] == "delivered" and again.json()["rounds"] == 2

    def test_delivering_needs_evidence_from_this_engagement(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        empty = client.post(
            f"{API}/deliverables/{target.id}/deliver", json={}, headers=bearer(tokens["manager"])
        )
        assert empty.status_code == 422
        assert empty.json()["errors"][0]["field"] == "links"
        other = accepted_engagement(db, parties)
        foreign_post = draft(client, tokens["creator"], other.id)
        wrong = deliver(client, tokens["manager"], target.id, post_ids=[foreign_post["id"]])
        assert wrong.status_code == 422
        assert wrong.json()["errors"][0]["field"] == "post_ids.0"
        not_a_link = deliver(client, tokens["manager"], target.id, links=[{"url": "javascript:x"}])
        assert not_a_link.status_code == 422
        assert rows_of(db, engagement.id)[-1].status == DeliverableStatus.planned

    def test_the_wrong_side_gets_403_with_the_reason(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        by_brand = deliver(client, tokens["lead"], target.id)
        assert by_brand.status_code == 403
        assert "agency" in by_brand.json()["detail"]
        by_creator = deliver(client, tokens["creator"], target.id)
        assert by_creator.status_code == 403
        deliver(client, tokens["manager"], target.id)
        by_agency = client.post(
            f"{API}/deliverables/{target.id}/accept", headers=bearer(tokens["manager"])
        )
        assert by_agency.status_code == 403
        assert "brand" in by_agency.json()["detail"]

    def test_a_transition_from_the_wrong_state_is_409(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        planned = client.post(
            f"{API}/deliverables/{target.id}/accept", headers=bearer(tokens["reviewer"])
        )
        assert planned.status_code == 409
        deliver(client, tokens["manager"], target.id)
        assert deliver(client, tokens["manager"], target.id).status_code == 409

    def test_a_stale_if_match_is_412_and_nothing_changes(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        stale = f'"{target.version}"'
        deliver(client, tokens["manager"], target.id)
        response = client.post(
            f"{API}/deliverables/{target.id}/accept",
            headers={**bearer(tokens["reviewer"]), "If-Match": stale},
        )
        assert response.status_code == 412
        assert rows_of(db, engagement.id)[-1].status == DeliverableStatus.delivered

    def test_of_two_racing_decisions_one_wins(
        self, app: Any, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str], make_client: Any,
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        first = make_client()
        deliver(first, tokens["manager"], target.id)
        version = rows_of(db, engagement.id)[-1].version
        answers: list[int] = []
        barrier = threading.Barrier(2)

        def decide(path: str, body: dict[str, str] | None) -> None:
            client = make_client()
            barrier.wait()
            answers.append(
                client.post(
                    f"{API}/deliverables/{target.id}/{path}",
                    json=body,
                    headers={**bearer(tokens["reviewer"]), "If-Match": f'"{version}"'},
                ).status_code
            )

        threads = [
            threading.Thread(target=decide, args=("accept", None)),
            threading.Thread(target=decide, args=("return", {"reason": "Not the brief."})),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers)[0] == 200
        assert sorted(answers)[1] in (409, 412)
        assert rows_of(db, engagement.id)[-1].version == version + 1

    def test_late_is_computed_when_delivered_after_the_due_moment(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        past_due(db, target.id)
        listed = client.get(
            f"{API}/engagements/{engagement.id}/deliverables", headers=bearer(tokens["reviewer"])
        ).json()
        assert next(row for row in listed if row["id"] == str(target.id))["late"] is True
        assert deliver(client, tokens["manager"], target.id).json()["late"] is True
        sent = client.post(
            f"{API}/deliverables/{target.id}/deliver",
            json={"links": [{"url": "https://x.example"}], "late": False},
            headers=bearer(tokens["manager"]),
        )
        assert sent.status_code == 409  # already delivered; "late" is not an input anyway

    def test_every_transition_is_on_the_audit_chain_with_who(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        deliver(client, tokens["manager"], target.id)
        client.post(
            f"{API}/deliverables/{target.id}/return", json={"reason": "Missing captions"},
            headers=bearer(tokens["reviewer"]),
        )  # fmt: skip
        deliver(client, tokens["manager"], target.id)
        client.post(f"{API}/deliverables/{target.id}/accept", headers=bearer(tokens["reviewer"]))
        entries = db.exec(
            select(AuditEntry)
            .where(
                AuditEntry.engagement_id == engagement.id, AuditEntry.subject_id == str(target.id)
            )
            .order_by(col(AuditEntry.seq))
        ).all()
        assert [(e.kind, e.actor_id) for e in entries] == [
            ("deliverable_planned", parties.lead.id),
            ("deliverable_delivered", parties.manager.id),
            ("deliverable_returned", parties.reviewer.id),
            ("deliverable_delivered", parties.manager.id),
            ("deliverable_accepted", parties.reviewer.id),
        ]
        assert entries[2].data["reason"] == "Missing captions"
        assert audit.verify_chain(db, engagement.id).ok

    def test_an_ad_hoc_deliverable_is_created_once_per_idempotency_key(
        self, client: TestClient, db: Session, engagement: Engagement, tokens: dict[str, str]
    ) -> None:
        body = {
            "title": "Crisis Q&A sheet",
            "due_on": (utcnow().date() + timedelta(days=3)).isoformat(),
        }
        headers = {**bearer(tokens["manager"]), "Idempotency-Key": "ad-hoc-1"}
        first = client.post(
            f"{API}/engagements/{engagement.id}/deliverables", json=body, headers=headers
        )
        again = client.post(
            f"{API}/engagements/{engagement.id}/deliverables", json=body, headers=headers
        )
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        assert first.json()["ad_hoc"] is True
        assert len(rows_of(db, engagement.id)) == 1
        by_viewer_side = client.post(
            f"{API}/engagements/{engagement.id}/deliverables", json=body,
            headers=bearer(tokens["reviewer"]),
        )  # fmt: skip
        assert by_viewer_side.status_code == 403


class TestTenancy:
    def test_a_foreign_deliverable_is_404_whatever_the_body(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        rival = make_parties(db)
        token = create_token(db, rival.manager, rival.agency)
        assert (
            client.get(f"{API}/deliverables/{target.id}", headers=bearer(token)).status_code == 404
        )
        for path in ("deliver", "accept", "return"):
            response = client.post(
                f"{API}/deliverables/{target.id}/{path}", json={"junk": 1}, headers=bearer(token)
            )
            assert response.status_code == 404, path
        listed = client.get(
            f"{API}/engagements/{engagement.id}/deliverables", headers=bearer(token)
        )
        assert listed.status_code == 404


# --- the measures for the scorecard ------------------------------------------------------


class TestMeasures:
    def test_due_on_time_and_first_delivery_acceptance_are_counted(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        add_line(db, parties, engagement.id, kind="monthly_report", quantity=1)
        on_time, late, returned, *_ = rows_of(db, engagement.id)
        for row in (on_time, late, returned):
            # Due next week, so the first delivery lands in time, then due moves into the past.
            deliver(client, tokens["manager"], row.id)
        client.post(f"{API}/deliverables/{on_time.id}/accept", headers=bearer(tokens["reviewer"]))
        client.post(
            f"{API}/deliverables/{returned.id}/return", json={"reason": "Wrong month"},
            headers=bearer(tokens["reviewer"]),
        )  # fmt: skip
        now = utcnow()
        db.expire_all()
        for row_id, first in ((on_time.id, -1), (late.id, 2), (returned.id, -2)):
            moved = db.get(Deliverable, row_id)
            assert moved is not None
            moved.due_at = now - timedelta(days=1)
            moved.due_on = moved.due_at.date()
            moved.first_delivered_at = moved.due_at + timedelta(days=first)
            db.add(moved)
        db.commit()
        day = (now - timedelta(days=1)).date()
        counts = measures.delivery_counts(db, engagement, day, day, now=now)
        assert (counts.due, counts.on_time, counts.late) == (3, 2, 1)
        assert (counts.first_decided, counts.first_accepted, counts.returned) == (2, 1, 1)
        assert counts.on_time_rate == pytest.approx(2 / 3)
        assert counts.first_acceptance_rate == pytest.approx(0.5)


# --- the board -------------------------------------------------------------------------


class TestBoard:
    def test_the_agency_delivers_and_the_brand_accepts_in_place(
        self, make_client: Any, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        agency = make_client()
        csrf = sign_in(agency, parties.manager.email)
        page = agency.get(f"/engagements/{engagement.id}/deliverables")
        assert page.status_code == 200
        assert f"/deliverables/{target.id}/deliver" in page.text
        assert f"/deliverables/{target.id}/accept" not in page.text  # not the agency's to accept
        htmx = {"HX-Request": "true", "HX-Target": "deliverable-board", "X-CSRF-Token": csrf}
        response = agency.post(
            f"/deliverables/{target.id}/deliver",
            data={"links": "https://drive.example/posts\n", "version": str(target.version)},
            headers=htmx,
        )
        assert response.status_code == 200, response.text
        assert "<html" not in response.text  # only the board block
        assert "https://drive.example/posts" in response.text
        brand = make_client()
        brand_csrf = sign_in(brand, parties.reviewer.email)
        board = brand.get(f"/engagements/{engagement.id}/deliverables?status=delivered")
        assert f"/deliverables/{target.id}/accept" in board.text
        accepted = brand.post(
            f"/deliverables/{target.id}/accept",
            data={"version": str(target.version + 1), "csrf_token": brand_csrf},
        )
        assert accepted.status_code == 303
        assert rows_of(db, engagement.id)[-1].status == DeliverableStatus.accepted

    def test_a_late_deliverable_says_so_in_words_and_red(
        self, make_client: Any, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        add_line(db, parties, engagement.id)
        past_due(db, rows_of(db, engagement.id)[-1].id)
        brand = make_client()
        sign_in(brand, parties.reviewer.email)
        page = brand.get(f"/engagements/{engagement.id}/deliverables")
        assert 'class="flag flag-error">Late: not delivered by the due date' in page.text

    def test_a_refused_action_shows_the_reason_on_the_row(
        self, make_client: Any, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        agency = make_client()
        csrf = sign_in(agency, parties.manager.email)
        response = agency.post(
            f"/deliverables/{target.id}/deliver",
            data={"links": "not a link", "csrf_token": csrf},
            headers={"HX-Request": "true", "HX-Target": "deliverable-board"},
        )
        assert response.status_code == 422
        assert "Line 1 is not a full web address" in response.text

    def test_the_engagement_page_links_to_the_board(
        self, make_client: Any, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        brand = make_client()
        sign_in(brand, parties.lead.email)
        page = brand.get(f"/engagements/{engagement.id}")
        assert f'href="http://testserver/engagements/{engagement.id}/deliverables"' in page.text

    def test_without_csrf_the_board_refuses(
        self, make_client: Any, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        add_line(db, parties, engagement.id)
        target = rows_of(db, engagement.id)[-1]
        agency = make_client()
        sign_in(agency, parties.manager.email)
        response = agency.post(
            f"/deliverables/{target.id}/deliver", data={"links": "https://x.example"}
        )
        assert response.status_code == 403
        assert rows_of(db, engagement.id)[-1].status == DeliverableStatus.planned
